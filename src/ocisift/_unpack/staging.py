"""Staging: a pull writes into a private directory beside the destination, moved into place only on success."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from typing import NamedTuple

from .._core import cancel
from .._core.errors import ConflictError, UnsafeContentError, UsageError
from .._core.permissions import dir_mode


class Staging:
    """A private directory beside the destination; committed only when everything succeeded."""

    def __init__(self, dest: str) -> None:
        self.dest = os.path.abspath(dest)
        parent = os.path.dirname(self.dest)
        os.makedirs(parent, exist_ok=True)
        if os.path.lexists(self.dest) and not os.path.isdir(self.dest):
            raise UsageError(f"output {dest} exists and is not a directory")
        self.root = tempfile.mkdtemp(prefix=".ocisift-staging-", dir=parent)
        self._scratch: str | None = None

    def scratch(self) -> str:
        """A second private directory beside the first, for what is staged but never published (blobs
        downloaded ahead of unpacking); removed with the staging however it ends."""
        if self._scratch is None:
            self._scratch = tempfile.mkdtemp(prefix=".ocisift-staging-", suffix="-blobs",
                                             dir=os.path.dirname(self.root))
        return self._scratch

    def abort(self) -> None:
        remove_tree_quietly(self.root)
        self.drop_scratch()

    def drop_scratch(self) -> None:
        if self._scratch is not None:
            remove_tree_quietly(self._scratch)
            self._scratch = None

    def commit(self, *, keep_root_metadata: bool = False) -> list[str]:
        """Move staged entries into the destination; checks everything before moving anything.

        `keep_root_metadata`: the staged root already has the mode, owner and times it should have (a
        rootfs's `./` entry), so a new destination keeps them instead of the user's directory mode.
        Shielded: a Ctrl-C during the moves takes effect after the last one, so the destination is
        never left half old, half new.
        """
        self.drop_scratch()
        with cancel.shielded():
            return self._commit(keep_root_metadata)

    def _commit(self, keep_root_metadata: bool) -> list[str]:
        if not os.path.exists(self.dest):
            written = _walk_rel(self.root)
            if not keep_root_metadata:
                os.chmod(self.root, dir_mode())  # private while it was filled; the user's directory from now on
            os.rename(self.root, self.dest)
            return written
        moves = self._plan()
        # Directories new to the destination get what their staged twins have (mode, owner, attributes,
        # times), read before moving files out of them changes their times, and set deepest first once
        # nothing more is moved in; the user's own directories stay as they are.
        new_dirs = [(rel, DirMetadata.of(os.path.join(self.root, rel))) for rel, is_dir in moves
                    if is_dir and not os.path.isdir(os.path.join(self.dest, rel))]
        for rel, is_dir in moves:
            target = os.path.join(self.dest, rel)
            if is_dir:
                if not os.path.isdir(target):
                    os.mkdir(target, 0o700)
            else:
                os.replace(os.path.join(self.root, rel), target)
        for rel, metadata in reversed(new_dirs):
            metadata.apply(os.path.join(self.dest, rel))
        remove_tree_quietly(self.root)
        return [rel for rel, is_dir in moves if not is_dir]

    def _plan(self) -> list[tuple[str, bool]]:
        moves: list[tuple[str, bool]] = []
        path_max = _path_max(self.dest)
        for rel in _walk_rel(self.root, with_dirs=True):
            src = os.path.join(self.root, rel)
            dst = os.path.join(self.dest, rel)
            if len(os.fsencode(dst)) >= path_max:
                # The staging directory's name may be shorter than the destination's: a tree that fitted
                # there may not fit here. Found now, before anything moved, not halfway through the moves.
                raise UnsafeContentError(
                    f"refusing {rel[:200]!r}{'…' if len(rel) > 200 else ''}: in {self.dest} its path is longer "
                    "than this system allows; "
                    "nothing was changed"
                )
            parent = os.path.dirname(rel)
            if parent:
                pdst = os.path.join(self.dest, parent)
                if os.path.islink(pdst):
                    raise UnsafeContentError(
                        f"destination has a symlink at {parent!r}; refusing to write through it"
                    )
            src_is_dir = os.path.isdir(src) and not os.path.islink(src)
            if src_is_dir and os.path.islink(dst):
                raise UnsafeContentError(f"destination has a symlink at {rel!r}; refusing to write through it")
            if os.path.lexists(dst):
                dst_is_dir = os.path.isdir(dst) and not os.path.islink(dst)
                if src_is_dir != dst_is_dir:
                    raise ConflictError(
                        f"destination already has {'a directory' if dst_is_dir else 'a file'} at {rel!r} "
                        f"where the pull writes {'a directory' if src_is_dir else 'a file'}; nothing was changed"
                    )
            moves.append((rel, src_is_dir))
        return moves


def _path_max(path: str) -> int:
    """The longest path (with its NUL) the system takes at `path`; 4096, as on Linux, if it will not say."""
    try:
        return os.pathconf(path, "PC_PATH_MAX")
    except (OSError, ValueError):
        return 4096


def _walk_rel(root: str, with_dirs: bool = False) -> list[str]:
    """Paths below root, parents first, sorted, never through a link; a loop, not recursion (os.walk recurses
    in this Python, and a staged tree may be thousands of directories deep).

    Each directory is opened from its parent's descriptor (openat, O_NOFOLLOW): listing each by its whole path
    would make the kernel walk every component above it, quadratic in the depth (a tree 2,000 deep cost two
    million lookups). A parent's descriptor stays open only while it has subdirectories left to see, and at
    most `_OPEN_LEVELS` of them at once; one closed for that cap is opened again by its path when it is needed.
    Nothing goes back up through "..", which would need search permission on a directory that may lack it.
    """
    walk = _Walk(root)
    try:
        return walk.run(with_dirs)
    finally:
        walk.close()


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_OPEN_LEVELS = 64  # directory descriptors a walk holds at most (a process may have as few as 1,024)


@dataclass(slots=True)
class _Level:
    path: str
    fd: int | None  # None once closed
    pending: list[str]  # subdirectories not yet seen, last first


class _Walk:
    def __init__(self, root: str) -> None:
        self.root = root
        self.levels: list[_Level] = []
        self.open_levels = 0
        self.lowest_open = 0  # no level below this index holds a descriptor
        self.fd = -1

    def run(self, with_dirs: bool) -> list[str]:
        out: list[str] = []
        levels = self.levels
        self.fd = os.open(self.root, _DIR_FLAGS)
        rel_dir = ""
        while True:
            with os.scandir(self.fd) as it:
                entries = sorted((e.name, e.is_dir(follow_symlinks=False)) for e in it)
            prefix = f"{rel_dir}/" if rel_dir else ""
            subdirs = []
            for name, is_dir in entries:
                if is_dir:
                    subdirs.append(name)
                    if with_dirs:
                        out.append(prefix + name)
                else:
                    out.append(prefix + name)  # files, and links (to directories too)
            fd, self.fd = self.fd, -1
            if subdirs:
                subdirs.reverse()
                levels.append(_Level(rel_dir, fd, subdirs))
                self.open_levels += 1
                if self.open_levels > _OPEN_LEVELS:
                    self._close_lowest()
            else:
                os.close(fd)
            while levels and not levels[-1].pending:
                levels.pop()
            if not levels:
                return out
            self.lowest_open = min(self.lowest_open, len(levels) - 1)
            level = levels[-1]
            parent, name = level.path, level.pending.pop()
            if level.fd is None:
                level.fd = os.open(f"{self.root}/{parent}", _DIR_FLAGS | os.O_NOFOLLOW)
                self.open_levels += 1
            self.fd = os.open(name, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=level.fd)
            if not level.pending:  # its last subdirectory: the parent's descriptor is not needed again
                self._close(level)
            rel_dir = f"{parent}/{name}" if parent else name

    def _close(self, level: _Level) -> None:
        assert level.fd is not None
        os.close(level.fd)
        level.fd = None
        self.open_levels -= 1

    def _close_lowest(self) -> None:
        while self.levels[self.lowest_open].fd is None:
            self.lowest_open += 1
        self._close(self.levels[self.lowest_open])

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
        for level in self.levels:
            if level.fd is not None:
                os.close(level.fd)


class DirMetadata(NamedTuple):
    """A directory's owner, mode, times and extended attributes, to give another directory."""

    info: os.stat_result
    xattrs: list[tuple[str, bytes]]

    @classmethod
    def of(cls, path: str) -> DirMetadata:
        return cls(os.lstat(path), [(n, os.getxattr(path, n, follow_symlinks=False))
                                    for n in os.listxattr(path, follow_symlinks=False)])

    def apply(self, path: str) -> None:
        if os.geteuid() == 0:
            os.chown(path, self.info.st_uid, self.info.st_gid, follow_symlinks=False)
        for name, value in self.xattrs:
            try:
                os.setxattr(path, name, value, follow_symlinks=False)
            except OSError:
                pass  # staged beside the destination, on its filesystem: what was set there can be set here
        os.chmod(path, stat.S_IMODE(self.info.st_mode))
        os.utime(path, ns=(self.info.st_atime_ns, self.info.st_mtime_ns), follow_symlinks=False)


def remove_tree(path: str) -> None:
    """shutil.rmtree without its recursion (a tree thousands of directories deep ends in RecursionError).

    A rootfs keeps the modes its image gives, so a directory may be read-only to its owner: it is made
    writable (through a descriptor, never following a link) before it is emptied."""
    pending = [path]
    dirs: list[str] = []
    while pending:
        current = pending.pop()
        dirs.append(current)
        try:
            entries = list(os.scandir(current))
        except PermissionError:
            _make_removable(current)
            entries = list(os.scandir(current))
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                pending.append(entry.path)
            else:
                try:
                    os.unlink(entry.path)
                except PermissionError:
                    _make_removable(current)
                    os.unlink(entry.path)
    for d in reversed(dirs):
        os.rmdir(d)


def _make_removable(directory: str) -> None:
    """Only ever called on a directory found as one without following links, inside a private tree."""
    os.chmod(directory, 0o700)


def remove_tree_quietly(path: str) -> None:
    try:
        remove_tree(path)
    except OSError:
        shutil.rmtree(path, ignore_errors=True)
