"""How work grows with hostile input: each family timed at n and at 8n, in this process, best of three.

A linear algorithm shows a ratio near 8, an n·log n one a little more; quadratic work would show 64. The
target is a ratio of at most 12 for every family. The inputs are made here, as an attacker would make them:

- symlink target length: one link whose target has n `./` components (8n stays within the 4 KiB a Linux link
  holds), then 500 files written through it;
- whiteout count: n files in one directory, then a layer with a whiteout for each;
- candidate count: a tagless layout whose index.json lists n matching manifests (an ambiguity listing all);
- path depth: one file n directories deep, into a new output and into one that exists;
- repeated opaque whiteouts: a layer with n files in one directory, then its opaque marker n times;
- deep files after a symlink: one unrelated symlink, then n files in one directory 1,000 deep (so every
  entry's parent is a long path to resolve);
- links through a long chain (an artifact layer): a chain of 8 links whose targets wind back and forth,
  then n links to its start (refused once the resolution steps pass the layer's allowance, and timed
  until then).
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import ocisift
from ocisift._core import mediatypes as mt
from ocisift._core.builders import manifest_bytes
from ocisift._stores.layout import LayoutStore
from ocisift._unpack.staging import remove_tree

TARGET = 12.0


def _tar(entries: list[tuple[str, bytes, str]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, kind in entries:
            info = tarfile.TarInfo(name)
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif kind == "link":
                info.type, info.linkname = tarfile.SYMTYPE, data.decode()
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buf.getvalue(), compresslevel=1, mtime=0)


def _image(path: Path, layers: list[bytes]) -> str:
    store = LayoutStore.create(str(path))
    descs = [store.push_bytes(layer, mt.OCI_LAYER_GZIP) for layer in layers]
    cfg = store.push_bytes(b"{}", mt.OCI_EMPTY)
    store.tag(store.push_bytes(manifest_bytes(cfg, descs), mt.OCI_MANIFEST), "v1")
    return f"oci:{path}:v1"


def _pull(ref: str, out: Path) -> Callable[[], None]:
    runs = [0]

    def run() -> None:  # a new output each time: removing the last one is not what is measured
        runs[0] += 1
        ocisift.pull(ref, str(out / str(runs[0])), mode="extract-all")
    return run


def symlink_target(work: Path, n: int) -> Callable[[], None]:
    layer = _tar([("d", b"", "dir"), ("a", ("./" * n + "d").encode(), "link"),
                  *[(f"a/f{i}", b"x", "file") for i in range(500)]])
    return _pull(_image(work / "layout", [layer]), work / "out")


def whiteouts(work: Path, n: int) -> Callable[[], None]:
    lower = _tar([("w", b"", "dir"), *[(f"w/f{i}", b"x", "file") for i in range(n)]])
    upper = _tar([(f"w/.wh.f{i}", b"", "file") for i in range(n)])
    return _pull(_image(work / "layout", [lower, upper]), work / "out")


def candidates(work: Path, n: int) -> Callable[[], None]:
    store = LayoutStore.create(str(work / "layout"))
    cfg = store.push_bytes(b"{}", mt.OCI_EMPTY)
    rows = []
    for i in range(n):
        desc = store.push_bytes(manifest_bytes(cfg, [], annotations={"n": str(i)}), mt.OCI_MANIFEST)
        rows.append(desc.to_json())
    (work / "layout" / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": rows}))

    def run() -> None:
        try:
            ocisift.resolve(f"oci:{work}/layout", ocisift.Selector.build(artifact_type="*"))
        except ocisift.AmbiguousError:
            return
        raise AssertionError("expected an ambiguity")
    return run


def path_depth(work: Path, n: int) -> Callable[[], None]:
    layer = _tar([("d/" * n + "f", b"deep", "file")])
    return _pull(_image(work / "layout", [layer]), work / "out")


def path_depth_existing(work: Path, n: int) -> Callable[[], None]:
    """The same tree pulled into a directory that already holds a file: merged, not renamed into place."""
    layer = _tar([("d/" * n + "f", b"deep", "file")])
    ref = _image(work / "layout", [layer])
    runs = [0]

    def run() -> None:
        runs[0] += 1
        out = work / "out" / str(runs[0])
        out.mkdir(parents=True)
        (out / "mine").write_bytes(b"x")
        ocisift.pull(ref, str(out), mode="extract-all")
    return run


def repeated_opaque(work: Path, n: int) -> Callable[[], None]:
    lower = _tar([("d", b"", "dir"), ("d/old", b"x", "file")])
    upper = _tar([*[(f"d/f{i}", b"x", "file") for i in range(n)], *[("d/.wh..wh..opq", b"", "file")] * n])
    return _pull(_image(work / "layout", [lower, upper]), work / "out")


def deep_files_after_a_symlink(work: Path, n: int) -> Callable[[], None]:
    deep = "/".join(["d"] * 1_000)
    layer = _tar([("l", b"elsewhere", "link"), *[(f"{deep}/f{i}", b"x", "file") for i in range(n)]])
    return _pull(_image(work / "layout", [layer]), work / "out")


def link_chain(work: Path, n: int) -> Callable[[], None]:
    winding = "/".join(["q", ".."] * 200)
    entries = [("q", b"", "dir"), ("L8", b"q", "link")]
    entries += [(f"L{i}", f"{winding}/L{i + 1}".encode(), "link") for i in range(8)]
    entries += [(f"p{i}", b"L0", "link") for i in range(n)]
    store = LayoutStore.create(str(work / "layout"))
    layer = store.push_bytes(_tar(entries), "application/vnd.acme.files.v1.tar+gzip")
    cfg = store.push_bytes(b"{}", mt.OCI_EMPTY)
    store.tag(store.push_bytes(manifest_bytes(cfg, [layer]), mt.OCI_MANIFEST), "v1")
    runs = [0]

    def run() -> None:
        runs[0] += 1
        try:
            ocisift.pull(f"oci:{work}/layout:v1", str(work / "out" / str(runs[0])), mode="extract-all")
        except ocisift.OcisiftError:
            pass  # refused for its resolution work: the time until then is what is measured
    return run


FAMILIES: list[tuple[str, Callable[[Path, int], Callable[[], None]], int]] = [
    ("symlink target length", symlink_target, 250),
    ("whiteout count", whiteouts, 2_500),
    ("candidate count", candidates, 3_750),
    ("path depth", path_depth, 250),
    ("path depth, existing output", path_depth_existing, 250),
    ("repeated opaque whiteouts", repeated_opaque, 1_000),
    ("deep files after a symlink", deep_files_after_a_symlink, 100),
    ("links through a long chain", link_chain, 250),
]


def best_of(run: Callable[[], None], rounds: int = 3) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def measure() -> list[dict[str, object]]:
    rows = []
    for name, make, n in FAMILIES:
        times = []
        for size in (n, 8 * n):
            tmp = tempfile.mkdtemp(prefix="ocisift-complexity-")
            try:
                times.append(best_of(make(Path(tmp), size)))
            finally:
                remove_tree(tmp)
        rows.append({"family": name, "n": n, "seconds_n": round(times[0], 4), "seconds_8n": round(times[1], 4),
                     "ratio": round(times[1] / times[0], 2), "ok": times[1] / times[0] <= TARGET})
    return rows


def print_table(rows: list[dict[str, object]]) -> None:
    print(f"\ncomplexity: time at n and at 8n (ratio at most {TARGET:g}; linear is 8)\n")
    print(f"| {'family':<24} | {'n':>6} | {'s at n':>8} | {'s at 8n':>8} | {'ratio':>6} |")
    print(f"|{'-' * 26}|{'-' * 8}|{'-' * 10}|{'-' * 10}|{'-' * 8}|")
    for r in rows:
        mark = "" if r["ok"] else "  (over the target)"
        print(f"| {r['family']:<24} | {r['n']:>6} | {r['seconds_n']:>8.4f} | {r['seconds_8n']:>8.4f} | "
              f"{r['ratio']:>6.2f} |{mark}")


if __name__ == "__main__":
    print_table(measure())
