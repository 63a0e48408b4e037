"""Crafted tar layers, each pulled through the CLI in a child process with every bound measured.

Each case builds its layer here (headers patched by hand where tarfile cannot write them), puts it in a
layout, and runs `ocisift pull oci:LAYOUT:TAG --mode extract(-all) -o OUT --format json` through
run_bounded; `arena.check` then holds it to the documented exit code, TIME_LIMIT, RSS_LIMIT_MIB, nothing
written outside the output directory and no staging left behind.
"""

from __future__ import annotations

import errno
import gzip
import io
import json
import os
import tarfile
import time

import pytest

import ocisift
from conftest import artifact, entry, member, raw_tar, write_index
from ocisift._core import mediatypes as mt
from ocisift._core.errors import UnsafeContentError
from ocisift._unpack.extract import MAX_HEADER_CHAIN, MAX_SPECIAL_HEADER, CappedTarInfo
from ocisift._unpack.limits import ExtractLimits

pytestmark = pytest.mark.usefixtures("tar_reader")  # each test under both tar readers

TIB = 1 << 40
GIB = 1 << 30
MIB = 1 << 20
IMAGE = mt.OCI_LAYER_GZIP  # application/vnd.oci.image.layer.v1.tar+gzip
BUNDLE = "application/vnd.acme.bundle.v1.tar"
TAG = "t"
CAP_WORDS = ("more than", "looks like a bomb", "--max-extract-size", "--max-ratio", "exceeds")


# -- building layers and layouts -----------------------------------------------------------------------


def publish(layout, layers: list[tuple[bytes, str]]) -> str:
    """A manifest with these (blob, media type) layers, tagged TAG: the reference to pull."""
    desc = artifact(layout, layers=[(blob, media_type, {}) for blob, media_type in layers])
    write_index(layout, [entry(desc, org__opencontainers__image__ref__name=TAG)])
    return f"oci:{layout.path}:{TAG}"


def one_layer(layout, tar: bytes, media_type: str = IMAGE) -> str:
    """As tests/test_extract.py's one_layer: gzip for image layers, the tar as it is for BUNDLE."""
    return publish(layout, [(gzip.compress(tar, mtime=0) if media_type == IMAGE else tar, media_type)])


def _checksum(block: bytearray) -> bytearray:
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return block


def header(name: str, kind: bytes, size: int, fmt: int = tarfile.GNU_FORMAT) -> bytearray:
    """One 512-byte header block of any type and any size, which tarfile's writer would not emit."""
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = 0o644
    info.mtime = 0
    block = bytearray(info.tobuf(fmt))[:512]
    block[124:136] = tarfile.itn(size, 12, tarfile.GNU_FORMAT)  # base-256 past 8 GiB
    return _checksum(block)


def padded(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 512)


END = b"\0" * 1024


def gnu_sparse(name: str, realsize: int, regions: list[tuple[int, int]], data: bytes,
               extended: list[tuple[int, int]] | None = None) -> bytes:
    """A GNU old-style sparse member (typeflag 'S'): up to four regions in the header at offset 386,
    isextended at 482, realsize at 483, more regions in extension blocks (21 a block)."""
    block = header(name, tarfile.GNUTYPE_SPARSE, len(data))
    for i, (off, n) in enumerate(regions[:4]):
        at = 386 + 24 * i
        block[at:at + 12] = tarfile.itn(off, 12, tarfile.GNU_FORMAT)
        block[at + 12:at + 24] = tarfile.itn(n, 12, tarfile.GNU_FORMAT)
    block[482] = 1 if extended else 0
    block[483:495] = tarfile.itn(realsize, 12, tarfile.GNU_FORMAT)
    out = bytes(_checksum(block))
    rest = list(extended or [])
    while rest:
        ext = bytearray(512)
        for i, (off, n) in enumerate(rest[:21]):
            ext[24 * i:24 * i + 12] = tarfile.itn(off, 12, tarfile.GNU_FORMAT)
            ext[24 * i + 12:24 * i + 24] = tarfile.itn(n, 12, tarfile.GNU_FORMAT)
        rest = rest[21:]
        ext[504] = 1 if rest else 0
        out += bytes(ext)
    return out + padded(data) + END


def pax_records(records: list[tuple[str, str]]) -> bytes:
    """PAX records, `LEN KEY=VALUE\n`, in order (keys may repeat, as sparse 0.0 needs)."""
    out = b""
    for key, value in records:
        body = f" {key}={value}\n".encode()
        n = len(body) + 1
        while len(str(n)) + len(body) != n:
            n += 1
        out += str(n).encode() + body
    return out


def pax_member(name: str, records: list[tuple[str, str]], data: bytes, stored_name: str | None = None) -> bytes:
    """A PAX extended header with exactly these records, then one regular member holding `data`."""
    body = pax_records(records)
    info = tarfile.TarInfo(stored_name or name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = 0
    return (bytes(header("././@PaxHeader", tarfile.XHDTYPE, len(body), tarfile.USTAR_FORMAT)) + padded(body)
            + info.tobuf(tarfile.USTAR_FORMAT) + padded(data))


def pax_sparse(version: str, realsize: int, regions: list[tuple[int, int]], data: bytes) -> bytes:
    """PAX sparse 0.0 (repeated offset/numbytes records), 0.1 (one map record) or 1.0 (the map as lines
    at the start of the data, padded to a block)."""
    if version == "0.0":
        records = [("GNU.sparse.size", str(realsize)), ("GNU.sparse.numblocks", str(len(regions)))]
        for off, n in regions:
            records += [("GNU.sparse.offset", str(off)), ("GNU.sparse.numbytes", str(n))]
        return pax_member("big", records, data) + END
    if version == "0.1":
        records = [("GNU.sparse.size", str(realsize)), ("GNU.sparse.numblocks", str(len(regions))),
                   ("GNU.sparse.map", ",".join(f"{off},{n}" for off, n in regions))]
        return pax_member("big", records, data) + END
    lines = f"{len(regions)}\n" + "".join(f"{off}\n{n}\n" for off, n in regions)
    records = [("GNU.sparse.major", "1"), ("GNU.sparse.minor", "0"), ("GNU.sparse.name", "big"),
               ("GNU.sparse.realsize", str(realsize))]
    return pax_member("big", records, padded(lines.encode()) + data, stored_name="GNUSparseFile.0/big") + END


def read_back(tar: bytes) -> list[tarfile.TarInfo]:
    """The members as Python's tarfile reads them, and as ocisift's CappedTarInfo reads them in stream mode."""
    with tarfile.open(fileobj=io.BytesIO(tar)) as whole:
        plain = whole.getmembers()
    with tarfile.open(fileobj=io.BytesIO(tar), mode="r|", tarinfo=CappedTarInfo) as stream:
        capped = [(m.name, m.size, m.sparse) for m in stream]
    assert capped == [(m.name, m.size, m.sparse) for m in plain]
    return plain


def refused_for_size(result) -> None:
    message = result.message
    assert any(word in message for word in CAP_WORDS), result.describe()


# -- a. sparse members count at their full expanded size -----------------------------------------------

SPARSE = {
    # the shapes tar writers emit: a few bytes of data, a TiB of holes
    "gnu": lambda: gnu_sparse("big", TIB, [(0, 5)], b"hello"),
    "gnu-data-at-the-end": lambda: gnu_sparse("big", TIB, [(TIB - 5, 5)], b"hello"),
    "gnu-extended": lambda: gnu_sparse("big", TIB, [(0, 1), (2, 1), (4, 1), (6, 1)], b"abcdefgh",
                                       extended=[(8 + 2 * i, 1) for i in range(4)]),
    "pax-0.0": lambda: pax_sparse("0.0", TIB, [(0, 5)], b"hello"),
    "pax-0.1": lambda: pax_sparse("0.1", TIB, [(0, 5)], b"hello"),
    "pax-1.0": lambda: pax_sparse("1.0", TIB, [(0, 5)], b"hello"),
    # no regions at all: the whole TiB is one hole
    "gnu-no-regions": lambda: gnu_sparse("big", TIB, [], b""),
    "pax-0.0-no-regions": lambda: pax_sparse("0.0", TIB, [], b""),
    "pax-1.0-no-regions": lambda: pax_sparse("1.0", TIB, [], b""),
}
# Maps that hide their holes from `size - sum(lengths)`: one region claiming the whole size over 1 stored
# byte, or regions out of order; tarfile fills what they do not cover with zeros as it reads.
LYING_SPARSE = {
    "gnu-region-past-the-end": lambda: gnu_sparse("big", TIB, [(TIB - 1, TIB)], b"x"),
    "pax-0.1-region-past-the-end": lambda: pax_sparse("0.1", TIB, [(TIB - 1, TIB)], b"x"),
    "pax-1.0-overlapping": lambda: pax_sparse("1.0", TIB, [(TIB - 1, 1)] * 3 + [(0, TIB)], b"xxx"),
    "pax-0.0-out-of-order": lambda: pax_sparse("0.0", TIB, [(TIB - 1, 1), (0, 1)], b"xy"),
    "gnu-negative-length": lambda: gnu_sparse("big", TIB, [(TIB - 1, -TIB)], b""),
}


@pytest.mark.parametrize("media_type", [IMAGE, BUNDLE])
@pytest.mark.parametrize("shape", sorted(SPARSE) + sorted(LYING_SPARSE))
def test_sparse_members_count_at_their_expanded_size(layout, arena, shape, media_type):
    tar = {**SPARSE, **LYING_SPARSE}[shape]()
    [big] = read_back(tar)  # Python's tarfile really reads it as sparse, a TiB when expanded
    assert big.name == "big" and big.isreg() and big.sparse is not None and big.size == TIB
    if shape.startswith("gnu"):
        assert big.type == tarfile.GNUTYPE_SPARSE
    else:
        assert big.pax_headers and all(k.startswith("GNU.sparse.") for k in big.pax_headers)
    ref = one_layer(layout, tar, media_type)
    result = arena.check(arena.pull(ref, file_limit=16 * MIB), 5)  # a file past 16 MiB kills the run
    if shape in SPARSE:
        refused_for_size(result)
    else:
        assert "regions are out of order, overlap or run past its size" in result.message, result.describe()
    assert result.disk_mib < 16, result.describe()  # nothing huge was written on the way to the refusal
    assert not arena.out.exists()
    assert arena.allocated() < MIB


def test_a_small_honest_sparse_file_is_written_at_its_size(layout, arena):
    """The accounting must not refuse what fits: 1 MiB of holes around 5 bytes of data."""
    ref = one_layer(layout, gnu_sparse("small", MIB, [(MIB // 2, 5)], b"hello"))
    arena.check(arena.pull(ref), 0)
    data = (arena.out / "small").read_bytes()
    assert len(data) == MIB and data[MIB // 2:MIB // 2 + 5] == b"hello" and data.count(0) == MIB - 5


def test_sparse_holes_count_against_a_lowered_size_cap(layout, arena):
    """48 MiB of holes under a 32 MiB --max-extract-size: refused, though the layer is a few hundred bytes."""
    ref = one_layer(layout, pax_sparse("1.0", 48 * MIB, [(0, 5)], b"hello"))
    result = arena.check(arena.pull(ref, "extract", "--max-extract-size", str(32 * MIB)), 5)
    assert "--max-extract-size" in result.message


# -- b. headers tarfile would read whole into memory ----------------------------------------------------


def _huge_pax(kind: bytes, size: int, data: bytes) -> bytes:
    return bytes(header("././@PaxHeader", kind, size, tarfile.USTAR_FORMAT)) + padded(data) + END


def _long_name(kind: bytes, size: int) -> bytes:
    name = b"n" * (size - 1) + b"\0"
    info = tarfile.TarInfo("f")
    info.mode = 0o644
    return bytes(header("././@LongLink", kind, size)) + padded(name) + info.tobuf(tarfile.GNU_FORMAT) + END


def _pax_chain(n: int) -> bytes:
    out = b""
    for i in range(n - 1):
        body = pax_records([("comment", f"header {i}")])
        out += bytes(header("././@PaxHeader", tarfile.XHDTYPE, len(body), tarfile.USTAR_FORMAT)) + padded(body)
    return out + pax_member("f", [("comment", "last")], b"data") + END


HEADERS = {
    "pax-1GiB-no-data": lambda: _huge_pax(tarfile.XHDTYPE, GIB, b""),
    "pax-1GiB-little-data": lambda: _huge_pax(tarfile.XHDTYPE, GIB, pax_records([("path", "x")])),
    "pax-global-1GiB": lambda: _huge_pax(tarfile.XGLTYPE, GIB, pax_records([("comment", "x")])),
    "pax-8GiB-base-256": lambda: _huge_pax(tarfile.XHDTYPE, 8 * GIB, b""),
    "gnu-long-name-2MiB": lambda: _long_name(tarfile.GNUTYPE_LONGNAME, 2 * MIB),
    "gnu-long-link-2MiB": lambda: _long_name(tarfile.GNUTYPE_LONGLINK, 2 * MIB),
    "pax-chain-of-20": lambda: _pax_chain(20),
}


@pytest.mark.parametrize("media_type", [IMAGE, BUNDLE])
@pytest.mark.parametrize("shape", sorted(HEADERS))
def test_oversized_and_chained_headers_are_refused_unread(layout, arena, shape, media_type):
    ref = one_layer(layout, HEADERS[shape](), media_type)
    result = arena.check(arena.pull(ref), 5)
    assert "extended tar header" in result.message, result.describe()
    assert result.rss_mib < 100, result.describe()  # the header was not read into memory
    assert not arena.out.exists()


def test_caps_on_headers_are_what_the_cases_exceed():
    assert MAX_SPECIAL_HEADER < 2 * MIB and MAX_HEADER_CHAIN < 20


def test_a_header_chain_within_the_cap_is_read(layout, arena):
    ref = one_layer(layout, _pax_chain(MAX_HEADER_CHAIN))
    arena.check(arena.pull(ref), 0)
    assert (arena.out / "f").read_bytes() == b"data"


# -- c. hardlinks that become copies count -----------------------------------------------------------------


def _hardlinks(n: int = 200, size: int = 8 * MIB) -> bytes:
    entries = [(member("data/big"), os.urandom(size))]
    entries += [(member(f"links/h{i:03}", tarfile.LNKTYPE, linkname="data/big"), None) for i in range(n)]
    return raw_tar(entries)


def _no_hardlinks(monkeypatch) -> None:
    def link(*args, **kwargs):
        raise OSError(errno.EMLINK, os.strerror(errno.EMLINK))

    monkeypatch.setattr(os, "link", link)


@pytest.mark.parametrize("media_type", [IMAGE, BUNDLE])
def test_hardlinks_made_copies_count_against_the_size_cap(layout, arena, monkeypatch, media_type):
    ref = one_layer(layout, _hardlinks(), media_type)
    limits = ExtractLimits(max_bytes=64 << 20)
    arena.snapshot()
    _no_hardlinks(monkeypatch)
    started = time.monotonic()
    with pytest.raises(UnsafeContentError, match="max-extract-size"):
        ocisift.pull(ref, str(arena.out), mode="extract", limits=limits)
    assert time.monotonic() - started <= 30
    assert not arena.out.exists()
    arena.check_untouched()
    monkeypatch.undo()
    ocisift.pull(ref, str(arena.out), mode="extract", limits=limits)  # real hardlinks take no space
    assert (arena.out / "data" / "big").stat().st_nlink == 201
    assert (arena.out / "links" / "h199").stat().st_ino == (arena.out / "data" / "big").stat().st_ino


_NO_LINKS = ("import errno, os\n"
             "def _link(*a, **k):\n"
             "    raise OSError(errno.EMLINK, os.strerror(errno.EMLINK))\n"
             "os.link = _link\n")


def test_hardlinks_made_copies_count_through_the_cli(layout, arena, tmp_path, monkeypatch):
    """The same layer through the CLI (os.link failing in the child, from a sitecustomize), bounds measured."""
    ref = one_layer(layout, _hardlinks())
    prelude = tmp_path / "prelude"
    prelude.mkdir()
    (prelude / "sitecustomize.py").write_text(_NO_LINKS)
    monkeypatch.setenv("PYTHONPATH", str(prelude))  # run_bounded puts src/ in front of it
    result = arena.check(arena.pull(ref, "extract", "--max-extract-size", str(64 << 20)), 5)
    assert "--max-extract-size" in result.message
    assert not arena.out.exists()


def test_a_hardlink_to_a_symlink_without_hardlinks_is_the_symlink_again(layout, arena, monkeypatch):
    """An image layer's hardlink to a symlink, where the filesystem has no hardlinks: the same link, written."""
    ref = one_layer(layout, raw_tar([(member("a", tarfile.SYMTYPE, linkname="nowhere"), None),
                                     (member("b", tarfile.LNKTYPE, linkname="a"), None)]))
    _no_hardlinks(monkeypatch)
    ocisift.pull(ref, str(arena.out), mode="extract")
    assert os.readlink(arena.out / "b") == "nowhere"


# -- d. deep trees, and paths too long for the filesystem ------------------------------------------------


def _deep(levels: int, part: str) -> tuple[bytes, str]:
    entries = []
    path = ""
    for _ in range(levels):
        path = f"{path}/{part}" if path else part
        entries.append((member(path, tarfile.DIRTYPE, mode=0o755), None))
    entries.append((member(f"{path}/bottom.txt"), b"at the bottom\n"))
    return raw_tar(entries), f"{path}/bottom.txt"


def _read_deep(root, rel: str) -> bytes:
    """Read a file through directory fds, one level at a time (no path-length limit on the way)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in rel.split("/")[:-1]:
            nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nxt
        leaf = os.open(rel.rsplit("/", 1)[-1], os.O_RDONLY, dir_fd=fd)
        with os.fdopen(leaf, "rb") as fh:
            return fh.read()
    finally:
        os.close(fd)


@pytest.mark.parametrize("media_type", [IMAGE, BUNDLE])
def test_a_tree_1100_directories_deep(layout, arena, media_type):
    tar, bottom = _deep(1100, "d")
    ref = one_layer(layout, tar, media_type)
    arena.check(arena.pull(ref), 0)
    assert _read_deep(arena.out, bottom) == b"at the bottom\n"
    arena.check(arena.pull(ref), 0)  # again, into the output that now exists
    assert _read_deep(arena.out, bottom) == b"at the bottom\n"


@pytest.mark.parametrize("media_type", [IMAGE, BUNDLE])
def test_a_tree_as_deep_as_the_filesystem_allows(layout, arena, media_type):
    """About 1,950 levels: the staged path of the file at the bottom is just under PATH_MAX (4096). Nothing
    here is a symlink, and the time is linear in the names (this took a minute when every entry resolved
    its whole parent path, and was refused as "symlinks take too much work")."""
    staged = len(str(arena.parent)) + len("/.ocisift-staging-xxxxxxxx")
    levels = (4095 - staged - len("/bottom.txt") - 8) // 2
    assert levels > 1900
    tar, bottom = _deep(levels, "d")
    ref = one_layer(layout, tar, media_type)
    result = arena.check(arena.pull(ref), 0)
    assert result.seconds < 15, result.describe()
    assert _read_deep(arena.out, bottom) == b"at the bottom\n"


@pytest.mark.parametrize("media_type", [IMAGE, BUNDLE])
def test_a_path_too_long_for_the_filesystem(layout, arena, media_type):
    tar, _ = _deep(300, "p" * 20)
    ref = one_layer(layout, tar, media_type)
    result = arena.check(arena.pull(ref), 5)
    assert "longer than this system allows" in result.message, result.describe()
    assert not arena.out.exists()


def test_a_file_name_too_long_for_the_filesystem(layout, arena):
    """One component past NAME_MAX: a clean refusal, not a tar decoding error."""
    ref = one_layer(layout, raw_tar([(member("d/" + "n" * 300), b"x")]))
    result = arena.check(arena.pull(ref), 5)
    assert "longer than this system allows" in result.message, result.describe()


def test_a_tree_that_fits_in_staging_but_not_in_the_existing_output(layout, arena):
    """The staging directory's name is shorter than a long output name, so a tree can fit one and not the
    other: refused before anything is moved, and the existing output is as it was."""
    out = arena.parent / ("o" * 200)
    (out / "keep").mkdir(parents=True)
    (out / "keep" / "mine.txt").write_text("mine")
    # 4096 bytes is PATH_MAX: the staged path stays just under it, the same path in `out` goes over.
    room = 4096 - len(str(arena.parent)) - len("/.ocisift-staging-xxxxxxxx/") - len("/bottom.txt") - 10
    tar, _ = _deep(room // 10, "q" * 9)
    arena.out = out
    ref = one_layer(layout, tar)
    result = arena.check(arena.pull(ref, out=out), 5)
    assert "longer than this system allows" in result.message, result.describe()
    assert sorted(os.listdir(out)) == ["keep"] and (out / "keep" / "mine.txt").read_text() == "mine"


# -- e. many whiteouts -----------------------------------------------------------------------------------

N_WHITEOUTS = 20_000


def _lower() -> bytes:
    return raw_tar([(member("d", tarfile.DIRTYPE, mode=0o755), None), (member("keep.txt"), b"kept\n")]
                   + [(member(f"d/f{i:05}"), b"x") for i in range(N_WHITEOUTS)])


@pytest.mark.parametrize("kind", ["one-whiteout-each", "opaque"])
def test_many_whiteouts(layout, arena, kind):
    if kind == "opaque":
        upper = raw_tar([(member("d/.wh..wh..opq"), b"")])
    else:
        upper = raw_tar([(member(f"d/.wh.f{i:05}"), b"") for i in range(N_WHITEOUTS)])
    ref = publish(layout, [(gzip.compress(_lower()), IMAGE), (gzip.compress(upper), IMAGE)])
    arena.check(arena.pull(ref, "extract-all"), 0)
    assert os.listdir(arena.out / "d") == []
    assert (arena.out / "keep.txt").read_text() == "kept\n"


# -- f. long and many symlinks in an image layer ------------------------------------------------------------


def test_a_symlink_with_a_100KB_target(layout, arena):
    target = "t/" * 50_000
    ref = one_layer(layout, raw_tar([(member("ok.txt"), b"ok"), (member("long", tarfile.SYMTYPE, linkname=target), None)]))
    result = arena.check(arena.pull(ref), 5)
    assert "longer than this system allows" in result.message, result.describe()
    assert len(result.out) < 10_000  # the message does not repeat the 100 KB
    assert not arena.out.exists()


def _chain(n: int, through: str | None = None) -> bytes:
    entries = [(member("real", tarfile.DIRTYPE, mode=0o755), None)]
    entries += [(member(f"s{i:05}", tarfile.SYMTYPE, linkname=f"s{i + 1:05}" if i + 1 < n else "real"), None)
                for i in range(n)]
    if through is not None:
        entries.append((member(f"{through}/file"), b"x"))
    return raw_tar(entries)


def _doubling(n: int) -> bytes:
    """Each link names the one before it twice (`s{i-1}/../s{i-1}`): resolving the last one naively costs 2**n."""
    entries = [(member("real", tarfile.DIRTYPE, mode=0o755), None),
               (member("s00000", tarfile.SYMTYPE, linkname="real"), None)]
    entries += [(member(f"s{i:05}", tarfile.SYMTYPE, linkname=f"s{i - 1:05}/../s{i - 1:05}"), None)
                for i in range(1, n)]
    entries.append((member(f"s{n - 1:05}/file"), b"x"))
    return raw_tar(entries)


def _many_through_a_chain(links: int, files: int) -> bytes:
    entries = [(member("real", tarfile.DIRTYPE, mode=0o755), None)]
    entries += [(member(f"s{i:03}", tarfile.SYMTYPE, linkname=f"s{i + 1:03}" if i + 1 < links else "real"), None)
                for i in range(links)]
    entries += [(member(f"s000/f{i:05}"), b"x") for i in range(files)]
    return raw_tar(entries)


SYMLINKS = {
    # (layer, exit code, what must be true afterwards)
    "10000-chained-nothing-through": (lambda: _chain(10_000), 0),
    "10000-chained-file-through-the-head": (lambda: _chain(10_000, "s00000"), 5),
    "10000-chained-file-through-the-last-200": (lambda: _chain(10_000, "s09800"), 0),
    "10000-doubling": (lambda: _doubling(10_000), 5),
    "10000-files-through-a-chain-of-30": (lambda: _many_through_a_chain(30, 10_000), 0),
}


@pytest.mark.parametrize("shape", sorted(SYMLINKS))
def test_many_symlinks(layout, arena, shape):
    build, code = SYMLINKS[shape]
    ref = one_layer(layout, build())
    result = arena.check(arena.pull(ref), code)
    if code == 5:
        assert "symlinks" in result.message, result.describe()
        assert not arena.out.exists()
    elif shape == "10000-chained-nothing-through":
        assert len(os.listdir(arena.out)) == 10_001
        assert os.readlink(arena.out / "s09999") == "real"
    elif shape == "10000-chained-file-through-the-last-200":
        assert (arena.out / "real" / "file").read_bytes() == b"x"
    else:
        assert len(os.listdir(arena.out / "real")) == 10_000


# -- g. an index.json with 30,000 entries ------------------------------------------------------------------


def test_an_index_with_30000_entries_is_ambiguous(layout, arena):
    """30,000 different manifests in index.json, no tag: refused as ambiguous (exit 4), within the bounds."""
    base = artifact(layout, {"f.txt": b"x"})
    manifest = json.loads(layout.fetch_manifest(base))
    entries = []
    for i in range(30_000):
        manifest["annotations"] = {"com.acme.n": str(i)}
        desc = layout.push_bytes(json.dumps(manifest).encode(), mt.OCI_MANIFEST)
        entries.append(entry(desc, com__acme__n=str(i)))
    write_index(layout, entries)
    assert len({e["digest"] for e in entries}) == 30_000
    result = arena.check(arena.pull(f"oci:{layout.path}", "extract"), 4)
    assert "no tag was given" in result.message, result.describe()
    assert len(result.json()["error"]["candidates"]) == 30_000
    assert not arena.out.exists()
