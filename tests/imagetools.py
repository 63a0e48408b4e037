"""Images built by the real tools, and root filesystems compared entry by entry.

buildah builds from scratch: files are placed through `buildah mount` with the
host's own tools (setcap, setfattr, mknod, mkfifo, chown, chmod, touch), and
each `buildah commit` makes one layer from the container's diff, as buildah
does for any build. podman then saves the image in its four formats
(docker-archive, oci-archive, docker-dir, oci-dir). Storage is private to the
test run (`--root`/`--runroot` in a temporary directory, the vfs driver), so
nothing of the machine's own images is touched.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

TIME = "2001-02-03 04:05:06.123456789"  # nanoseconds too: umoci keeps them, and so must we
TIME2 = "2011-12-13 14:15:16.5"
NOBODY = 65534


@dataclass
class BuiltImage:
    """One image in private storage, and the same image saved by podman in each of its formats."""

    name: str
    oci_layout: Path  # `buildah push … oci:DIR:TAG`, the reference umoci unpacks
    tag: str
    saved: dict[str, str]  # podman format -> ocisift reference to it


def _run(*args: str, timeout: float = 120) -> str:
    done = subprocess.run(list(args), check=True, capture_output=True, text=True, timeout=timeout)
    return done.stdout.strip()


def _touch(*paths: Path, when: str = TIME) -> None:
    """Times last, deepest first, no link followed: a directory's mtime moves when anything inside changes."""
    for p in sorted(paths, key=lambda p: len(p.parts), reverse=True):
        _run("touch", "-h", "-d", when, str(p))


def populate_base(m: Path, *, every_namespace: bool = False) -> None:
    """What a distribution's base image holds that a naive unpack gets wrong. buildah records only
    security.capability and user.* attributes, and times in whole seconds; GNU tar and bsdtar record
    every namespace (`every_namespace` adds trusted.* ones, on a symlink too) and nanoseconds."""
    for d in ("bin", "etc", "tmp", "usr/lib", "usr/bin", "var/empty", "srv", "ro", "data", "home/u", "run", "dev"):
        (m / d).mkdir(parents=True, exist_ok=True)
    shutil.copy("/bin/true", m / "bin/ping")
    _run("setcap", "cap_net_raw+ep", str(m / "bin/ping"))  # file capabilities: how ping runs unprivileged
    shutil.copy("/bin/true", m / "bin/su")
    os.chmod(m / "bin/su", 0o4755)
    os.link(m / "bin/su", m / "bin/su2")  # a hardlink: one inode, two names
    shutil.copy("/bin/true", m / "bin/sg")
    os.chmod(m / "bin/sg", 0o2755)
    (m / "bin/sh").symlink_to("/bin/busybox")
    (m / "lib").symlink_to("usr/lib")
    (m / "usr/lib/libc.so.6").write_bytes(b"libc\n")
    (m / "etc/shadow").write_text("root:*:19000::::::\n")
    os.chown(m / "etc/shadow", 0, 42)
    os.chmod(m / "etc/shadow", 0o640)
    (m / "etc/comment").write_text("annotated\n")
    os.setxattr(m / "etc/comment", "user.comment", b"hello")
    os.setxattr(m / "etc", "user.dir", b"yes")
    if every_namespace:
        os.setxattr(m / "etc/comment", "trusted.note", b"root only")
        os.setxattr(m / "bin/sh", "trusted.link", b"on a symlink", follow_symlinks=False)
        os.setxattr(m / "etc/comment", "user.binary", bytes(range(256)))
    (m / "etc/world").write_text("anyone may write\n")
    os.chmod(m / "etc/world", 0o666)
    (m / "etc/none").write_text("no one may read\n")
    os.chmod(m / "etc/none", 0o000)
    (m / "home/u/secret").write_text("mine\n")
    os.chmod(m / "home/u/secret", 0o600)
    for p in ("home/u", "home/u/secret", "data"):
        os.chown(m / p, 1000, 1000)
    os.chmod(m / "home/u", 0o700)
    os.chmod(m / "tmp", 0o1777)
    os.chmod(m / "var/empty", 0o700)
    os.chmod(m / "srv", 0o775)
    os.chmod(m / "data", 0o2775)
    (m / "srv/old").write_text("replaced later\n")
    (m / "ro/inside").write_text("in a read-only directory\n")
    os.mkfifo(m / "run/ctl", 0o620)
    os.chmod(m / "run/ctl", 0o620)
    os.mknod(m / "dev/null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.chmod(m / "dev/null", 0o666)
    os.mknod(m / "dev/loop0", stat.S_IFBLK | 0o660, os.makedev(7, 0))
    os.chown(m / "dev/loop0", 0, 6)
    os.chmod(m / "dev/loop0", 0o660)
    os.chmod(m / "ro", 0o555)
    _touch(m, *m.rglob("*"))


def _second_layer(m: Path) -> None:
    """Changes a later layer makes: a deletion (a whiteout), a directory emptied and refilled, a mode
    change, a file added inside a directory a lower layer made read-only."""
    (m / "etc/world").unlink()
    os.chmod(m / "ro", 0o755)
    (m / "ro/second").write_text("added by the second layer\n")
    os.chmod(m / "ro", 0o555)
    (m / "srv/old").unlink()
    (m / "srv/new").write_text("new\n")
    os.chmod(m / "etc", 0o751)
    _touch(m / "ro/second", m / "srv/new", m / "srv", m / "etc", m / "ro", when=TIME2)


def build_image(work: Path) -> BuiltImage:
    """Two layers built with buildah, pushed to an OCI layout, and saved by podman four ways."""
    storage = ["--root", str(work / "storage"), "--runroot", str(work / "run"), "--storage-driver", "vfs"]
    buildah = ["buildah", *storage]
    name = "localhost/ocisift-rootfs:1"
    container = _run(*buildah, "from", "scratch")
    try:
        populate_base(Path(_run(*buildah, "mount", container)))
        _run(*buildah, "commit", "-q", container, "localhost/ocisift-rootfs:base")
    finally:
        _run(*buildah, "rm", container)
    container = _run(*buildah, "from", "localhost/ocisift-rootfs:base")
    try:
        _second_layer(Path(_run(*buildah, "mount", container)))
        _run(*buildah, "commit", "-q", container, name)
    finally:
        _run(*buildah, "rm", container)
    layout = work / "oci"
    _run(*buildah, "push", "-q", name, f"oci:{layout}:1")
    saved: dict[str, str] = {}
    for fmt, path, prefix in [("docker-archive", "image.docker.tar", "docker-archive:"),
                              ("oci-archive", "image.oci.tar", "oci-archive:"),
                              ("docker-dir", "image.docker-dir", "dir:"),
                              ("oci-dir", "image.oci-dir", "oci:")]:
        _run("podman", *storage, "save", "-q", "--format", fmt, "-o", str(work / path), name)
        saved[fmt] = f"{prefix}{work / path}"
    return BuiltImage(name, layout, "1", saved)


def tar_layer(tool: str, tree: Path, out: Path) -> Path:
    """A layer of `tree` as GNU tar or bsdtar writes it with extended attributes: PAX SCHILY.xattr.* records
    (GNU tar), LIBARCHIVE.xattr.* and SCHILY.xattr.* records (bsdtar), PAX times with nanoseconds, a `./`
    entry for the root, numeric owners."""
    if tool == "gnutar":
        _run("tar", "--xattrs", "--xattrs-include=*", "--format=pax", "--numeric-owner", "-C", str(tree),
             "-cf", str(out), ".")
    else:
        _run("bsdtar", "--xattrs", "--format", "pax", "--numeric-owner", "-C", str(tree), "-cf", str(out), ".")
    return out


def umoci_image_of(layers: list[Path], work: Path) -> Path:
    """An image umoci made (`umoci init`, `umoci new`), with the given layer tars added verbatim."""
    layout = work / "umoci"
    _run("umoci", "init", "--layout", str(layout))
    _run("umoci", "new", "--image", f"{layout}:1")
    for layer in layers:
        _run("umoci", "raw", "add-layer", "--image", f"{layout}:1", str(layer))
    return layout


def readable_by_nobody(*paths: Path) -> str | None:
    """Why the unprivileged comparison cannot run here, or None: nobody must reach the interpreter and
    the checkout (a checkout under a private home directory is out of its reach)."""
    import sys

    probe = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", sys.executable,
                            "-c", "import ocisift, click, urllib3", *[str(p) for p in paths]],
                           capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        return f"the user nobody cannot run this checkout's Python ({probe.stderr.strip()[-200:]})"
    return None


def as_nobody(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *args],
                          capture_output=True, text=True, timeout=timeout)


Entry = tuple[object, ...]


def snapshot(root: Path) -> dict[str, Entry]:
    """Every entry below `root`, never following a link: type, mode bits, owner, mtime in ns, extended
    attributes, and the content hash, link target or device number; hardlinks as one group per inode."""
    out: dict[str, Entry] = {}
    inodes: dict[tuple[int, int], str] = {}
    pending = [root]
    while pending:
        directory = pending.pop()
        with os.scandir(directory) as entries:
            for e in entries:
                path = Path(e.path)
                rel = str(path.relative_to(root))
                info = os.lstat(path)
                kind = stat.S_IFMT(info.st_mode)
                xattrs = tuple(sorted((n, os.getxattr(path, n, follow_symlinks=False))
                                      for n in os.listxattr(path, follow_symlinks=False)))
                if stat.S_ISLNK(info.st_mode):
                    what: object = os.readlink(path)
                elif stat.S_ISDIR(info.st_mode):
                    what = None
                    pending.append(path)
                elif stat.S_ISREG(info.st_mode):
                    what = hashlib.sha256(_read_as_root(path)).hexdigest()[:16]
                else:
                    what = (os.major(info.st_rdev), os.minor(info.st_rdev)) if info.st_rdev else None
                link_group = None
                if not stat.S_ISDIR(info.st_mode) and info.st_nlink > 1:
                    link_group = inodes.setdefault((info.st_dev, info.st_ino), rel)
                out[rel] = (stat.filemode(info.st_mode), oct(kind), oct(stat.S_IMODE(info.st_mode)), info.st_uid,
                            info.st_gid, info.st_mtime_ns, xattrs, what, link_group)
    for rel, entry in list(out.items()):  # a link group is named by its first member in sorted order
        if entry[-1] is not None:
            group = sorted(r for r, e in out.items() if e[-1] == entry[-1])
            out[rel] = (*entry[:-1], group[0])
    return out


def _read_as_root(path: Path) -> bytes:
    """Mode 0000 files are read by root, the comparison's only reader."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def differences(mine: dict[str, Entry], theirs: dict[str, Entry]) -> list[str]:
    """Human-readable differences, so a failing comparison says what differs, not just that it does."""
    lines = []
    for rel in sorted(mine.keys() | theirs.keys()):
        a, b = mine.get(rel), theirs.get(rel)
        if a != b:
            lines.append(f"{rel}:\n  ocisift {a}\n  theirs  {b}")
    return lines
