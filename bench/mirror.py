#!/usr/bin/env python3
"""Mirroring many small images: `ocisift sync` against `skopeo sync`, and a second run that finds nothing new.

    python bench/mirror.py [--images 200] [--rounds 3] [--in-flight 16] [--json out.json]

Starts a source registry (a CNCF distribution on loopback, plain HTTP) and pushes --images images into it,
bench/app000 and on, each tagged 1.0.0: an OCI index of a linux/amd64 and a linux/arm64 manifest (a config
and one small tar+gzip layer each, different in every image) and one referrer, an artifact whose subject is
the index. Distribution has no referrers API, so the referrer is listed under the fallback tag
`sha256-<hex of the index digest>`, which `ocisift sync` follows with `referrers: true`.

Each round starts three empty destination registries, and then (the order rotating each round):

- `ocisift sync SPEC --images N` into one (every platform and the referrers);
- the same spec as 4 shards, `ocisift sync SPEC --shard I/4 --images N/4`, 4 processes at once, into
  another (timed from the first start to the last end; CPU summed, memory the largest process's);
- `skopeo sync --src yaml --dest docker --all` into the third (every platform; skopeo does not copy
  referrers, so it moves less);

and last `ocisift sync` again into its destination, where everything is there already, with referrers
(each image's new referrers are looked for) and without (`referrers: false`). The first is timed against the
first run (goal: at most 0.1 of its time), and the requests both made are counted at each registry from its
access log (goals: at most two requests per tag at the source with referrers, one without).

Prints medians and best times, the ratios (ocisift / skopeo, goal at most 0.5; 4 shards / one process) and
the requests by kind.
For bench/run.py: `measure(work, rounds)` returns the report as a JSON-able dict, `print_table(report)` prints it.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import gzip
import hashlib
import io
import json
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # the same registry runner the tests use

import ocisift  # noqa: E402
from ocisift._core import mediatypes as mt  # noqa: E402
from ocisift._core.builders import build_index, manifest_bytes  # noqa: E402
from ocisift._core.platform import Platform  # noqa: E402
from ocisift._stores.layout import LayoutStore  # noqa: E402
from registry import Registry, run_registry  # noqa: E402

OCISIFT = [sys.executable, "-m", "ocisift"]
TAG = "1.0.0"
PLATFORMS = ("linux/amd64", "linux/arm64")
SIGNATURE_TYPE = "application/vnd.example.sig"
SPEED_GOAL = 0.5  # ocisift sync / skopeo sync
NO_CHANGE_GOAL = 0.1  # second run / first run
SOURCE_REQUESTS_GOAL = {"referrers": 2.0, "no referrers": 1.0}  # per tag at the source, nothing changed
SHARDS = 4

OURS = "sync {n} images, 2 platforms + referrer: ocisift"
SHARDED = "sync {n} images in 4 shards (4 processes): ocisift"
THEIRS = "sync {n} images, 2 platforms: skopeo (no referrers)"
AGAIN = "sync {n} images again, nothing changed: ocisift"
AGAIN_PLAIN = "sync {n} images again, nothing changed, referrers: false: ocisift"

# distribution's access log: `127.0.0.1 - - [date] "HEAD /v2/bench/app000/manifests/1.0.0 HTTP/1.1" 200 …`
REQUEST = re.compile(r'"(GET|HEAD|PUT|POST|PATCH|DELETE) (/v2/\S*) HTTP/1\.[01]"')


@dataclass
class Timing:
    wall: float
    user: float
    sys: float
    peak_kib: int
    stdout: bytes


def run(cmd: list[str]) -> Timing:
    """Wall time, CPU time (this process's children, before and after) and GNU time's peak RSS of one command."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-o", report.name, "-f", "%M", *cmd],
                              capture_output=True)
        elapsed = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr.decode(errors='replace')[-4000:]}")
        peak_kib = report.read().strip().splitlines()[-1]
    return Timing(elapsed, after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime, int(peak_kib),
                  proc.stdout)


def run_together(commands: list[list[str]]) -> Timing:
    """Several commands started at once: wall time from the first start to the last end, CPU summed over
    them, the peak RSS of the largest, and their outputs joined by NUL bytes."""
    with contextlib.ExitStack() as stack:
        reports = [stack.enter_context(tempfile.NamedTemporaryFile("r", suffix=".time")) for _ in commands]
        outs = [stack.enter_context(tempfile.TemporaryFile()) for _ in commands]  # no pipe to fill and block on
        errs = [stack.enter_context(tempfile.TemporaryFile()) for _ in commands]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        procs = [subprocess.Popen(["/usr/bin/time", "-o", report.name, "-f", "%M", *cmd], stdout=out, stderr=err)
                 for cmd, report, out, err in zip(commands, reports, outs, errs, strict=True)]
        for proc in procs:
            proc.wait()
        elapsed = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        for file in (*outs, *errs):
            file.seek(0)
        for cmd, proc, err in zip(commands, procs, errs, strict=True):
            if proc.returncode != 0:
                raise SystemExit(f"failed: {' '.join(cmd)}\n{err.read().decode(errors='replace')[-4000:]}")
        peak = max(int(report.read().strip().splitlines()[-1]) for report in reports)
        outputs = [out.read() for out in outs]
    return Timing(elapsed, after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime, peak,
                  b"\0".join(outputs))


def layer(n: int, arch: str) -> bytes:
    """A small tar+gzip layer of one image and platform, different in every image: text and 2 KiB of noise."""
    rng = random.Random(f"{n}/{arch}")
    files = [(f"etc/app{n:03d}/release", f"app {n} {TAG} {arch}\n".encode()),
             (f"usr/lib/app{n:03d}/{arch}.bin", rng.randbytes(2048))]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buf.getvalue(), compresslevel=6, mtime=0)


def make_image(path: Path, n: int) -> None:
    """An OCI layout holding image n, tagged 1.0.0: an index of two platforms, and a referrer of the index."""
    store = LayoutStore.create(str(path))
    entries = []
    for text in PLATFORMS:
        platform = Platform.parse(text)
        blob = layer(n, platform.architecture)
        layer_desc = store.push_bytes(blob, mt.OCI_LAYER_GZIP)
        config = json.dumps({**platform.to_json(), "config": {"Labels": {"app": f"app{n:03d}"}},
                             "rootfs": {"type": "layers", "diff_ids": [
                                 "sha256:" + hashlib.sha256(gzip.decompress(blob)).hexdigest()]}},
                            separators=(",", ":")).encode()
        cfg = store.push_bytes(config, mt.OCI_CONFIG)
        manifest = store.push_bytes(manifest_bytes(cfg, [layer_desc]), mt.OCI_MANIFEST)
        entries.append(replace(manifest, platform=platform))
    index = store.push_bytes(build_index(entries), mt.OCI_INDEX)
    store.tag(index, TAG)
    signature = store.push_bytes(json.dumps({"image": f"app{n:03d}", "index": str(index.digest)}).encode(),
                                 "application/vnd.example.sig.v1+json")
    empty = store.push_bytes(b"{}", mt.OCI_EMPTY)
    referrer = manifest_bytes(empty, [signature], artifact_type=SIGNATURE_TYPE, subject=index)
    store.add_root(store.push_bytes(referrer, mt.OCI_MANIFEST))


def push_images(work: Path, source: Registry, count: int) -> None:
    """Every image into the source registry: built in layouts, copied with its referrer, several at once."""
    def one(n: int) -> None:
        layout = work / "images" / f"app{n:03d}"
        make_image(layout, n)
        ocisift.copy(f"oci:{layout}:{TAG}", f"{source.host}/bench/app{n:03d}:{TAG}", referrers=True)

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(one, range(count)))
    shutil.rmtree(work / "images")
    # The referrer is reachable as a mirror finds it: through the fallback tag.
    names = ocisift.tags(f"{source.host}/bench/app000", referrer_tags=True)
    if not any(name.startswith("sha256-") for name in names):
        raise SystemExit(f"no fallback tag in {source.host}/bench/app000: {names}")


def write_specs(work: Path, source: Registry, count: int) -> tuple[Callable[[Registry], Path], Path]:
    """The ocisift spec for a destination registry (made per destination), and skopeo's YAML source."""
    names = [f"bench/app{n:03d}" for n in range(count)]

    def ocisift_spec(destination: Registry, referrers: bool = True) -> Path:
        spec = {"defaults": {"referrers": referrers},
                "images": [{"source": f"{source.host}/{name}", "tags": [TAG],
                            "destination": f"{destination.host}/mirror/{name.rsplit('/', 1)[1]}"}
                           for name in names]}
        path = work / f"sync-{destination.port}{'' if referrers else '-plain'}.yaml"
        path.write_text(json.dumps(spec, indent=1))  # JSON is YAML
        return path

    skopeo = work / "skopeo-sync.yaml"
    skopeo.write_text(json.dumps({source.host: {"tls-verify": False, "images": {name: [TAG] for name in names}}},
                                 indent=1))
    return ocisift_spec, skopeo


def requests_between(registry: Registry, start: int, marker: str) -> Counter[str]:
    """The requests the registry logged after byte `start` of its log and before the `marker` request,
    by method and endpoint (`HEAD manifests`, `GET blobs`, `GET /v2/` …)."""
    try:  # a request of its own, so everything before it has surely been written
        urllib.request.urlopen(f"{registry.url}/v2/{marker}/tags/list", timeout=5).close()
    except urllib.error.HTTPError:
        pass
    text = registry.wait_for_log(marker)
    kinds: Counter[str] = Counter()
    for line in text[start:].splitlines():
        found = REQUEST.search(line)
        if found is None:
            continue
        method, path = found.groups()
        path = path.split("?", 1)[0]
        if path == f"/v2/{marker}/tags/list":
            break
        if path == "/v2/":
            kinds[f"{method} /v2/"] += 1
        else:
            parts = path.split("/")
            endpoint = "blobs/uploads" if "uploads" in parts else next(
                (p for p in ("manifests", "blobs", "tags", "referrers") if p in parts), "other")
            kinds[f"{method} {endpoint}"] += 1
    return kinds


def log_size(registry: Registry) -> int:
    return len(registry.log_text())


def summarize(ts: list[Timing]) -> dict[str, Any]:
    return {"median_s": round(statistics.median([t.wall for t in ts]), 4),
            "best_s": round(min(t.wall for t in ts), 4),
            "user_s": round(statistics.median([t.user for t in ts]), 3),
            "sys_s": round(statistics.median([t.sys for t in ts]), 3),
            "peak_rss_mib": round(max(t.peak_kib for t in ts) / 1024, 1),
            "times_s": [round(t.wall, 3) for t in ts],
            "user_times_s": [round(t.user, 3) for t in ts]}


def check_index(registry: Registry, repo: str) -> None:
    """The mirror's tag names an index of every platform."""
    request = urllib.request.Request(f"{registry.url}/v2/{repo}/manifests/{TAG}",
                                     headers={"Accept": f"{mt.OCI_INDEX}, {mt.DOCKER_LIST}"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        index = json.loads(resp.read())
    if len(index.get("manifests", [])) != len(PLATFORMS):
        raise SystemExit(f"{registry.host}/{repo}:{TAG} is not an index of {len(PLATFORMS)} platforms")


def check_sync(output: bytes, count: int, *, copied: int) -> None:
    """The sync said it copied (or skipped) every image, and failed none (the shards' outputs together)."""
    parts = [json.loads(part) for part in output.split(b"\0")]
    result = {key: [x for part in parts for x in part[key]] for key in ("failed", "copied", "skipped")}
    if result["failed"] or len(result["copied"]) != copied or len(result["skipped"]) != count - copied:
        raise SystemExit(f"ocisift sync: expected {copied} of {count} copied, got {len(result['copied'])} copied,"
                         f" {len(result['skipped'])} skipped, {len(result['failed'])} failed")


def measure(work: Path, rounds: int, images: int = 200, in_flight: int = 16, warmup: int = 0) -> dict[str, Any]:
    """Set up, run the rounds and return a JSON-able report: results (per run), ratios, best_ratios,
    ratio_goals and the no-change runs' requests at each registry."""
    if shutil.which("skopeo") is None or shutil.which("/usr/bin/time") is None:
        raise SystemExit("skopeo and GNU time are needed (apt-get install skopeo time)")
    ours, sharded, theirs = OURS.format(n=images), SHARDED.format(n=images), THEIRS.format(n=images)
    again, again_plain = AGAIN.format(n=images), AGAIN_PLAIN.format(n=images)
    results: dict[str, list[Timing]] = {ours: [], sharded: [], theirs: [], again: [], again_plain: []}
    load_before = os.getloadavg()[0]  # other work on the machine takes CPU from the registries too
    requests: dict[str, list[dict[str, Counter[str]]]] = {"referrers": [], "no referrers": []}  # each round's
    first: dict[str, dict[str, Counter[str]]] = {}  # the first runs', the last round
    with run_registry(work / "source") as source:
        print(f"pushing {images} images with 2 platforms and a referrer each ...", file=sys.stderr)
        started = time.perf_counter()
        push_images(work, source, images)
        print(f"  pushed in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        ocisift_spec, skopeo_yaml = write_specs(work, source, images)
        for n in range(warmup + rounds):
            counted = n >= warmup
            print(f"round {n + 1} of {warmup + rounds}{'' if counted else ' (warm-up)'} ...", file=sys.stderr)
            with contextlib.ExitStack() as stack:
                ours_dst = stack.enter_context(run_registry(work / f"dst-ocisift-{n}"))
                shards_dst = stack.enter_context(run_registry(work / f"dst-shards-{n}"))
                theirs_dst = stack.enter_context(run_registry(work / f"dst-skopeo-{n}"))
                spec = ocisift_spec(ours_dst)
                sync = [*OCISIFT, "sync", str(spec), "--images", str(in_flight), "--format", "json"]
                shard_spec = ocisift_spec(shards_dst)
                shard_runs = [[*OCISIFT, "sync", str(shard_spec), "--shard", f"{i}/{SHARDS}",
                               "--images", str(max(1, in_flight // SHARDS)), "--format", "json"]
                              for i in range(SHARDS)]
                skopeo = ["skopeo", "sync", "--src", "yaml", "--dest", "docker", "--dest-tls-verify=false",
                          "--all", str(skopeo_yaml), f"{theirs_dst.host}/mirror-skopeo"]
                jobs: list[tuple[str, list[list[str]]]] = [(ours, [sync]), (sharded, shard_runs), (theirs, [skopeo])]
                destinations = {ours: ours_dst, sharded: shards_dst, theirs: theirs_dst}
                for name, commands in jobs[n % len(jobs):] + jobs[: n % len(jobs)]:
                    starts = log_size(source), log_size(destinations[name])
                    timing = run(commands[0]) if len(commands) == 1 else run_together(commands)
                    if name != theirs:
                        check_sync(timing.stdout, images, copied=images)
                    marker = f"bench-marker-{n}-{'skopeo' if name == theirs else 'shards' if name == sharded else 'ocisift'}"
                    first[name] = {"source": requests_between(source, starts[0], marker),
                                   "destination": requests_between(destinations[name], starts[1], marker)}
                    if counted:
                        results[name].append(timing)
                if n == 0:  # each mirror holds what it should: ocisift's the referrer too, skopeo's every platform
                    for dst in (ours_dst, shards_dst):
                        found = ocisift.referrers(f"{dst.host}/mirror/app000:{TAG}")
                        if not found.referrers:
                            raise SystemExit(f"ocisift sync left out the referrer of {dst.host}/mirror/app000")
                    for dst, repo in ((ours_dst, "mirror/app000"), (shards_dst, f"mirror/app{images - 1:03d}"),
                                      (theirs_dst, "mirror-skopeo/app000")):
                        check_index(dst, repo)
                plain = [*OCISIFT, "sync", str(ocisift_spec(ours_dst, referrers=False)), "--images", str(in_flight),
                         "--format", "json"]
                for setting, command, row in (("referrers", sync, again), ("no referrers", plain, again_plain)):
                    starts = log_size(source), log_size(ours_dst)
                    timing = run(command)
                    check_sync(timing.stdout, images, copied=0)
                    marker = f"bench-marker-{n}-again-{setting.replace(' ', '-')}"
                    seen = {"source": requests_between(source, starts[0], marker),
                            "destination": requests_between(ours_dst, starts[1], marker)}
                    if counted:
                        results[row].append(timing)
                        requests[setting].append(seen)
            for side in ("ocisift", "shards", "skopeo"):
                shutil.rmtree(work / f"dst-{side}-{n}", ignore_errors=True)
    rows = {name: summarize(ts) for name, ts in results.items()}

    def ratio(a: str, b: str, pick: Callable[[list[float]], float]) -> float:
        return round(pick([t.wall for t in results[a]]) / pick([t.wall for t in results[b]]), 3)

    pairs = [(f"{ours} / skopeo", ours, theirs, SPEED_GOAL),
             (f"{sharded} / skopeo", sharded, theirs, None),
             (f"{sharded} / one process", sharded, ours, None),
             (f"{again} / first run", again, ours, NO_CHANGE_GOAL)]
    ratios = {label: ratio(a, b, statistics.median) for label, a, b, _ in pairs}
    best_ratios = {label: ratio(a, b, min) for label, a, b, _ in pairs}
    no_change = {}
    for setting, seen_rounds in requests.items():
        last = seen_rounds[-1]
        no_change[setting] = {
            "per_round": [{side: sum(seen[side].values()) for side in seen} for seen in seen_rounds],
            "by_kind": {side: dict(sorted(last[side].items())) for side in last},
            "per_tag": {side: round(sum(last[side].values()) / images, 3) for side in ("source", "destination")},
            # a registry's answer that it has no referrers API is asked once a run, not once a tag
            "per_tag_besides_api_probe": {side: round((sum(last[side].values()) - last[side]["GET referrers"])
                                                      / images, 3) for side in ("source", "destination")},
            "per_tag_goal": {"source": SOURCE_REQUESTS_GOAL[setting]}}
    return {"images": images, "tags": images, "platforms": list(PLATFORMS), "referrers_per_image": 1,
            "rounds": rounds, "warmup": warmup, "images_in_flight": in_flight, "shards": SHARDS,
            "cpus": os.cpu_count(), "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            "results": rows, "ratios": ratios, "best_ratios": best_ratios,
            "ratio_goals": {label: goal for label, _, _, goal in pairs if goal is not None},
            "no_change_requests": no_change,
            "first_run_requests": {name: {side: dict(sorted(kinds.items())) for side, kinds in seen.items()}
                                   for name, seen in first.items()}}


def print_rows(rows: dict[str, dict[str, Any]]) -> None:
    """The timing table every part of the bench prints: one row per run, medians and best, CPU, memory."""
    width = max(40, *map(len, rows))
    print(f"| {'run':<{width}} | {'median s':>9} | {'best s':>7} | {'user s':>6} | {'sys s':>6} | {'peak RSS MiB':>12} |")
    print(f"|{'-' * (width + 2)}|{'-' * 11}|{'-' * 9}|{'-' * 8}|{'-' * 8}|{'-' * 14}|")
    for name, row in rows.items():
        print(f"| {name:<{width}} | {row['median_s']:>9.3f} | {row['best_s']:>7.3f} | {row['user_s']:>6.2f} "
              f"| {row['sys_s']:>6.2f} | {row['peak_rss_mib']:>12.1f} |")


def print_table(report: dict[str, Any]) -> None:
    rows: dict[str, dict[str, Any]] = report["results"]
    print(f"\nmirror: {report['images']} images of {len(report['platforms'])} platforms and"
          f" {report['referrers_per_image']} referrer each, one tag each, {report['rounds']} rounds, medians;"
          f" ocisift sync --images {report['images_in_flight']} (each of {report['shards']} shards: "
          f"--images {max(1, report['images_in_flight'] // report['shards'])}); {report['cpus']} CPUs, load average"
          f" {report['load_average'][0]:g} before and {report['load_average'][1]:g} after\n")
    print_rows(rows)
    print()
    for label, value in report["ratios"].items():
        goal = report["ratio_goals"].get(label)
        mark = "" if goal is None else f"; goal at most {goal:g}" + ("" if value <= goal else "  (over the goal)")
        print(f"ratio {label}: {value} (medians), {report['best_ratios'][label]} (best runs){mark}")
    for setting, counted in report["no_change_requests"].items():
        print(f"\nrequests of the no-change run, {setting} ({report['tags']} tags):")
        for side in ("source", "destination"):
            kinds = ", ".join(f"{count} {kind}" for kind, count in counted["by_kind"][side].items()) or "none"
            goal = counted["per_tag_goal"].get(side)
            besides = counted["per_tag_besides_api_probe"][side]
            mark = "" if goal is None else f"; goal at most {goal:g} per tag" + (
                "" if besides <= goal else "  (over the goal)")
            probe = f", {besides:g} besides the run's one question whether it has the referrers API" \
                if besides != counted["per_tag"][side] else ""
            print(f"  {side:<11}: {counted['per_tag'][side]:g} per tag{probe} ({kinds}){mark}")
    print(f"\nrequests of the first runs, per image ({report['images']} images):")
    for name, seen in report["first_run_requests"].items():
        print(f"  {name}:")
        for side in ("source", "destination"):
            kinds = ", ".join(f"{count / report['images']:g} {kind}" for kind, count in seen[side].items())
            print(f"    {side:<11}: {sum(seen[side].values()) / report['images']:g} ({kinds})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=0, help="untimed rounds first")
    ap.add_argument("--in-flight", type=int, default=16, help="ocisift sync --images")
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args()
    # An editable checkout may carry no bytecode (PYTHONDONTWRITEBYTECODE); the runs would pay for compiling.
    compileall.compile_dir(os.path.dirname(ocisift.__file__), quiet=1)
    with tempfile.TemporaryDirectory(prefix="ocisift-mirror-") as tmp:
        report = measure(Path(tmp), args.rounds, images=args.images, in_flight=args.in_flight, warmup=args.warmup)
    print_table(report)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=2))
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
