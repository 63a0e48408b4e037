"""Root filesystems unpack as umoci unpacks them: the same image, unpacked by both, gives the same tree.

The image is made by umoci itself (`umoci init`, `umoci new`, then layers added
verbatim with `umoci raw add-layer`), so its layout, manifest, config and
layer media types are umoci's; the layer tars hold what a busybox-like root
filesystem holds: absolute symlinks (`bin/sh -> /bin/busybox`), links to
directories (`lib -> usr/lib`, `lib64 -> /usr/lib`), and later layers that
write through those links, whiteouts and an opaque directory.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

import ocisift
from ocisift import LayerSelector

pytestmark = [pytest.mark.usefixtures("tar_reader"),  # each test under both tar readers
              pytest.mark.skipif(shutil.which("umoci") is None, reason="umoci is needed")]


def _tar(path: Path, entries: list[tuple[str, str, object]]) -> Path:
    """entries: (name, kind, payload) with kind dir/file/exe/symlink/hardlink."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, payload in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 1_700_000_000
            info.uid = info.gid = 0
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif kind in ("file", "exe"):
                data = payload if isinstance(payload, bytes) else str(payload).encode()
                info.size, info.mode = len(data), 0o755 if kind == "exe" else 0o644
                tar.addfile(info, io.BytesIO(data))
            elif kind == "symlink":
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, str(payload), 0o777
                tar.addfile(info)
            elif kind == "hardlink":
                info.type, info.linkname, info.mode = tarfile.LNKTYPE, str(payload), 0o644
                tar.addfile(info)
    return path


LAYERS = [
    [  # a busybox-like base
        ("bin", "dir", None), ("bin/busybox", "exe", b"\x7fELF busybox\n"),
        ("bin/sh", "symlink", "/bin/busybox"), ("bin/ls", "symlink", "busybox"),
        ("usr", "dir", None), ("usr/lib", "dir", None), ("usr/bin", "dir", None),
        ("usr/bin/env", "symlink", "../../bin/busybox"),
        ("lib", "symlink", "usr/lib"), ("lib64", "symlink", "/usr/lib"),
        ("etc", "dir", None), ("etc/os-release", "file", b"NAME=test\n"), ("etc/hostname", "file", b"box\n"),
        ("var", "dir", None), ("var/run", "symlink", "/run"),
        ("sbin", "symlink", "bin"),
    ],
    [  # written through the links the base made
        ("lib/libc.so.6", "file", b"libc\n"),
        ("lib64/ld-linux-x86-64.so.2", "file", b"ld\n"),
        ("var/run/utmp", "file", b"utmp\n"),
        ("sbin/init", "hardlink", "bin/busybox"),
        ("usr/lib/os-release", "symlink", "../../etc/os-release"),
        ("etc/.wh.hostname", "file", b""),
    ],
    [  # an opaque directory, and a link replaced by a file
        ("etc/.wh..wh..opq", "file", b""), ("etc/passwd", "file", b"root:x:0:0::/root:/bin/sh\n"),
        ("bin/ls", "exe", b"\x7fELF ls\n"),
    ],
]


@pytest.fixture(scope="module")
def umoci_image(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("umoci")
    layout = work / "image"
    subprocess.run(["umoci", "init", "--layout", str(layout)], check=True, capture_output=True, timeout=60)
    subprocess.run(["umoci", "new", "--image", f"{layout}:base"], check=True, capture_output=True, timeout=60)
    for i, entries in enumerate(LAYERS):
        tar = _tar(work / f"layer{i}.tar", entries)
        subprocess.run(["umoci", "raw", "add-layer", "--image", f"{layout}:base", str(tar)],
                       check=True, capture_output=True, timeout=60)
    return layout


def tree_of(root: Path) -> dict[str, tuple[str, str]]:
    """Every path below root: (kind, link target or content hash, mode bits)."""
    out: dict[str, tuple[str, str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = Path(dirpath) / name
            rel = str(full.relative_to(root))
            info = os.lstat(full)
            if stat.S_ISLNK(info.st_mode):
                out[rel] = ("link", os.readlink(full))
            elif stat.S_ISDIR(info.st_mode):
                out[rel] = ("dir", oct(stat.S_IMODE(info.st_mode)))
            else:
                digest = hashlib.sha256(full.read_bytes()).hexdigest()[:16]
                out[rel] = ("file", f"{digest} {oct(stat.S_IMODE(info.st_mode))}")
        dirnames[:] = [d for d in dirnames if not os.path.islink(Path(dirpath) / d)]
    return out


def test_extract_all_gives_the_tree_umoci_unpack_gives(umoci_image, tmp_path):
    bundle = tmp_path / "bundle"
    subprocess.run(["umoci", "unpack", "--rootless", "--image", f"{umoci_image}:base", str(bundle)],
                   check=True, capture_output=True, timeout=60)
    ours = tmp_path / "ours"
    result = ocisift.pull(f"oci:{umoci_image}:base", str(ours), mode="extract-all")
    assert len(result.plan) == len(LAYERS)
    theirs = tree_of(bundle / "rootfs")
    mine = tree_of(ours)
    assert mine == theirs
    # What the comparison covers, spelled out.
    assert mine["bin/sh"] == ("link", "/bin/busybox") and mine["lib64"] == ("link", "/usr/lib")
    assert (ours / "usr" / "lib" / "libc.so.6").read_bytes() == b"libc\n"  # through lib -> usr/lib
    assert (ours / "usr" / "lib" / "ld-linux-x86-64.so.2").is_file()  # through lib64 -> /usr/lib
    assert (ours / "run" / "utmp").is_file()  # through var/run -> /run, inside the output
    assert (ours / "bin" / "init").is_file() and "sbin/init" not in mine  # sbin -> bin
    assert "etc/hostname" not in mine and "etc/os-release" not in mine and "etc/passwd" in mine
    assert mine["bin/ls"][0] == "file"


def test_nothing_lands_outside_however_the_links_point(umoci_image, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    layout = tmp_path / "hostile"
    shutil.copytree(umoci_image, layout)
    entries = [
        ("escape", "symlink", str(outside)),            # an absolute link to a real directory on this host
        ("escape/planted", "file", b"x"),               # is resolved inside the output, not on the host
        ("up", "symlink", "../../../../../../.."),      # climbing links stop at the output root
        ("up/etc/planted", "file", b"y"),
    ]
    tar = _tar(tmp_path / "hostile.tar", entries)
    subprocess.run(["umoci", "raw", "add-layer", "--image", f"{layout}:base", str(tar)],
                   check=True, capture_output=True, timeout=60)
    out = tmp_path / "out"
    ocisift.pull(f"oci:{layout}:base", str(out), mode="extract-all")
    assert list(outside.iterdir()) == []
    assert (out / str(outside).lstrip("/") / "planted").read_bytes() == b"x"
    assert (out / "etc" / "planted").read_bytes() == b"y"
    assert os.readlink(out / "escape") == str(outside)  # kept as written


def test_artifact_layers_still_refuse_links_that_leave(tmp_path, layout):
    from conftest import artifact, entry, write_index

    hostile = _tar(tmp_path / "a.tar", [("cfg", "symlink", "/etc"), ("cfg/passwd", "file", b"x")])
    desc = artifact(layout, layers=[(hostile.read_bytes(), "application/vnd.acme.bundle.v1.tar", {})])
    write_index(layout, [entry(desc, org__opencontainers__image__ref__name="v1")])
    with pytest.raises(ocisift.UnsafeContentError):
        ocisift.pull(f"oci:{layout.path}:v1", str(tmp_path / "out"), mode="extract",
                     layers=LayerSelector.build(index=0))
    assert not (tmp_path / "out").exists()
