"""Staging: a pull writes into a private directory beside the destination, moved into place only on success."""

from __future__ import annotations

import os
import shutil
import tempfile

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

    def abort(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def commit(self) -> list[str]:
        """Move staged entries into the destination; checks everything before moving anything."""
        if not os.path.exists(self.dest):
            written = _walk_rel(self.root)
            os.chmod(self.root, dir_mode())  # private while it was filled; the user's directory from now on
            os.rename(self.root, self.dest)
            return written
        moves = self._plan()
        for rel, is_dir in moves:
            target = os.path.join(self.dest, rel)
            if is_dir:
                if not os.path.isdir(target):
                    os.mkdir(target, 0o755)
            else:
                os.replace(os.path.join(self.root, rel), target)
        shutil.rmtree(self.root, ignore_errors=True)
        return [rel for rel, is_dir in moves if not is_dir]

    def _plan(self) -> list[tuple[str, bool]]:
        moves: list[tuple[str, bool]] = []
        for rel in _walk_rel(self.root, with_dirs=True):
            src = os.path.join(self.root, rel)
            dst = os.path.join(self.dest, rel)
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


def _walk_rel(root: str, with_dirs: bool = False) -> list[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        rel_dir = "" if rel_dir == "." else rel_dir
        for d in sorted(dirnames):  # directories themselves only when asked; links to them always
            if with_dirs or os.path.islink(os.path.join(dirpath, d)):
                out.append(os.path.join(rel_dir, d))
        for f in sorted(filenames):
            out.append(os.path.join(rel_dir, f))
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
    return out

