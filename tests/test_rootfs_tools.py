"""A rootfs unpacked by ocisift is the one umoci unpacks, on images the real tools built.

buildah builds the image (setcap binaries, setuid and setgid files, a sticky
/tmp, group- and world-writable modes, owners other than root, extended
attributes of every namespace, a FIFO, device nodes, hardlinks, symlinks,
nanosecond times, a second layer with whiteouts and a read-only directory it
writes into); podman saves it in its four formats. umoci unpacks the OCI
layout; ocisift unpacks each form; the trees are compared entry by entry:
type, mode, owner, mtime, link target, device number, extended attributes,
content and hardlink groups. As root and as the unprivileged user nobody
(`umoci unpack --rootless` is the model there), under umask 002 and 022.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import ocisift
from imagetools import (
    BuiltImage,
    as_nobody,
    build_image,
    differences,
    populate_base,
    readable_by_nobody,
    snapshot,
    tar_layer,
    umoci_image_of,
)

TOOLS = ("buildah", "podman", "umoci", "setcap", "setpriv")
pytestmark = [
    pytest.mark.usefixtures("tar_reader"),  # each test under both tar readers
    pytest.mark.skipif(os.geteuid() != 0, reason="buildah and podman build with vfs storage as root here"),
    pytest.mark.skipif(any(shutil.which(t) is None for t in TOOLS), reason=f"needs {', '.join(TOOLS)}"),
]


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> BuiltImage:
    return build_image(tmp_path_factory.mktemp("built"))


@pytest.fixture(scope="module")
def umoci_as_root(image, tmp_path_factory) -> dict:
    bundle = tmp_path_factory.mktemp("umoci-root") / "bundle"
    subprocess.run(["umoci", "unpack", "--image", f"{image.oci_layout}:{image.tag}", str(bundle)],
                   check=True, capture_output=True, timeout=300)
    return snapshot(bundle / "rootfs")


def _pull(ref: str, out: Path, umask: int) -> ocisift.PullResult:
    old = os.umask(umask)
    try:
        return ocisift.pull(ref, str(out), mode="extract-all")
    finally:
        os.umask(old)


@pytest.mark.parametrize("umask", [0o002, 0o022])
def test_as_root_the_rootfs_is_umocis(image, umoci_as_root, tmp_path, umask):
    out = tmp_path / "rootfs"
    result = _pull(f"oci:{image.oci_layout}:{image.tag}", out, umask)
    mine = snapshot(out)
    assert differences(mine, umoci_as_root) == []
    assert result.notes == ()  # as root, nothing of the image was lost
    # What the comparison covers, spelled out, so an empty diff cannot hide an empty tree.
    assert mine["bin/ping"][6] == (("security.capability", _capability(out / "bin/ping")),)
    assert mine["bin/su"][2] == "0o4755" and mine["bin/sg"][2] == "0o2755" and mine["tmp"][2] == "0o1777"
    assert mine["data"][2:5] == ("0o2775", 1000, 1000) and mine["etc/shadow"][2:5] == ("0o640", 0, 42)
    assert mine["etc/none"][2] == "0o0" and mine["ro"][2] == "0o555" and "ro/second" in mine
    assert ("user.comment", b"hello") in mine["etc/comment"][6] and mine["bin/sh"][7] == "/bin/busybox"
    assert mine["run/ctl"][0].startswith("p") and mine["dev/null"][7] == (1, 3) and mine["dev/loop0"][7] == (7, 0)
    assert mine["bin/su"][8] == mine["bin/su2"][8] == "bin/su"
    assert "etc/world" not in mine and "srv/old" not in mine and "srv/new" in mine
    assert mine["etc"][2] == "0o751" and mine["bin/sh"][5] == mine["etc/shadow"][5] == 981_173_106 * 10**9


def test_into_an_existing_output_that_is_a_mount_point_the_rootfs_is_umocis(image, umoci_as_root, tmp_path):
    """The image buildah and podman built, pulled into a directory that already exists and is a mount point
    (a volume): staged inside it, every entry moved by a rename within its mount, the same tree as umoci's."""
    out, elsewhere = tmp_path / "volume", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    mounted = subprocess.run(["mount", "--bind", str(elsewhere), str(out)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {mounted.stderr.decode(errors='replace').strip()[:200]}")
    try:
        result = _pull(f"oci:{image.oci_layout}:{image.tag}", out, 0o022)
        mine = snapshot(out)
        assert differences(mine, umoci_as_root) == [] and result.notes == ()
        assert mine["bin/su"][2] == "0o4755" and mine["ro"][2] == "0o555" and "dev/null" in mine
    finally:
        subprocess.run(["umount", "-l", str(out)], check=False)


@pytest.mark.parametrize("tool", ["gnutar", "bsdtar"])
def test_layers_gnu_tar_and_bsdtar_write_unpack_as_umoci_unpacks_them(tmp_path, tool):
    """Every attribute namespace (trusted.* on a symlink too, binary values), nanosecond times and the
    root's own `./` entry, as GNU tar and bsdtar record them, in an image umoci made."""
    tree = tmp_path / "tree"
    tree.mkdir()
    populate_base(tree, every_namespace=True)
    layout = umoci_image_of([tar_layer(tool, tree, tmp_path / "layer.tar")], tmp_path)
    subprocess.run(["umoci", "unpack", "--image", f"{layout}:1", str(tmp_path / "bundle")],
                   check=True, capture_output=True, timeout=300)
    out = tmp_path / "rootfs"
    result = ocisift.pull(f"oci:{layout}:1", str(out), mode="extract-all")
    mine = snapshot(out)
    assert differences(mine, snapshot(tmp_path / "bundle" / "rootfs")) == []
    assert result.notes == ()
    assert ("trusted.note", b"root only") in mine["etc/comment"][6]
    assert ("user.binary", bytes(range(256))) in mine["etc/comment"][6]
    assert ("trusted.link", b"on a symlink") in mine["bin/sh"][6]
    assert mine["etc/comment"][5] % 10**9 == 123_456_789 and mine["bin/sh"][5] % 10**9 == 123_456_789
    assert mine["bin/ping"][6][0][0] == "security.capability"
    # The root took its `./` entry's mode and times, as umoci's rootfs does.
    assert os.stat(out).st_mtime_ns == os.stat(tmp_path / "bundle" / "rootfs").st_mtime_ns


def _capability(path: Path) -> bytes:
    return os.getxattr(path, "security.capability")


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive", "docker-dir", "oci-dir"])
def test_every_format_podman_saves_unpacks_to_the_same_rootfs(image, umoci_as_root, tmp_path, fmt):
    out = tmp_path / "rootfs"
    ocisift.pull(image.saved[fmt], str(out), mode="extract-all")
    assert differences(snapshot(out), umoci_as_root) == []


# ocisift's command line under a given umask, as the user runs it (the interpreter is started directly:
# it may live where only the exec of setpriv, not a shell of nobody's, can reach it).
UNDER_UMASK = "import os, sys; os.umask(int(sys.argv[1], 8)); from ocisift._cli.main import run; " \
              "sys.exit(run(sys.argv[2:]))"


@pytest.fixture(scope="module")
def nobody_workspace(tmp_path_factory) -> Path:
    why = readable_by_nobody()
    if why is not None:
        pytest.skip(why)
    work = tmp_path_factory.mktemp("nobody")
    for p in [work, *work.parents]:
        if p == Path("/"):
            break
        os.chmod(p, os.stat(p).st_mode | 0o005)  # nobody must reach it; pytest makes these private
    os.chmod(work, 0o777)
    return work


def _unpack_both_as_nobody(layout_dir: Path, tag: str, work: Path, umask: str) -> tuple[dict, dict, str]:
    """umoci --rootless and ocisift, each run as nobody under `umask` on nobody's copy of the layout."""
    work.mkdir()
    os.chmod(work, 0o777)
    readable = work / "oci"  # buildah and umoci write their blobs private
    shutil.copytree(layout_dir, readable)
    subprocess.run(["chmod", "-R", "a+rX", str(readable)], check=True)
    layout = f"{readable}:{tag}"
    theirs = as_nobody("sh", "-c", f'umask {umask} && exec umoci unpack --rootless --image "$0" "$1"',
                       layout, str(work / "bundle"))
    assert theirs.returncode == 0, theirs.stderr
    ours = as_nobody(sys.executable, "-c", UNDER_UMASK, umask, "pull", f"oci:{layout}", "-o", str(work / "rootfs"),
                     "--mode", "extract-all")
    assert ours.returncode == 0, ours.stderr
    return snapshot(work / "rootfs"), snapshot(work / "bundle" / "rootfs"), ours.stderr


@pytest.mark.parametrize("umask", ["002", "022"])
def test_not_as_root_the_rootfs_is_umoci_rootless(image, nobody_workspace, umask, tar_reader):
    mine, umocis, stderr = _unpack_both_as_nobody(image.oci_layout, image.tag,
                                                  nobody_workspace / f"{tar_reader}-{umask}", umask)
    # Device nodes need root: umoci --rootless leaves an empty regular file in their place, ocisift
    # leaves them out and says so (a file where a device should be would be copied into a new layer).
    empty = hashlib.sha256(b"").hexdigest()[:16]
    for node in ("dev/null", "dev/loop0"):
        stand_in = umocis.pop(node)
        assert stand_in[1] == oct(stat.S_IFREG) and stand_in[7] == empty and node not in mine
    assert "device nodes skipped: 2 entries" in stderr
    assert differences(mine, umocis) == []
    # What the comparison covers: the files are nobody's, the real owner kept as umoci keeps it,
    # root-only attributes reported once each, user attributes kept, modes exact whatever the umask.
    assert mine["home/u/secret"][3:5] == (65534, 65534)
    assert ("user.rootlesscontainers", b"\x08\xe8\x07\x10\xe8\x07") in mine["home/u/secret"][6]
    assert ("user.comment", b"hello") in mine["etc/comment"][6]
    assert mine["bin/ping"][6] == () and "security.capability not set on 1 entry" in stderr
    assert mine["etc/shadow"][2] == "0o640" and mine["tmp"][2] == "0o1777" and mine["bin/su"][2] == "0o4755"
    assert mine["run/ctl"][0].startswith("p")


def test_not_as_root_root_only_attributes_are_reported_once_each(nobody_workspace, tmp_path, tar_reader):
    tree = tmp_path / "tree"
    tree.mkdir()
    populate_base(tree, every_namespace=True)
    layout = umoci_image_of([tar_layer("gnutar", tree, tmp_path / "layer.tar")], tmp_path)
    mine, umocis, stderr = _unpack_both_as_nobody(layout, "1", nobody_workspace / f"gnutar-{tar_reader}", "022")
    for node in ("dev/null", "dev/loop0"):
        umocis.pop(node)
    # umoci --rootless drops what it may not set, silently; ocisift drops the same and says so, once each.
    assert differences(mine, umocis) == []
    for name in ("trusted.note", "trusted.link", "security.capability"):
        assert stderr.count(f"extended attribute {name} not set on 1 entry") == 1, stderr
    assert ("user.binary", bytes(range(256))) in mine["etc/comment"][6]
