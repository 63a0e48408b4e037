"""What a rootfs unpack keeps besides bytes, member by member, on tars built as the format documents say.

The records are written as their writers document them: PAX `SCHILY.xattr.NAME`
(star's and GNU tar's form, and Go's archive/tar `Xattrs`), `LIBARCHIVE.xattr.NAME`
(libarchive's tar(5): the name URL-encoded, the value base64), PAX times as
decimal seconds with a fraction (POSIX pax(1), "mtime"), and global headers
(typeflag `g`), which Go's archive/tar hands to its caller and applies to no
member. The comparisons against umoci on real tools' images are in
test_rootfs_tools.py; these cover what those images cannot hold.
"""

from __future__ import annotations

import base64
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

import ocisift
from conftest import artifact, entry, member, raw_tar, write_index
from ocisift._core import mediatypes as mt
from ocisift._core.errors import IntegrityError, MetadataError, UnsafeContentError
from ocisift._core.models import Descriptor
from ocisift._unpack.metadata import RootfsMetadata, rootless_owner

pytestmark = [pytest.mark.usefixtures("tar_reader"),  # each test under both tar readers
              pytest.mark.skipif(os.geteuid() != 0, reason="owners, devices and trusted.* attributes need root")]


def image(layout, *layers: bytes, media_type: str = mt.OCI_LAYER_TAR) -> str:
    desc = artifact(layout, layers=[(data, media_type, {}) for data in layers])
    write_index(layout, [entry(desc, org__opencontainers__image__ref__name="1")])
    return f"oci:{layout.path}:1"


def pax(name: str, kind: bytes = tarfile.REGTYPE, *, mode: int = 0o644, records: dict[str, str] | None = None,
        uid: int = 0, gid: int = 0, mtime: int = 1_000_000_000, linkname: str = "") -> tarfile.TarInfo:
    info = member(name, kind, mode=mode, linkname=linkname)
    info.uid, info.gid, info.mtime = uid, gid, mtime
    info.pax_headers = dict(records or {})
    return info


def unpack(layout, tmp_path, *layers: bytes, **kw) -> tuple[ocisift.PullResult, str]:
    out = tmp_path / "rootfs"
    return ocisift.pull(image(layout, *layers), str(out), mode="extract-all", **kw), str(out)


def test_modes_are_exact_whatever_the_umask(layout, tmp_path):
    layer = raw_tar([
        (pax("tmp", tarfile.DIRTYPE, mode=0o1777), None),
        (pax("srv", tarfile.DIRTYPE, mode=0o2775), None),
        (pax("su", mode=0o4755), b"x"),
        (pax("world", mode=0o666), b"x"),
        (pax("none", mode=0o000), b"x"),
        (pax("ro", tarfile.DIRTYPE, mode=0o555), None),
        (pax("ro/inside", mode=0o444), b"x"),
    ])
    old = os.umask(0o077)
    try:
        _, out = unpack(layout, tmp_path, layer)
    finally:
        os.umask(old)
    modes = {name: stat.S_IMODE(os.lstat(f"{out}/{name}").st_mode) for name in
             ("tmp", "srv", "su", "world", "none", "ro", "ro/inside")}
    assert modes == {"tmp": 0o1777, "srv": 0o2775, "su": 0o4755, "world": 0o666, "none": 0, "ro": 0o555,
                     "ro/inside": 0o444}


@pytest.mark.skipif(os.geteuid() != 0, reason="owners other than one's own need root")
def test_a_hardlink_made_a_copy_keeps_its_owner_and_setuid_bits(layout, tmp_path, monkeypatch):
    """ext4 stops at 65,000 links to one inode; past that a hardlink becomes a copy, which must be the same
    file (owner, mode with its setuid bit, times, attributes): never a setuid file that root owns."""
    import errno

    from ocisift._unpack import extract

    capability = bytes.fromhex("0100000200200000000000000000000000000000")
    layer = raw_tar([
        (pax("bin", tarfile.DIRTYPE, mode=0o755), None),
        (pax("bin/tool", mode=0o4755, uid=1000, gid=1001, records={
            "SCHILY.xattr.security.capability": capability.decode("utf-8", "surrogateescape")}), b"ELF"),
        (pax("bin/again", tarfile.LNKTYPE, linkname="bin/tool"), None),
        (pax("bin/sh", tarfile.SYMTYPE, linkname="tool", uid=7, gid=8, records={"mtime": "42"}), None),
        (pax("bin/sh2", tarfile.LNKTYPE, linkname="bin/sh"), None),
    ])

    def too_many_links(*args: object, **kw: object) -> None:
        raise OSError(errno.EMLINK, "Too many links")

    monkeypatch.setattr(extract.os, "link", too_many_links)
    _, out = unpack(layout, tmp_path, layer)
    tool, again = os.lstat(f"{out}/bin/tool"), os.lstat(f"{out}/bin/again")
    assert again.st_ino != tool.st_ino and Path(f"{out}/bin/again").read_bytes() == b"ELF"
    assert (again.st_uid, again.st_gid, stat.S_IMODE(again.st_mode)) == (1000, 1001, 0o4755)
    assert again.st_mtime_ns == tool.st_mtime_ns
    assert os.getxattr(f"{out}/bin/again", "security.capability") == capability
    sh2 = os.lstat(f"{out}/bin/sh2")
    assert os.readlink(f"{out}/bin/sh2") == "tool" and (sh2.st_uid, sh2.st_gid, sh2.st_mtime_ns) == (7, 8, 42 * 10**9)


def test_an_empty_pax_path_keeps_the_header_name_as_go_reads_it(layout, tmp_path):
    """Go's mergePAX skips empty records ("keep the original USTAR value"); neither reader drops the member."""
    layer = raw_tar([(pax("kept.txt", records={"path": ""}), b"kept"),
                     (pax("link", tarfile.SYMTYPE, linkname="kept.txt", records={"linkpath": ""}), None)])
    _, out = unpack(layout, tmp_path, layer)
    assert Path(f"{out}/kept.txt").read_bytes() == b"kept" and os.readlink(f"{out}/link") == "kept.txt"


def test_artifact_layers_keep_umask_filtered_modes(layout, tmp_path):
    layer = raw_tar([(pax("su", mode=0o4777), b"x"), (pax("d", tarfile.DIRTYPE, mode=0o777), None)])
    old = os.umask(0o022)
    try:
        ocisift.pull(image(layout, layer, media_type="application/vnd.acme.files.v1.tar"), str(tmp_path / "out"),
                     mode="extract")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "out" / "su").st_mode) == 0o755
    assert stat.S_IMODE(os.stat(tmp_path / "out" / "d").st_mode) == 0o755


def test_owners_times_and_attributes_in_the_order_that_keeps_them(layout, tmp_path):
    """A chown clears setuid bits and file capabilities: owner first, then mode, then attributes."""
    capability = bytes.fromhex("0100000200200000000000000000000000000000")
    layer = raw_tar([
        (pax("ping", mode=0o4755, uid=1000, gid=1000, records={
            "SCHILY.xattr.security.capability": capability.decode("utf-8", "surrogateescape"),
            "mtime": "1234567890.123456789", "atime": "1111111111.5"}), b"ELF"),
        (pax("link", tarfile.SYMTYPE, linkname="/ping", uid=7, gid=8, records={"mtime": "42.000000001"}), None),
    ])
    _, out = unpack(layout, tmp_path, layer)
    info = os.lstat(f"{out}/ping")
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (1000, 1000, 0o4755)
    assert os.getxattr(f"{out}/ping", "security.capability") == capability
    assert (info.st_mtime_ns, info.st_atime_ns) == (1234567890_123456789, 1111111111_500000000)
    link = os.lstat(f"{out}/link")
    assert (link.st_uid, link.st_gid, link.st_mtime_ns) == (7, 8, 42_000_000_001)


def test_libarchive_records_are_read_as_libarchive_writes_them(layout, tmp_path):
    """libarchive tar(5): "LIBARCHIVE.xattr.namespace.key ... The key value is URL-encoded ... The value of
    this key is the extended attribute value encoded in base 64" (bsdtar writes it without padding)."""
    value = bytes(range(7))
    layer = raw_tar([(pax("f", records={
        "LIBARCHIVE.xattr.user.a%3Db%25c": base64.b64encode(value).decode().rstrip("="),
        "LIBARCHIVE.xattr.user.both": base64.b64encode(b"libarchive").decode(),
        "SCHILY.xattr.user.both": "schily",  # libarchive writes both; the SCHILY record wins, as Go reads it
    }), b"x")])
    _, out = unpack(layout, tmp_path, layer)
    assert os.getxattr(f"{out}/f", "user.a=b%c") == value
    assert os.getxattr(f"{out}/f", "user.both") == b"schily"


def test_directories_get_their_metadata_after_their_content(layout, tmp_path):
    """The last header of a directory wins, and its mtime is set once nothing more is written inside."""
    first = raw_tar([(pax("etc", tarfile.DIRTYPE, mode=0o755, mtime=100), None), (pax("etc/a", mtime=100), b"a")])
    second = raw_tar([(pax("etc", tarfile.DIRTYPE, mode=0o750, uid=3, gid=4, mtime=200,
                            records={"SCHILY.xattr.user.dir": "2"}), None),
                      (pax("etc/b", mtime=300), b"b"), (pax("etc/.wh.a"), b"")])
    _, out = unpack(layout, tmp_path, first, second)
    info = os.lstat(f"{out}/etc")
    assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid, info.st_mtime) == (0o750, 3, 4, 200)
    assert os.getxattr(f"{out}/etc", "user.dir") == b"2" and sorted(os.listdir(f"{out}/etc")) == ["b"]


def test_the_root_entry_describes_the_output_directory(layout, tmp_path):
    layer = raw_tar([(pax(".", tarfile.DIRTYPE, mode=0o700, mtime=12345), None), (pax("./f"), b"x")])
    _, out = unpack(layout, tmp_path, layer)
    info = os.stat(out)
    assert (stat.S_IMODE(info.st_mode), info.st_mtime) == (0o700, 12345)


def test_merging_into_an_existing_directory_keeps_new_directories_metadata(layout, tmp_path):
    (tmp_path / "rootfs").mkdir()
    (tmp_path / "rootfs" / "mine").write_text("keep me")
    layer = raw_tar([(pax("opt", tarfile.DIRTYPE, mode=0o1750, uid=5, gid=6, mtime=777,
                           records={"SCHILY.xattr.user.x": "y"}), None), (pax("opt/f"), b"x")])
    _, out = unpack(layout, tmp_path, layer)
    info = os.lstat(f"{out}/opt")
    assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid, info.st_mtime) == (0o1750, 5, 6, 777)
    assert os.getxattr(f"{out}/opt", "user.x") == b"y" and (tmp_path / "rootfs" / "mine").read_text() == "keep me"


def _nodes() -> bytes:
    null = pax("dev/null", tarfile.CHRTYPE, mode=0o666)
    null.devmajor, null.devminor = 1, 3
    loop = pax("dev/loop0", tarfile.BLKTYPE, mode=0o660, gid=6)
    loop.devmajor, loop.devminor = 7, 0
    return raw_tar([(pax("dev", tarfile.DIRTYPE, mode=0o755), None), (null, None), (loop, None),
                    (pax("run/ctl", tarfile.FIFOTYPE, mode=0o620), None),
                    (pax("run/ctl2", tarfile.LNKTYPE, linkname="run/ctl"), None)])


def test_device_nodes_and_fifos_are_made_in_a_rootfs_as_root(layout, tmp_path):
    result, out = unpack(layout, tmp_path, _nodes())
    null, loop, ctl = (os.lstat(f"{out}/{p}") for p in ("dev/null", "dev/loop0", "run/ctl"))
    assert stat.S_ISCHR(null.st_mode) and os.major(null.st_rdev) == 1 and os.minor(null.st_rdev) == 3
    assert stat.S_ISBLK(loop.st_mode) and (os.major(loop.st_rdev), loop.st_gid) == (7, 6)
    assert stat.S_ISFIFO(ctl.st_mode) and stat.S_IMODE(ctl.st_mode) == 0o620
    assert os.lstat(f"{out}/run/ctl2").st_ino == ctl.st_ino  # a hardlink to a FIFO is the same FIFO
    assert result.notes == ()


def test_without_root_devices_are_skipped_and_said_so(tmp_path):
    """The decision, with the privilege taken away (the whole unpack as the user nobody, against umoci
    --rootless, is in test_rootfs_tools.py)."""
    from ocisift._core.digest import Digest, VerifyingReader
    from ocisift._unpack.extract import ImageTreeBuilder

    data = _nodes()
    desc = Descriptor(mt.OCI_LAYER_TAR, Digest.of(data), len(data))
    root = tmp_path / "out"
    root.mkdir()
    builder = ImageTreeBuilder(str(root), metadata=RootfsMetadata(privileged=False))
    builder.apply(VerifyingReader(io.BytesIO(data), desc.digest, desc.size), desc.media_type, 0, image_layer=True)
    builder.finish()
    assert not os.path.lexists(root / "dev" / "null") and stat.S_ISFIFO(os.lstat(root / "run" / "ctl").st_mode)
    assert builder.notes() == ["device nodes skipped: 2 entries, first 'dev/null' (making them needs root)"]


def test_an_attribute_that_cannot_be_set_is_a_note_or_with_require_xattrs_an_error(layout, tmp_path):
    """Linux refuses user.* attributes on symlinks: reported once, however many entries carry one."""
    layer = raw_tar([(pax(f"l{i}", tarfile.SYMTYPE, linkname="x", records={"SCHILY.xattr.user.a": "1"}), None)
                     for i in range(3)] + [(pax("f", records={"SCHILY.xattr.security.selinux": "system_u"}), b"x")])
    result, _ = unpack(layout, tmp_path, layer)
    assert result.notes == (
        "extended attribute security.selinux not set on 1 entry, first 'f' (the host's, not the image's, as "
        "umoci keeps it)",
        "extended attribute user.a not set on 3 entries, first 'l0' (Linux allows no user attributes on symlinks)",
    )
    with pytest.raises(MetadataError, match=r"user\.a.*require-xattrs") as info:
        ocisift.pull(image(layout, layer), str(tmp_path / "strict"), mode="extract-all", require_xattrs=True)
    assert info.value.exit_code == 1 and not (tmp_path / "strict").exists()
    assert [n for n in os.listdir(tmp_path) if n.startswith(".ocisift-staging-")] == []


def test_notes_reach_stderr_and_json(layout, tmp_path, cli):
    layer = raw_tar([(pax("l", tarfile.SYMTYPE, linkname="x", records={"SCHILY.xattr.user.a": "1"}), None)])
    ref = image(layout, layer)
    run = cli("pull", ref, "-o", str(tmp_path / "a"), "--mode", "extract-all")
    assert run.code == 0 and "note: extended attribute user.a not set on 1 entry" in run.err
    run = cli("pull", ref, "-o", str(tmp_path / "b"), "--mode", "extract-all", "--format", "json")
    assert run.json()["notes"] == ["extended attribute user.a not set on 1 entry, first 'l' (Linux allows no user "
                                   "attributes on symlinks)"]
    run = cli("pull", ref, "-o", str(tmp_path / "c"), "--mode", "extract-all", "--require-xattrs")
    assert run.code == 1 and "require-xattrs" in run.err


@pytest.mark.parametrize("field,value", [
    ("mtime", "nan"), ("mtime", "inf"), ("mtime", "1e9"), ("mtime", "-"), ("mtime", "0x10"),
    ("mtime", "99999999999999999999"), ("atime", "nan"), ("ctime", "1.2.3"),
    ("uid", "-1"), ("uid", "abc"), ("uid", "99999999999999999999"), ("gid", " 1"), ("gid", "1.5"),
    ("size", "-5"), ("size", "NaN"), ("size", "1e3"),
])
def test_pax_numbers_go_would_refuse_are_refused(layout, tmp_path, field, value):
    """Go refuses these as it reads them (a negative uid it reads, and no chown could apply it)."""
    layer = raw_tar([(pax("f", records={field: value}), b"x")])
    with pytest.raises(IntegrityError, match=field) as info:
        unpack(layout, tmp_path, layer)
    assert info.value.exit_code == 5 and not (tmp_path / "rootfs").exists()


@pytest.mark.parametrize("uid", [2**32 - 1, 2**32, 2**40])
def test_owner_ids_out_of_range_are_refused(layout, tmp_path, uid):
    """(uid_t)-1 tells chown to change nothing, and larger ones do not fit: neither is an owner."""
    info = pax("f", uid=uid)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:  # base-256 for big numbers
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(UnsafeContentError, match="uid"):
        unpack(layout, tmp_path, buf.getvalue())


def test_negative_pax_time_is_a_time_before_1970(layout, tmp_path):
    _, out = unpack(layout, tmp_path, raw_tar([(pax("f", records={"mtime": "-86400.25"}), b"x")]))
    assert os.lstat(f"{out}/f").st_mtime_ns == -86400_250_000_000


def test_a_global_header_applies_to_no_member_as_go_reads_it(layout, tmp_path):
    """tarfile would rename every later member to the global `path` and give each the global attributes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT,
                      pax_headers={"path": "renamed", "SCHILY.xattr.user.g": "1", "comment": "git"}) as tar:
        for name in ("a", "b"):
            info = pax(name)
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))
    _, out = unpack(layout, tmp_path, buf.getvalue())
    assert sorted(os.listdir(out)) == ["a", "b"] and os.listxattr(f"{out}/a") == []


def test_rootless_owner_is_umocis_encoding():
    """github.com/rootless-containers/proto: Resource{uint32 uid = 1; uint32 gid = 2}, 0 written as NoopID."""
    assert rootless_owner(0, 0) is None
    assert rootless_owner(1000, 1000) == b"\x08\xe8\x07\x10\xe8\x07"
    assert rootless_owner(0, 42) == b"\x08\xff\xff\xff\xff\x0f\x10\x2a"
