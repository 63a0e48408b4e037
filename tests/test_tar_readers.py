"""The two tar readers read the same archives the same way, and where they would not, the stricter one decides.

ocisift unpacks layers with its own reader (`_core/tarstream.py`, Go's archive/tar rules) and keeps Python's
tarfile (with the same rules, `_core/tarheaders.py`) as the second one; every extraction test runs under
both (the `tar_reader` fixture). Here the members themselves are compared, field by field and byte by byte,
on archives the real tools write: GNU tar in each of its formats (v7, ustar, gnu, posix/pax) with long names,
hardlinks, symlinks, devices, FIFOs, sparse files (`--sparse`, in the GNU and every PAX sparse form) and
extended attributes; bsdtar (libarchive) with its own records; and Python's tarfile.
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from ocisift._core.errors import IntegrityError
from ocisift._core.tarheaders import CappedTarInfo
from ocisift._core.tarstream import TarMember, TarReader

pytestmark = pytest.mark.skipif(shutil.which("bsdtar") is None or os.geteuid() != 0,
                                reason="bsdtar, and root for device nodes")


def _tree(root: Path) -> Path:
    root.mkdir()
    (root / "a" / ("long-" + "x" * 150)).mkdir(parents=True)
    (root / "a" / ("long-" + "x" * 150) / ("name-" + "y" * 120)).write_bytes(b"deep\n" * 100)
    (root / "file").write_bytes(os.urandom(70_000))
    os.link(root / "file", root / "hard")
    (root / "link").symlink_to("file")
    (root / ("l" * 120)).symlink_to("t" * 130)
    os.mkfifo(root / "fifo")
    os.mknod(root / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    with open(root / "sparse", "wb") as fh:
        fh.seek(3 << 20)
        fh.write(b"middle")
        fh.seek(9 << 20)
        fh.write(b"end")
    os.setxattr(root / "file", "user.note", bytes(range(40)))
    os.chown(root / "file", 1234, 5678)
    os.utime(root / "file", ns=(1_000_000_000_123_456_789, 1_000_000_000_123_456_789))
    return root


def _native(data: bytes) -> list[tuple[TarMember, bytes]]:
    reader = TarReader(io.BytesIO(data))
    out = []
    for m in reader:
        chunks = []
        while reader.remaining:
            chunks.append(bytes(reader.read(reader.remaining)))
        out.append((m, b"".join(chunks)))
    return out


def _tarfile(data: bytes) -> list[tuple[TarMember, bytes]]:
    out = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r|", tarinfo=CappedTarInfo, encoding="utf-8",
                      errors="surrogateescape") as tar:
        for info in tar:
            m = TarMember.of(info)
            stored = b""
            if info.isreg():
                src = tar.extractfile(info)
                assert src is not None
                logical = src.read()
                # tarfile hands out the expanded file; the native reader its stored regions: compare those
                stored = b"".join(logical[o:o + n] for o, n in m.sparse or []) if m.sparse is not None else logical
            out.append((m, stored))
    return out


def _fields(m: TarMember) -> tuple[object, ...]:
    regions = [(o, n) for o, n in m.sparse or [] if n] if m.sparse is not None else None
    xattrs = {k: v for k, v in m.pax_headers.items() if "xattr" in k}
    return (m.name.rstrip("/"), m.type, m.mode & 0o7777, m.uid, m.gid, m.size, m.mtime, m.linkname,
            m.devmajor if m.type in (b"3", b"4") else 0, m.devminor if m.type in (b"3", b"4") else 0,
            regions, xattrs, m.pax_headers.get("mtime"))


WRITERS = {
    "gnutar-v7": ["tar", "--format=v7"],
    "gnutar-ustar": ["tar", "--format=ustar"],
    "gnutar-gnu": ["tar", "--format=gnu", "--sparse"],
    "gnutar-pax": ["tar", "--format=posix", "--sparse", "--xattrs", "--xattrs-include=*"],
    "gnutar-pax-sparse-0.0": ["tar", "--format=posix", "--sparse", "--sparse-version=0.0"],
    "gnutar-pax-sparse-0.1": ["tar", "--format=posix", "--sparse", "--sparse-version=0.1"],
    "gnutar-pax-sparse-1.0": ["tar", "--format=posix", "--sparse", "--sparse-version=1.0"],
    "bsdtar-pax": ["bsdtar", "--format", "pax", "--xattrs"],
    "bsdtar-gnutar": ["bsdtar", "--format", "gnutar"],
}


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_both_readers_read_what_the_real_tools_write_alike(tmp_path, writer):
    tree = _tree(tmp_path / "tree")
    names = sorted(p.name for p in tree.iterdir())
    made = subprocess.run([*WRITERS[writer], "-C", str(tree), "-cf", "-", *names], capture_output=True,
                          timeout=60)
    # v7 and ustar cannot hold every entry (long names, devices, FIFOs): GNU tar leaves those out and says so
    assert made.returncode == 0 or (writer.endswith(("v7", "ustar")) and made.stdout), made.stderr
    data = made.stdout
    native, reference = _native(data), _tarfile(data)
    assert [_fields(m) for m, _ in native] == [_fields(m) for m, _ in reference]
    assert [d for _, d in native] == [d for _, d in reference]
    assert len(native) >= 5
    if "sparse" in writer or writer == "gnutar-gnu":
        sparse = next(m for m, _ in native if m.name == "sparse")
        assert sparse.sparse and sparse.size == (9 << 20) + 3  # read as sparse, at its whole size


def test_python_tarfile_archives_read_alike(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(_tree(tmp_path / "tree"), arcname=".")
    native, reference = _native(buf.getvalue()), _tarfile(buf.getvalue())
    assert [_fields(m) for m, _ in native] == [_fields(m) for m, _ in reference]
    assert [d for _, d in native] == [d for _, d in reference]


def _header(name: bytes, kind: bytes, size: int = 0) -> bytes:
    info = tarfile.TarInfo(name.decode())
    info.type, info.size = kind, size
    return info.tobuf(tarfile.USTAR_FORMAT)


def test_where_tarfile_and_go_disagree_the_stricter_reading_is_both_readers(tmp_path):
    """A global PAX header: tarfile applies its path to every later member, Go to none; both readers here
    apply it to none. A header that fails its checksum after the first: tarfile ends the archive there
    and drops what follows, Go refuses; both refuse."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT, pax_headers={"path": "renamed"}) as tar:
        for name in ("a", "b"):
            info = tarfile.TarInfo(name)
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))
    assert [m.name for m, _ in _native(buf.getvalue())] == [m.name for m, _ in _tarfile(buf.getvalue())] \
        == ["a", "b"]
    broken = bytearray(_header(b"a", tarfile.REGTYPE, 1) + b"x".ljust(512, b"\0") + _header(b"b", tarfile.REGTYPE))
    broken[512 + 512 + 148] ^= 1  # the second header's checksum
    for read in (_native, _tarfile):
        with pytest.raises(IntegrityError):
            read(bytes(broken) + bytes(1024))


def test_an_archive_may_end_at_a_members_end_but_not_inside_one():
    """umoci writes layers that stop right after the last member's data: read whole. Cut inside a header or
    inside data, the stream is refused."""
    whole = _header(b"a", tarfile.REGTYPE, 3) + b"abc"
    assert [(m.name, d) for m, d in _native(whole)] == [("a", b"abc")]
    for cut in (whole[:-1], whole[:300], _header(b"a", tarfile.REGTYPE, 3) + b"abc".ljust(512, b"\0") + b"x" * 100):
        with pytest.raises(IntegrityError):
            _native(cut)
