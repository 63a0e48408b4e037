"""Staging and its commit where the destination is not a plain directory of root's: a mount point, a
directory inside one, a directory whose parent the user may not write, read-only directories of an image
merged by a user who is not root, and parents made for a pull that then fails."""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import stat
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import ocisift
from conftest import artifact, entry, member, raw_tar, write_index
from ocisift._core import mediatypes as mt
from ocisift._core.errors import NotFoundError, UsageError
from ocisift._unpack.staging import Staging, remove_tree

NOBODY = 65534
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mounts, or acting as another user)")


def _image(layout, entries) -> str:  # type: ignore[no-untyped-def]
    desc = artifact(layout, layers=[(gzip.compress(raw_tar(entries)), mt.OCI_LAYER_GZIP, {})])
    write_index(layout, [entry(desc)])
    return f"oci:{layout.path}"


@contextlib.contextmanager
def acting_as_nobody() -> Iterator[None]:
    """File access checked as the user nobody (the effective uid), and root again after."""
    os.setegid(NOBODY)
    os.seteuid(NOBODY)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


def _reachable(path: Path) -> None:
    for p in [path, *path.parents]:
        if p == Path("/"):
            break
        os.chmod(p, os.stat(p).st_mode | 0o005)


@contextlib.contextmanager
def tmpfs(path: Path) -> Iterator[None]:
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode(errors='replace').strip()[:200]}")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_failed_pull_removes_the_parents_it_made(layout, tmp_path):
    ref = _image(layout, [(member("etc/os-release"), b"ID=x")])
    out = tmp_path / "new1" / "new2" / "out"
    with pytest.raises(NotFoundError):
        ocisift.pull(ref, str(out), mode="extract", include=["nosuch"])
    assert not (tmp_path / "new1").exists()
    ocisift.pull(ref, str(out), mode="extract")  # and on success they stay
    assert (out / "etc" / "os-release").read_bytes() == b"ID=x"


@ROOT_ONLY
def test_an_output_that_is_a_mount_point_is_merged_into(layout, tmp_path):
    """Staged inside the existing output, so every move is a rename within its filesystem."""
    ref = _image(layout, [(member("a.txt"), b"new"), (member("sub", tarfile.DIRTYPE), None),
                          (member("sub/x"), b"x")])
    out = tmp_path / "volume"
    with tmpfs(out):
        (out / "a.txt").write_bytes(b"old")
        (out / "mine").write_bytes(b"mine")
        ocisift.pull(ref, str(out), mode="extract")
        assert (out / "a.txt").read_bytes() == b"new" and (out / "sub" / "x").read_bytes() == b"x"
        assert sorted(os.listdir(out)) == ["a.txt", "mine", "sub"]


@ROOT_ONLY
def test_a_mount_point_inside_the_output_stops_the_pull_before_anything_moves(layout, tmp_path):
    ref = _image(layout, [(member("a.txt"), b"new"), (member("sub", tarfile.DIRTYPE), None),
                          (member("sub/x"), b"x")])
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.txt").write_bytes(b"old")
    with tmpfs(out / "sub"):
        with pytest.raises(UsageError, match="another filesystem") as info:
            ocisift.pull(ref, str(out), mode="extract")
        assert info.value.exit_code == 2
        assert (out / "a.txt").read_bytes() == b"old" and os.listdir(out / "sub") == []
        assert sorted(os.listdir(out)) == ["a.txt", "sub"]  # no staging left inside it either


@ROOT_ONLY
def test_without_root_read_only_directories_merge_and_are_removed(tmp_path):
    """An image's 0555 directories, staged by a user who is not root: moved into an existing output (a
    directory moving to another parent must be writable, and gets its mode back), and removed on failure
    (rmdir needs its parent writable)."""
    work = tmp_path / "work"
    work.mkdir()
    _reachable(work)
    os.chown(work, NOBODY, NOBODY)
    with acting_as_nobody():
        dest = work / "out"
        dest.mkdir()
        (dest / "a.txt").write_bytes(b"old")
        staging = Staging(str(dest))
        root = Path(staging.root)
        (root / "a.txt").write_bytes(b"new")
        (root / "usr" / "bin").mkdir(parents=True)
        (root / "usr" / "bin" / "tool").write_bytes(b"tool")
        os.chmod(root / "usr" / "bin", 0o555)
        os.chmod(root / "usr", 0o555)
        staging.commit()
        assert (dest / "a.txt").read_bytes() == b"new" and (dest / "usr" / "bin" / "tool").read_bytes() == b"tool"
        assert stat.S_IMODE(os.stat(dest / "usr").st_mode) == 0o555
        assert sorted(os.listdir(dest)) == ["a.txt", "usr"]

        doomed = work / "doomed"
        (doomed / "usr" / "bin").mkdir(parents=True)
        (doomed / "usr" / "bin" / "f").write_bytes(b"f")
        for d in (doomed / "usr" / "bin", doomed / "usr"):
            os.chmod(d, 0o555)
        remove_tree(str(doomed))
        assert not doomed.exists()
    subprocess.run(["chmod", "-R", "u+w", str(work)], check=False)
    shutil.rmtree(work, ignore_errors=True)


@ROOT_ONLY
def test_without_root_an_output_whose_parent_is_not_writable(layout, tmp_path):
    """A user's own directory under one they may not write (a home under /home, a mounted volume)."""
    ref = _image(layout, [(member("a.txt"), b"new")])
    _reachable(Path(layout.path))
    subprocess.run(["chmod", "-R", "a+rX", str(layout.path)], check=True)
    locked = tmp_path / "locked"
    (locked / "mine").mkdir(parents=True)
    _reachable(locked / "mine")
    os.chown(locked / "mine", NOBODY, NOBODY)
    os.chmod(locked, 0o755)  # root's: nobody may not write here
    with acting_as_nobody():
        ocisift.pull(ref, str(locked / "mine"), mode="extract")
    assert (locked / "mine" / "a.txt").read_bytes() == b"new"
    assert os.listdir(locked) == ["mine"]


def test_a_move_that_fails_mid_commit_puts_everything_back(layout, tmp_path, monkeypatch):
    """A failure the plan cannot see (a busy mount, the disk): the moves made go back, the user's entries
    they replaced return, and no staging is left."""
    import errno

    from ocisift._unpack import staging

    ref = _image(layout, [(member("a.txt"), b"new a"), (member("b.txt"), b"new b"), (member("c.txt"), b"c"),
                          (member("new", tarfile.DIRTYPE), None), (member("new/x"), b"x")])
    out = tmp_path / "out"
    out.mkdir()
    for name in ("a.txt", "b.txt", "keep"):
        (out / name).write_bytes(f"old {name}".encode())
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real, calls = staging._move, []

    def fails_third(source: str, target: str, **kw: bool) -> None:
        calls.append(target)
        if len(calls) == 3:
            raise OSError(errno.EBUSY, "Device or resource busy", target)
        real(source, target, **kw)

    monkeypatch.setattr(staging, "_move", fails_third)
    with pytest.raises(OSError, match="busy"):
        ocisift.pull(ref, str(out), mode="extract")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert len(calls) >= 3
    monkeypatch.setattr(staging, "_move", real)
    ocisift.pull(ref, str(out), mode="extract")
    assert (out / "a.txt").read_bytes() == b"new a" and (out / "new" / "x").read_bytes() == b"x"
    assert sorted(os.listdir(out)) == ["a.txt", "b.txt", "c.txt", "keep", "new"]


@ROOT_ONLY
def test_a_bind_mount_inside_the_output_is_refused_with_nothing_changed(layout, tmp_path):
    """A bind mount of the same filesystem has the same device number, so no check before the moves sees
    it; the rename that crosses it fails, the moves made are undone, and the pull says why (exit 2)."""
    ref = _image(layout, [(member("a.txt"), b"new"), (member("sub", tarfile.DIRTYPE), None),
                          (member("sub/x"), b"x")])
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    (out / "sub").mkdir(parents=True)
    elsewhere.mkdir()
    (out / "a.txt").write_bytes(b"old")
    mounted = subprocess.run(["mount", "--bind", str(elsewhere), str(out / "sub")], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {mounted.stderr.decode(errors='replace').strip()[:200]}")
    try:
        with pytest.raises(UsageError, match="another mount") as info:
            ocisift.pull(ref, str(out), mode="extract")
        assert info.value.exit_code == 2
        assert (out / "a.txt").read_bytes() == b"old" and os.listdir(out / "sub") == []
        assert sorted(os.listdir(out)) == ["a.txt", "sub"]
    finally:
        subprocess.run(["umount", "-l", str(out / "sub")], check=False)
