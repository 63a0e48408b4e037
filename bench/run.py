#!/usr/bin/env python3
"""ocisift against its peers on one loopback registry, in one run.

    python bench/run.py [--size 1G] [--layers 8] [--rounds 5] [--warmup 1] [--json out.json]

Starts Debian's docker-registry on a free loopback port, pushes an artifact of
incompressible tar+gzip layers, then runs the jobs in rounds (the order
rotating each round) and prints medians and best times, ratios (ocisift time /
peer time; below 1 is faster), user and system CPU, and each process's peak
resident memory. Last, bench/complexity.py times each hostile-input family at
n and 8n in-process and prints the ratios.
"""

from __future__ import annotations

import argparse
import compileall
import gzip
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # the same registry runner the tests use

import complexity  # noqa: E402  (bench/complexity.py)

import ocisift  # noqa: E402
from ocisift._core import mediatypes as mt  # noqa: E402
from ocisift._core.builders import manifest_bytes  # noqa: E402
from ocisift._stores.layout import LayoutStore  # noqa: E402
from registry import run_registry  # noqa: E402

OCISIFT = [sys.executable, "-m", "ocisift"]


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(float(text[:-1]) * units[text[-1].upper()]) if text[-1].upper() in units else int(text)


@dataclass
class Timing:
    wall: float
    user: float
    sys: float
    peak_kib: int


def run(cmd: list[str], cwd: str | None = None) -> Timing:
    """Wall time, CPU time and peak RSS of one command, measured by GNU time.

    (A forked child's own rusage inherits the parent's high-water mark on Linux,
    so the bench process's memory would leak into every reading.)
    """
    os.sync()  # no run pays for the write-back of the one before
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        started = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-o", report.name, "-f", "%M %U %S", *cmd], cwd=cwd,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        elapsed = time.perf_counter() - started
        if proc.returncode != 0:
            raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr.decode()}")
        peak_kib, user, system = report.read().strip().splitlines()[-1].split()
    return Timing(elapsed, float(user), float(system), int(peak_kib))


def make_layout(path: Path, size: int, layers: int) -> None:
    store = LayoutStore.create(str(path))
    per = size // layers
    descs = []
    for i in range(layers):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo(f"layer{i}/data.bin")
            info.size = per
            tar.addfile(info, io.BytesIO(os.urandom(per)))
        data = gzip.compress(buf.getvalue(), compresslevel=1, mtime=0)
        descs.append(store.push_bytes(data, mt.OCI_LAYER_GZIP, {
            mt.ANNOTATION_TITLE: f"layer{i}.tar.gz", mt.ANNOTATION_ORAS_UNPACK: "true"}))
    cfg = store.push_bytes(b"{}", mt.OCI_EMPTY)
    raw = manifest_bytes(cfg, descs, artifact_type="application/vnd.bench.v1")
    manifest = store.push_bytes(raw, mt.OCI_MANIFEST)
    store.tag(manifest, "v1")


def make_big_index(path: Path, entries: int) -> str:
    """A layout whose index.json lists `entries` tagged manifests; returns a tag in the middle."""
    store = LayoutStore.create(str(path))
    cfg = store.push_bytes(b"{}", mt.OCI_EMPTY)
    rows = []
    for i in range(entries):
        body = manifest_bytes(cfg, [], annotations={"n": str(i)})
        d = store.push_bytes(body, mt.OCI_MANIFEST) if i % 1000 == 0 or i == entries // 2 else None
        digest = d.to_json() if d else {"mediaType": mt.OCI_MANIFEST, "digest": "sha256:" + f"{i:064x}", "size": len(body)}
        rows.append({**digest, "annotations": {mt.ANNOTATION_REF_NAME: f"t{i}"}})
    (path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": rows}))
    return f"t{entries // 2}"


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="1G")
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1, help="untimed rounds first (cold caches on every side)")
    ap.add_argument("--index-entries", type=int, default=100_000)
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args()
    size = parse_size(args.size)
    for tool, package in (("skopeo", "skopeo"), ("curl", "curl"), ("docker-registry", "docker-registry"),
                          ("/usr/bin/time", "time")):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is needed (apt-get install {package})")
    # An installed package carries compiled bytecode; an editable checkout may not
    # (PYTHONDONTWRITEBYTECODE), and would be timed compiling itself on every start.
    compileall.compile_dir(os.path.dirname(ocisift.__file__), quiet=1)
    results: dict[str, list[Timing]] = {}
    resolve_ours = f"resolve in {args.index_entries:,}-entry index: ocisift"
    resolve_theirs = f"resolve in {args.index_entries:,}-entry index: skopeo"
    with tempfile.TemporaryDirectory(prefix="ocisift-bench-") as tmp:
        work = Path(tmp)
        print(f"generating {size >> 20} MiB in {args.layers} layers ...", file=sys.stderr)
        make_layout(work / "src", size, args.layers)
        with run_registry(work / "reg") as reg:
            ref = f"{reg.host}/bench/art:v1"
            ocisift.copy(f"oci:{work}/src:v1", ref)
            digest = ocisift.resolve(ref).descriptor.digest
            manifest = ocisift.manifest(ref)
            layers = [layer["digest"] for layer in json.loads(manifest)["layers"]]

            def fresh(name: str) -> str:
                d = work / name
                shutil.rmtree(d, ignore_errors=True)
                return str(d)

            def record(name: str, timing: Timing, counted: bool = True) -> None:
                if counted:
                    results.setdefault(name, []).append(timing)
                for out in ("o1", "s1", "curl", "o2", "p2"):  # outputs never pile up in the page cache
                    shutil.rmtree(work / out, ignore_errors=True)

            def curl_all() -> list[str]:
                out = fresh("curl")
                os.makedirs(out)
                urls = []
                for lay in layers:
                    urls += ["-o", f"{out}/{lay.split(':')[1]}", f"http://{reg.host}/v2/bench/art/blobs/{lay}"]
                return ["curl", "-sfL", *urls]

            jobs: list[tuple[str, Callable[[], list[str]]]] = [
                ("copy registry->layout: ocisift", lambda: [*OCISIFT, "copy", ref, f"oci:{fresh('o1')}:v1"]),
                ("copy registry->layout: skopeo", lambda: ["skopeo", "copy", "--src-tls-verify=false",
                                                           f"docker://{ref}", f"oci:{fresh('s1')}:v1"]),
                ("fetch all blobs: curl", curl_all),
                ("pull extract-all: ocisift", lambda: [*OCISIFT, "pull", ref, "--mode", "extract-all",
                                                       "-o", fresh("o2")]),
                ("pull: oras-py", lambda: [sys.executable, "-c",
                    "import sys, oras.client; c = oras.client.OrasClient(hostname=sys.argv[1], insecure=True);"
                    " c.pull(target=sys.argv[2], outdir=sys.argv[3])", reg.host, ref, fresh("p2")]),
            ]
            for name, _ in jobs:
                results[name] = []  # the table keeps this order whatever order they ran in
            print("running rounds ...", file=sys.stderr)
            for n in range(args.warmup + args.rounds):
                # Each round starts one job later, so every job takes every place in the order:
                # on a virtual machine the run after a large delete pays more to write.
                for name, command in jobs[n % len(jobs):] + jobs[: n % len(jobs)]:
                    record(name, run(command()), counted=n >= args.warmup)
            print("resolution in a large index.json ...", file=sys.stderr)
            tag = make_big_index(work / "big", args.index_entries)
            for _ in range(args.rounds):
                record(resolve_ours, run([*OCISIFT, "resolve", f"oci:{work}/big:{tag}"]))
                record(resolve_theirs, run(["skopeo", "inspect", "--raw", f"oci:{work}/big:{tag}"]))
                record("start-up: ocisift --version", run([*OCISIFT, "--version"]))
    rows = {name: {"median_s": round(median([t.wall for t in ts]), 4),
                   "best_s": round(min(t.wall for t in ts), 4),
                   "user_s": round(median([t.user for t in ts]), 2),
                   "sys_s": round(median([t.sys for t in ts]), 2),
                   "peak_rss_mib": round(max(t.peak_kib for t in ts) / 1024, 1),
                   "times_s": [round(t.wall, 3) for t in ts]}
            for name, ts in results.items()}
    pairs = [("copy registry->layout: ocisift", "copy registry->layout: skopeo"),
             ("copy registry->layout: ocisift", "fetch all blobs: curl"),
             ("pull extract-all: ocisift", "pull: oras-py"),
             (resolve_ours, resolve_theirs)]
    ratios = {f"{a} / {b.split(': ')[1]}": round(rows[a]["median_s"] / rows[b]["median_s"], 3) for a, b in pairs}
    best_ratios = {k: round(rows[a]["best_s"] / rows[b]["best_s"], 3) for k, (a, b) in zip(ratios, pairs, strict=True)}
    report = {"size_bytes": size, "layers": args.layers, "rounds": args.rounds, "warmup": args.warmup, "digest": str(digest),
              "results": rows, "ratios": ratios, "best_ratios": best_ratios}
    print(f"\n{size >> 20} MiB in {args.layers} layers, {args.rounds} rounds after {args.warmup} warm-up, medians\n")
    print(f"| {'run':<40} | {'median s':>9} | {'best s':>7} | {'user s':>6} | {'sys s':>6} | {'peak RSS MiB':>12} |")
    print(f"|{'-' * 42}|{'-' * 11}|{'-' * 9}|{'-' * 8}|{'-' * 8}|{'-' * 14}|")
    for name, row in rows.items():
        print(f"| {name:<40} | {row['median_s']:>9.3f} | {row['best_s']:>7.3f} | {row['user_s']:>6.2f} | {row['sys_s']:>6.2f} "
              f"| {row['peak_rss_mib']:>12.1f} |")
    print()
    for name, ratio in ratios.items():
        print(f"ratio {name}: {ratio} (medians), {best_ratios[name]} (best runs)")
    print("complexity with hostile input ...", file=sys.stderr)
    report["complexity"] = complexity.measure()
    complexity.print_table(report["complexity"])
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=2))
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
