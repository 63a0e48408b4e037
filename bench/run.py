#!/usr/bin/env python3
"""ocisift against its peers on loopback registries, in one run.

    python bench/run.py [--size 1G] [--layers 8] [--rounds 5] [--warmup 1] [--json out.json]
                        [--image-layers 6] [--image-layer-size 4M] [--image-rounds 10]
                        [--small-files 20000] [--small-rounds 3]

Starts Debian's docker-registry on a free loopback port, pushes an artifact of
incompressible tar+gzip layers, then runs the jobs in rounds (the order
rotating each round) and prints medians and best times, ratios (ocisift time /
peer time; below 1 is faster), user and system CPU, and each process's peak
resident memory.

Then, in rounds of their own (the image pulls twice as many as --rounds by
default, being short), three comparisons on smaller images:

- an image of several tar+gzip layers of text and binary files, pulled with
  `ocisift pull --mode extract-all` against its C floor: a shell script that
  curls the manifest and the layers, checks them with `sha256sum -c` and
  unpacks each in order with `tar -xzf` (goal: at most 1.3 times its time);
- the same pull from a second registry serving HTTPS with a certificate from a
  test CA made by openssl (`--ca-file`), against the plain HTTP pull;
- the user CPU of `ocisift pull --mode extract` of one layer of many small
  files from an OCI layout, against `tar -xzf` of the same blob (goal: at most
  twice tar's). User CPU varies little from run to run, so three rounds do.

Then bench/complexity.py times each hostile-input family at n and 8n
in-process and prints the ratios, and bench/mirror.py times `ocisift sync` of
many small images (2 platforms and a referrer each) against `skopeo sync`,
and as 4 shards in 4 processes, then the no-change runs (with referrers and
without), counting their requests from both registries' logs. `--only mirror`
runs that part alone.
"""

from __future__ import annotations

import argparse
import compileall
import gzip
import hashlib
import io
import itertools
import json
import os
import random
import resource
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
sys.path.insert(0, str(HERE.parent / "tests"))  # the same registry runner and test CA the tests use

import complexity  # noqa: E402  (bench/complexity.py)
import mirror  # noqa: E402  (bench/mirror.py)
import trust  # noqa: E402  (bench/trust.py)

import ocisift  # noqa: E402
import tls  # noqa: E402  (tests/tls.py: a test CA made by openssl)
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
    """Wall time, CPU time and peak RSS of one command.

    Peak RSS is GNU time's (a forked child's own rusage inherits the parent's
    high-water mark on Linux, so the bench process's memory would leak into
    every reading). User and system CPU are this process's RUSAGE_CHILDREN
    before and after, to the microsecond (GNU time prints hundredths): the
    command and every process it waited for, plus GNU time's own millisecond.
    """
    os.sync()  # no run pays for the write-back of the one before
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-o", report.name, "-f", "%M", *cmd], cwd=cwd,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        elapsed = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr.decode()}")
        peak_kib = report.read().strip().splitlines()[-1]
    return Timing(elapsed, after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime, int(peak_kib))


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


# Entries of a layer: (path, kind, content); kind is "dir", "file" or "link" (content: the target).
Entry = tuple[str, str, bytes]


def make_corpus(rng: random.Random, words: int = 200_000) -> bytes:
    """Text that gzip packs about 3:1, as it does source code and documentation: lines of words from a
    made-up vocabulary with Zipf-like frequencies."""
    vocab = ["".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(2, 11))) for _ in range(4000)]
    chosen = rng.choices(vocab, [1 / (i + 1) for i in range(len(vocab))], k=words)
    lines, i = [], 0
    while i < len(chosen):
        n = rng.randint(2, 12)
        lines.append("    " * rng.randint(0, 3) + " ".join(chosen[i:i + n]))
        i += n
    return "\n".join(lines).encode()


def text(rng: random.Random, corpus: bytes, size: int) -> bytes:
    start = rng.randrange(len(corpus) - size)
    return corpus[start:start + size]


def tar_gz(entries: list[Entry]) -> tuple[bytes, str]:
    """A layer as a container build writes one (gzip level 6, parents before children), and its diff_id."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, data in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 1_700_000_000
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif kind == "link":
                info.type, info.linkname = tarfile.SYMTYPE, data.decode()
                tar.addfile(info)
            else:
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    return gzip.compress(raw, compresslevel=6, mtime=0), "sha256:" + hashlib.sha256(raw).hexdigest()


def image_layer(rng: random.Random, corpus: bytes, n: int, size: int) -> list[Entry]:
    """About `size` bytes of files, half text (0.25 to 32 KiB each) and half incompressible (16 to 256 KiB,
    as shared libraries and compressed assets are), sixteen to a directory; and /etc/release, which
    every layer writes again, so later layers replace a file of earlier ones as image layers do."""
    root = f"usr/lib/pkg{n}"
    entries: list[Entry] = [("usr", "dir", b""), ("usr/lib", "dir", b""), (root, "dir", b"")]
    texts = binaries = files = 0
    while texts + binaries < size:
        if files % 16 == 0:
            entries.append((f"{root}/m{files // 16}", "dir", b""))
        name = f"{root}/m{files // 16}/f{files}"
        if texts < size // 2 and (binaries >= size // 2 or rng.random() < 0.9):
            data = text(rng, corpus, rng.randint(256, 32 << 10))
            entries.append((name + ".py", "file", data))
            texts += len(data)
        else:
            data = rng.randbytes(rng.randint(16 << 10, 256 << 10))
            entries.append((name + ".so", "file", data))
            binaries += len(data)
        files += 1
    entries += [(f"{root}/current", "link", b"m0"), ("etc", "dir", b""),
                ("etc/release", "file", f"layer {n}\n".encode())]
    return entries


def small_files_layer(rng: random.Random, corpus: bytes, count: int, per_dir: int = 50) -> list[Entry]:
    """`count` files of a few hundred bytes to a few KiB (a node_modules or site-packages tree), `per_dir`
    to a directory, twenty directories to a parent; one in ten incompressible."""
    entries: list[Entry] = [("app", "dir", b"")]
    for i in range(count):
        leaf, parent = i // per_dir, i // (per_dir * 20)
        if i % (per_dir * 20) == 0:
            entries.append((f"app/p{parent}", "dir", b""))
        if i % per_dir == 0:
            entries.append((f"app/p{parent}/d{leaf}", "dir", b""))
        size = int(min(16 << 10, max(32, rng.lognormvariate(7, 1))))
        data = rng.randbytes(size) if i % 10 == 9 else text(rng, corpus, size)
        entries.append((f"app/p{parent}/d{leaf}/f{i}.js", "file", data))
    return entries


def make_image(path: Path, layers: list[list[Entry]]) -> list[Path]:
    """An OCI layout holding one linux/amd64 image of these layers, tagged v1; returns the layer blobs' paths."""
    store = LayoutStore.create(str(path))
    descs, diff_ids = [], []
    for entries in layers:
        blob, diff_id = tar_gz(entries)
        descs.append(store.push_bytes(blob, mt.OCI_LAYER_GZIP))
        diff_ids.append(diff_id)
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    cfg = store.push_bytes(config, mt.OCI_CONFIG)
    store.tag(store.push_bytes(manifest_bytes(cfg, descs), mt.OCI_MANIFEST), "v1")
    return [path / "blobs" / d.digest.algorithm / d.digest.hex for d in descs]


# The C floor of `ocisift pull --mode extract-all`: the manifest and every layer by curl (one process, one
# connection, in turn), their digests by sha256sum, each layer unpacked into one directory by GNU tar, in order.
PULL_FLOOR = r"""set -euo pipefail
registry=$1 repo=$2 tag=$3 blobs=$4 out=$5
mkdir -p "$blobs" "$out"
curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' -o "$blobs/manifest.json" \
    "http://$registry/v2/$repo/manifests/$tag"
mapfile -t layers < <(jq -r '.layers[].digest' "$blobs/manifest.json")
urls=()
for digest in "${layers[@]}"; do
    urls+=(-o "$blobs/${digest#sha256:}" "http://$registry/v2/$repo/blobs/$digest")
    echo "${digest#sha256:}  $blobs/${digest#sha256:}"
done > "$blobs/SHA256SUMS"
curl -sfL "${urls[@]}"
sha256sum -c --quiet --strict "$blobs/SHA256SUMS"
for digest in "${layers[@]}"; do
    tar -xzf "$blobs/${digest#sha256:}" -C "$out"
done
"""


def median(xs: list[float]) -> float:
    return statistics.median(xs)


@dataclass
class Pair:
    label: str
    ours: str
    theirs: str
    cpu: bool = False  # compare user CPU time instead of wall time
    goal: float | None = None

    def ratios(self, results: dict[str, list[Timing]]) -> tuple[float, float]:
        """(ratio of the medians, ratio of the best runs)."""
        def values(name: str) -> list[float]:
            return [t.user if self.cpu else t.wall for t in results[name]]
        ours, theirs = values(self.ours), values(self.theirs)
        return round(median(ours) / median(theirs), 3), round(min(ours) / min(theirs), 3)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="1G")
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1, help="untimed rounds first (cold caches on every side)")
    ap.add_argument("--index-entries", type=int, default=100_000)
    ap.add_argument("--image-layers", type=int, default=6, help="layers of the image pulled against its C floor")
    ap.add_argument("--image-layer-size", default="4M", help="bytes of files in each of them, before gzip")
    ap.add_argument("--small-files", type=int, default=20_000, help="files in the layer whose extraction CPU is timed")
    ap.add_argument("--image-rounds", type=int, help="rounds of the image pulls (default: twice --rounds)")
    ap.add_argument("--small-rounds", type=int, default=3,
                    help="rounds of the small-files extraction (its user CPU varies little)")
    ap.add_argument("--mirror-images", type=int, default=200, help="images the sync benchmark mirrors (0: skip it)")
    ap.add_argument("--mirror-rounds", type=int, default=3)
    ap.add_argument("--only", choices=["mirror", "trust", "extract"],
                    help="run only this part (mirror: bench/mirror.py's sync rows, at --mirror-images and "
                         "--mirror-rounds; trust: bench/trust.py's; extract: the small-files extraction)")
    ap.add_argument("--trust-images", type=int, default=200,
                    help="signed images the verified sync mirrors (0: skip the trust benchmark)")
    ap.add_argument("--trust-rounds", type=int, default=3)
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args()
    if args.only == "mirror":
        return only_mirror(args.mirror_images, args.mirror_rounds, args.json_out)
    if args.only == "extract":
        return only_extract(args.small_files, args.small_rounds, args.json_out)
    if args.only == "trust":
        compileall.compile_dir(os.path.dirname(ocisift.__file__), quiet=1)
        with tempfile.TemporaryDirectory(prefix="ocisift-bench-trust-") as tmp:
            report = {"trust": trust.measure(Path(tmp), args.trust_rounds, images=args.trust_images)}
        trust.print_table(report["trust"])
        if args.json_out:
            Path(args.json_out).write_text(json.dumps(report, indent=2))
        return 0
    size = parse_size(args.size)
    image_rounds = args.image_rounds if args.image_rounds is not None else 2 * args.rounds
    for tool, package in (("skopeo", "skopeo"), ("curl", "curl"), ("docker-registry", "docker-registry"),
                          ("/usr/bin/time", "time"), ("jq", "jq"), ("openssl", "openssl")):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is needed (apt-get install {package})")
    # An installed package carries compiled bytecode; an editable checkout may not
    # (PYTHONDONTWRITEBYTECODE), and would be timed compiling itself on every start.
    compileall.compile_dir(os.path.dirname(ocisift.__file__), quiet=1)
    results: dict[str, list[Timing]] = {}
    resolve_ours = f"resolve in {args.index_entries:,}-entry index: ocisift"
    resolve_theirs = f"resolve in {args.index_entries:,}-entry index: skopeo"
    image_ours = f"pull {args.image_layers}-layer image extract-all: ocisift"
    image_floor = f"pull {args.image_layers}-layer image: curl+sha256sum+tar"
    image_tls = f"pull {args.image_layers}-layer image extract-all TLS: ocisift"
    with tempfile.TemporaryDirectory(prefix="ocisift-bench-") as tmp:
        work = Path(tmp)
        print(f"generating {size >> 20} MiB in {args.layers} layers ...", file=sys.stderr)
        make_layout(work / "src", size, args.layers)
        rng = random.Random(20_000)
        corpus = make_corpus(rng)
        layer_size = parse_size(args.image_layer_size)
        print(f"generating an image of {args.image_layers} layers of {layer_size >> 10} KiB of files, and a layer of"
              f" {args.small_files:,} files ...", file=sys.stderr)
        image_blobs = make_image(work / "image", [image_layer(rng, corpus, n, layer_size)
                                                  for n in range(args.image_layers)])
        (small_blob,) = make_image(work / "small", [small_files_layer(rng, corpus, args.small_files)])
        image_bytes, small_bytes = sum(p.stat().st_size for p in image_blobs), small_blob.stat().st_size
        ca = tls.make_ca(work / "ca")
        floor_script = work / "pull-floor.sh"
        floor_script.write_text(PULL_FLOOR)
        with (run_registry(work / "reg") as reg,
              run_registry(work / "reg-tls", tls=ca.issue("registry")) as tls_reg):
            ref = f"{reg.host}/bench/art:v1"
            ocisift.copy(f"oci:{work}/src:v1", ref)
            digest = ocisift.resolve(ref).descriptor.digest
            manifest = ocisift.manifest(ref)
            layers = [layer["digest"] for layer in json.loads(manifest)["layers"]]
            image_ref, image_tls_ref = f"{reg.host}/bench/image:v1", f"{tls_reg.host}/bench/image:v1"
            ocisift.copy(f"oci:{work}/image:v1", image_ref)
            ocisift.copy(f"oci:{work}/image:v1", image_tls_ref, registry=ocisift.RegistryOptions(ca_file=str(ca.cert)))

            def fresh(name: str) -> str:
                d = work / name
                shutil.rmtree(d, ignore_errors=True)
                return str(d)

            def made(name: str) -> str:
                os.makedirs(d := fresh(name))
                return d

            def record(name: str, timing: Timing, counted: bool = True) -> None:
                if counted:
                    results.setdefault(name, []).append(timing)
                # outputs never pile up in the page cache
                for out in ("o1", "s1", "curl", "o2", "p2", "fb2", "fo2", "i1", "i2", "fb", "fo"):
                    shutil.rmtree(work / out, ignore_errors=True)

            def curl_all() -> list[str]:
                out = made("curl")
                urls = []
                for lay in layers:
                    urls += ["-o", f"{out}/{lay.split(':')[1]}", f"http://{reg.host}/v2/bench/art/blobs/{lay}"]
                return ["curl", "-sfL", *urls]

            def rounds(jobs: list[tuple[str, Callable[[], list[str]]]], count: int) -> None:
                for name, _ in jobs:
                    results[name] = []  # the table keeps this order whatever order they ran in
                for n in range(args.warmup + count):
                    # Each round starts one job later, so every job takes every place in the order:
                    # on a virtual machine the run after a large delete pays more to write.
                    for name, command in jobs[n % len(jobs):] + jobs[: n % len(jobs)]:
                        record(name, run(command()), counted=n >= args.warmup)

            print("running rounds ...", file=sys.stderr)
            rounds([
                ("copy registry->layout: ocisift", lambda: [*OCISIFT, "copy", ref, f"oci:{fresh('o1')}:v1"]),
                ("copy registry->layout: skopeo", lambda: ["skopeo", "copy", "--src-tls-verify=false",
                                                           f"docker://{ref}", f"oci:{fresh('s1')}:v1"]),
                ("fetch all blobs: curl", curl_all),
                ("pull extract-all: ocisift", lambda: [*OCISIFT, "pull", ref, "--mode", "extract-all",
                                                       "-o", fresh("o2")]),
                ("pull: oras-py", lambda: [sys.executable, "-c",
                    "import sys, oras.client; c = oras.client.OrasClient(hostname=sys.argv[1], insecure=True);"
                    " c.pull(target=sys.argv[2], outdir=sys.argv[3])", reg.host, ref, fresh("p2")]),
                ("pull: curl+sha256sum+tar", lambda: ["bash", str(floor_script), reg.host, "bench/art", "v1",
                                                      fresh("fb2"), fresh("fo2")]),
            ], args.rounds)
            print("image rounds: against its C floor, over TLS ...", file=sys.stderr)
            rounds([
                (image_ours, lambda: [*OCISIFT, "pull", image_ref, "--mode", "extract-all", "-o", fresh("i1")]),
                (image_floor, lambda: ["bash", str(floor_script), reg.host, "bench/image", "v1",
                                       fresh("fb"), fresh("fo")]),
                (image_tls, lambda: [*OCISIFT, "pull", image_tls_ref, "--ca-file", str(ca.cert),
                                     "--mode", "extract-all", "-o", fresh("i2")]),
            ], image_rounds)
            # Here each run writes a new directory and all stay until the last round: on this kind of virtual
            # disk, creating files just after tens of thousands were deleted costs seconds of system time,
            # and a different number each run. The ratio is of user CPU, which that does not change.
            print("small-files rounds (each tar reader, GNU tar, umoci) ...", file=sys.stderr)
            small_results, small_pairs = small_files_rows(work, small_blob, args.small_files, args.small_rounds)
            results.update(small_results)
            print("resolution in a large index.json ...", file=sys.stderr)
            tag = make_big_index(work / "big", args.index_entries)
            for _ in range(args.rounds):
                record(resolve_ours, run([*OCISIFT, "resolve", f"oci:{work}/big:{tag}"]))
                record(resolve_theirs, run(["skopeo", "inspect", "--raw", f"oci:{work}/big:{tag}"]))
                record("start-up: ocisift --version", run([*OCISIFT, "--version"]))
    rows = {name: {"median_s": round(median([t.wall for t in ts]), 4),
                   "best_s": round(min(t.wall for t in ts), 4),
                   "user_s": round(median([t.user for t in ts]), 3),
                   "sys_s": round(median([t.sys for t in ts]), 3),
                   "peak_rss_mib": round(max(t.peak_kib for t in ts) / 1024, 1),
                   "times_s": [round(t.wall, 3) for t in ts],
                   "user_times_s": [round(t.user, 3) for t in ts]}
            for name, ts in results.items()}
    pairs = [Pair(f"{a} / {b.split(': ')[1]}", a, b) for a, b in (
        ("copy registry->layout: ocisift", "copy registry->layout: skopeo"),
        ("copy registry->layout: ocisift", "fetch all blobs: curl"),
        ("pull extract-all: ocisift", "pull: oras-py"),
        ("pull extract-all: ocisift", "pull: curl+sha256sum+tar"),
        (resolve_ours, resolve_theirs))]
    pairs += [Pair(f"{image_ours} / curl+sha256sum+tar", image_ours, image_floor, goal=1.3),
              Pair(f"pull {args.image_layers}-layer image extract-all: ocisift TLS / plain HTTP", image_tls, image_ours),
              *small_pairs]
    measured = {pair.label: pair.ratios(results) for pair in pairs}
    ratios = {label: r for label, (r, _) in measured.items()}
    best_ratios = {label: b for label, (_, b) in measured.items()}
    report = {"size_bytes": size, "layers": args.layers, "rounds": args.rounds, "warmup": args.warmup, "digest": str(digest),
              "image": {"layers": args.image_layers, "layer_file_bytes": layer_size, "compressed_bytes": image_bytes,
                        "rounds": image_rounds},
              "small_files": {"files": args.small_files, "compressed_bytes": small_bytes, "rounds": args.small_rounds},
              "results": rows, "ratios": ratios, "best_ratios": best_ratios,
              "ratio_goals": {pair.label: pair.goal for pair in pairs if pair.goal is not None}}
    print(f"\n{size >> 20} MiB in {args.layers} layers, {args.rounds} rounds after {args.warmup} warm-up, medians;"
          f" {args.image_layers}-layer image ({image_bytes / (1 << 20):.1f} MiB of gzip), {image_rounds} rounds;"
          f" {args.small_files:,} small files ({small_bytes / (1 << 20):.1f} MiB of gzip), {args.small_rounds} rounds\n")
    mirror.print_rows(rows)
    print()
    for pair in pairs:
        goal = f"; goal at most {pair.goal:g}" if pair.goal is not None else ""
        print(f"ratio {pair.label}: {ratios[pair.label]} (medians), {best_ratios[pair.label]} (best runs){goal}")
    print("complexity with hostile input ...", file=sys.stderr)
    report["complexity"] = complexity.measure()
    complexity.print_table(report["complexity"])
    if args.mirror_images > 0:
        print("mirror: sync against skopeo sync ...", file=sys.stderr)
        with tempfile.TemporaryDirectory(prefix="ocisift-bench-mirror-") as tmp:
            report["mirror"] = mirror.measure(Path(tmp), args.mirror_rounds, images=args.mirror_images)
        mirror.print_table(report["mirror"])
    if args.trust_images > 0:
        print("trust: pull and sync with and without verification ...", file=sys.stderr)
        with tempfile.TemporaryDirectory(prefix="ocisift-bench-trust-") as tmp:
            report["trust"] = trust.measure(Path(tmp), args.trust_rounds, images=args.trust_images)
        trust.print_table(report["trust"])
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=2))
    print(json.dumps(report))
    return 0


SMALL_READERS = ("native", "tarfile")


def small_files_rows(work: Path, blob: Path, files: int, rounds_count: int) -> tuple[dict[str, list[Timing]], list[Pair]]:
    """The small-files layer unpacked by ocisift with each tar reader, by GNU tar and by `umoci unpack`
    (the whole image: a rootfs, the one layer, and its bundle's config), rounds in turn after one warm-up.

    Each run writes a new directory and all stay until the last round: on this kind of virtual disk,
    creating files just after tens of thousands were deleted costs seconds of system time, and a different
    number each run."""
    kept = work / "kept"
    kept.mkdir()
    counter = itertools.count()
    jobs: list[tuple[str, Callable[[], list[str]]]] = [
        (f"extract {files:,} small files: ocisift ({reader} reader)",
         lambda r=reader: ["env", f"OCISIFT_TAR_READER={r}", *OCISIFT, "pull", f"oci:{work}/small:v1",
                           "--mode", "extract", "-o", str(kept / str(next(counter)))])
        for reader in SMALL_READERS]
    jobs.append((f"extract {files:,} small files: tar -xzf",
                 lambda: ["sh", "-c", 'mkdir "$1" && exec tar -xzf "$0" -C "$1"', str(blob),
                          str(kept / str(next(counter)))]))
    if shutil.which("umoci"):
        jobs.append((f"extract {files:,} small files: umoci unpack",
                     lambda: ["umoci", "unpack", "--image", f"{work}/small:v1", str(kept / str(next(counter)))]))
    results: dict[str, list[Timing]] = {name: [] for name, _ in jobs}
    for round_no in range(rounds_count + 1):
        for name, command in jobs:
            timing = run(command())
            if round_no:  # the first round warms the page cache and the bytecode
                results[name].append(timing)
    shutil.rmtree(kept)
    tar_name = f"extract {files:,} small files: tar -xzf"
    pairs = []
    for reader in SMALL_READERS:
        ours = f"extract {files:,} small files: ocisift ({reader} reader)"
        pairs += [Pair(f"extract {files:,} small files, user CPU: ocisift {reader} / tar -xzf", ours, tar_name,
                       cpu=True, goal=2.0 if reader == "native" else None),
                  Pair(f"extract {files:,} small files, wall: ocisift {reader} / tar -xzf", ours, tar_name,
                       goal=1.3 if reader == "native" else None)]
    return results, pairs


def only_extract(files: int, rounds_count: int, json_out: str | None) -> int:
    """The small-files extraction alone: `./dev bench --only extract`."""
    compileall.compile_dir(os.path.dirname(ocisift.__file__), quiet=1)
    with tempfile.TemporaryDirectory(prefix="ocisift-bench-extract-") as tmp:
        work = Path(tmp)
        rng = random.Random(20_000)
        (blob,) = make_image(work / "small", [small_files_layer(rng, make_corpus(rng), files)])
        results, pairs = small_files_rows(work, blob, files, rounds_count)
    rows = {name: {"median_s": round(median([t.wall for t in ts]), 4), "best_s": round(min(t.wall for t in ts), 4),
                   "user_s": round(median([t.user for t in ts]), 3), "sys_s": round(median([t.sys for t in ts]), 3),
                   "peak_rss_mib": round(max(t.peak_kib for t in ts) / 1024, 1)}
            for name, ts in results.items()}
    print(f"\n{files:,} small files, {rounds_count} rounds after one warm-up, medians\n")
    print("| run | median s | best s | user s | sys s | peak RSS MiB |\n|---|---|---|---|---|---|")
    for name, row in rows.items():
        print(f"| {name} | {row['median_s']} | {row['best_s']} | {row['user_s']} | {row['sys_s']} | "
              f"{row['peak_rss_mib']} |")
    ratios = {pair.label: pair.ratios(results) for pair in pairs}
    for pair in pairs:
        goal = f" (goal {pair.goal})" if pair.goal is not None else ""
        print(f"ratio {pair.label}: {ratios[pair.label][0]} (medians), {ratios[pair.label][1]} (best runs){goal}")
    if json_out:
        Path(json_out).write_text(json.dumps({"small_files": rows, "ratios": ratios}, indent=2))
    return 0


def only_mirror(images: int, rounds: int, json_out: str | None) -> int:
    """The mirror rows alone: `./dev bench --only mirror`, when the whole bench takes too long."""
    compileall.compile_dir(os.path.dirname(ocisift.__file__), quiet=1)
    with tempfile.TemporaryDirectory(prefix="ocisift-bench-mirror-") as tmp:
        report = {"mirror": mirror.measure(Path(tmp), rounds, images=images)}
    mirror.print_table(report["mirror"])
    if json_out:
        Path(json_out).write_text(json.dumps(report, indent=2))
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
