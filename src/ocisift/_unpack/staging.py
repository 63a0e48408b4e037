"""Staging: a pull writes into a private directory, moved into place only on success.

A new destination is staged beside it (in its parent) and renamed into place. An existing one is staged
inside it, so the moves are renames within one filesystem even when the destination is a mount point or
its parent is not the user's to write; the parents the pull had to make are removed again if it fails."""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass

from .._core import cancel
from .._core.errors import ConflictError, UnsafeContentError, UsageError
from .._core.permissions import dir_mode


class Staging:
    """A private directory beside a new destination, or inside an existing one; committed only when everything
    succeeded."""

    def __init__(self, dest: str) -> None:
        self.dest = os.path.abspath(dest)
        if os.path.lexists(self.dest) and not os.path.isdir(self.dest):
            raise UsageError(f"output {dest} exists and is not a directory")
        self._made: list[str] = []  # parents made for a new destination, outermost first
        if os.path.isdir(self.dest):
            home = self.dest
        else:
            home = os.path.dirname(self.dest)
            missing: list[str] = []
            at = home
            while at and not os.path.lexists(at):
                missing.insert(0, at)
                at = os.path.dirname(at)
            for parent in missing:  # made one by one: only what this pull made is its own to remove
                try:
                    os.mkdir(parent)
                    self._made.append(parent)
                except FileExistsError:
                    pass
            os.makedirs(home, exist_ok=True)
        self.root = tempfile.mkdtemp(prefix=".ocisift-staging-", dir=home)
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
        for parent in reversed(self._made):  # nothing written outside the output: not even its parents
            try:
                os.rmdir(parent)
            except OSError:
                break  # something else is in it now: kept

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
        # The staging directory's own mode and owner may be what the image's `./` entry gave it, which an
        # existing output does not take: private again, so nobody can reach into it while it is emptied.
        if os.geteuid() == 0:
            os.chown(self.root, 0, 0, follow_symlinks=False)
        os.chmod(self.root, 0o700)
        moves, written = self._plan()
        # A directory the destination lacks moves whole, with one rename: it keeps what it has (mode,
        # owner, attributes, times) and nothing below it is looked at again. Into the user's own
        # directories, entries move one by one, and those directories stay as they are.
        replaced = tempfile.mkdtemp(prefix=".ocisift-staging-", suffix="-replaced", dir=os.path.dirname(self.root))
        done: list[tuple[str, str | None]] = []  # moved so far, and where the entry it replaced was put
        try:
            for rel, replaces in moves:
                target = os.path.join(self.dest, rel)
                kept = os.path.join(replaced, str(len(done))) if replaces else None
                if kept is not None:
                    os.rename(target, kept)  # the user's entry, kept until every move has succeeded
                try:
                    _move(os.path.join(self.root, rel), target)
                except BaseException:
                    if kept is not None:
                        os.rename(kept, target)
                    raise
                done.append((rel, kept))
        except BaseException as exc:
            self._undo(done)
            if isinstance(exc, OSError) and exc.errno == errno.EXDEV:  # a bind mount: same device, no rename
                raise UsageError(f"{exc.filename or self.dest} is on another mount than {self.dest}: a pull moves "
                                 "what it staged into place by renaming, which cannot cross mounts; pull into "
                                 "that directory by itself; nothing was changed") from None
            raise
        finally:
            remove_tree_quietly(replaced)
        remove_tree_quietly(self.root)
        return written

    def _undo(self, done: list[tuple[str, str | None]]) -> None:
        """A move failed for a reason the plan could not see (the disk, a busy mount): the ones made go
        back into staging, last first, and the user's entries they replaced come back where they were."""
        for rel, kept in reversed(done):
            target = os.path.join(self.dest, rel)
            try:
                _move(target, os.path.join(self.root, rel), from_staging=False)
                if kept is not None:
                    os.rename(kept, target)
            except OSError:
                continue  # as much as can be put back is; the error that stopped the commit is what is said

    def _plan(self) -> tuple[list[tuple[str, bool]], list[str]]:
        """What moves (files, and directories new to the destination, each with all below it; and whether each
        replaces an entry of the user's) and the files written; every entry checked, before anything moves."""
        moves: list[tuple[str, bool]] = []
        written: list[str] = []
        path_max = _path_max(self.dest)
        device = os.stat(self.root).st_dev
        devices: dict[str, int] = {}  # destination directories entries move into: each must be staging's filesystem
        inside_new: set[str] = set()  # directories moving whole, and all below them: only lengths to check there
        for rel, is_dir in _walk_entries(self.root):
            dst = os.path.join(self.dest, rel)
            if len(os.fsencode(dst)) >= path_max:
                # The staging directory's name may be shorter than the destination's: a tree that fitted
                # there may not fit here. Found now, before anything moved, not halfway through the moves.
                raise UnsafeContentError(
                    f"refusing {rel[:200]!r}{'…' if len(rel) > 200 else ''}: in {self.dest} its path is longer "
                    "than this system allows; "
                    "nothing was changed"
                )
            if not is_dir:
                written.append(rel)
            parent = os.path.dirname(rel)
            if parent in inside_new:
                if is_dir:
                    inside_new.add(rel)
                continue
            if parent:
                pdst = os.path.join(self.dest, parent)
                if os.path.islink(pdst):
                    raise UnsafeContentError(
                        f"destination has a symlink at {parent!r}; refusing to write through it"
                    )
            src_is_dir = is_dir
            if src_is_dir and os.path.islink(dst):
                raise UnsafeContentError(f"destination has a symlink at {rel!r}; refusing to write through it")
            exists = os.path.lexists(dst)
            if exists:
                dst_is_dir = os.path.isdir(dst) and not os.path.islink(dst)
                if src_is_dir != dst_is_dir:
                    raise ConflictError(
                        f"destination already has {'a directory' if dst_is_dir else 'a file'} at {rel!r} "
                        f"where the pull writes {'a directory' if src_is_dir else 'a file'}; nothing was changed"
                    )
            elif src_is_dir:
                inside_new.add(rel)
            if not (src_is_dir and os.path.isdir(dst)):  # into a directory of the user's: its entries move
                if parent not in devices:
                    devices[parent] = os.stat(os.path.join(self.dest, parent)).st_dev
                    if devices[parent] != device:
                        raise UsageError(
                            f"{os.path.join(self.dest, parent)} is on another filesystem than {self.dest} (a mount "
                            "point): a pull moves what it staged into place by renaming, which cannot cross "
                            "filesystems; pull into that directory by itself; nothing was changed")
                moves.append((rel, exists))
        return moves, written


def _move(source: str, target: str, *, from_staging: bool = True) -> None:
    """One rename. Without root, a staged directory the image made read-only must be writable to move to
    another parent (its `..` changes), and so must the staged directory it leaves: each is made writable
    for the move, and the one that moved gets its own mode back (through a descriptor, never a link). A
    move back into staging (an undo) leaves from a directory of the user's, whose mode is never touched."""
    try:
        os.replace(source, target)
        return
    except PermissionError:
        if os.geteuid() == 0:
            raise
    if from_staging:
        _make_removable(os.path.dirname(source))
    info = os.lstat(source)
    moving_dir = stat.S_ISDIR(info.st_mode) and not info.st_mode & stat.S_IWUSR
    if moving_dir:
        os.chmod(source, stat.S_IMODE(info.st_mode) | stat.S_IRWXU)
    os.replace(source, target)
    if moving_dir:
        fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            os.fchmod(fd, stat.S_IMODE(info.st_mode))
        finally:
            os.close(fd)


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
    return [rel for rel, is_dir in _walk_entries(root) if with_dirs or not is_dir]


def _walk_entries(root: str) -> list[tuple[str, bool]]:
    """Every entry below root, as _walk_rel lists them, each with whether it is a directory (not a link)."""
    walk = _Walk(root)
    try:
        return walk.run()
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

    def run(self) -> list[tuple[str, bool]]:
        out: list[tuple[str, bool]] = []
        levels = self.levels
        self.fd = os.open(self.root, _DIR_FLAGS)
        rel_dir = ""
        while True:
            with os.scandir(self.fd) as it:
                entries = sorted((e.name, e.is_dir(follow_symlinks=False)) for e in it)
            prefix = f"{rel_dir}/" if rel_dir else ""
            subdirs = []
            for name, is_dir in entries:
                out.append((prefix + name, is_dir))  # a link, to a directory too, is not one
                if is_dir:
                    subdirs.append(name)
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
        try:
            os.rmdir(d)
        except PermissionError:  # without root: its parent is one the image made read-only
            if d == path:
                raise
            _make_removable(os.path.dirname(d))
            os.rmdir(d)


def _make_removable(directory: str) -> None:
    """Only ever called on a directory found as one without following links, inside a private tree."""
    os.chmod(directory, 0o700)


def remove_tree_quietly(path: str) -> None:
    try:
        remove_tree(path)
    except OSError:
        shutil.rmtree(path, ignore_errors=True)
