"""A directory a store owns, reached below its root only through directory descriptors, never through a link.

The root is the user's path and may itself be a symlink; every name below it
(`blobs`, `blobs/sha256`, `index.json`, a blob, the lock file) is opened with
O_NOFOLLOW relative to its parent's descriptor and checked with fstat, so a
hostile layout whose `blobs/sha256` links to another directory, or whose blob
links to /etc/shadow, is refused (exit 5, naming the path) before anything is
read, listed, written or removed there. Files are only ever written by
creating a new name (O_EXCL) and renaming it into place, so a name that is
hard-linked to a user's file elsewhere is replaced, never written into; the
lock file, the one file opened for writing in place, must have one link.

Directory descriptors are opened once per store and kept until `close()`:
reading 100,000 blobs costs the same system calls per blob as a plain open
(one lstat, one open, one fstat), not a walk from the root each time.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import io
import os
import secrets
import stat
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from .._core.errors import MalformedDocument, OcisiftError, UnsafeContentError
from .._core.permissions import dir_mode, file_mode

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # a FIFO must not block the open
_NEW_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def _what(st: os.stat_result | None) -> str:
    if st is None:
        return "not there"
    if stat.S_ISLNK(st.st_mode):
        return "a symbolic link"
    if stat.S_ISDIR(st.st_mode):
        return "a directory"
    if stat.S_ISREG(st.st_mode):
        return "a regular file"
    return "a special file (device, FIFO or socket)"


class SafeDir:
    """A directory opened once; names below it are reached through descriptors without following links."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._dirs: dict[str, int] = {}
        self._mutex = threading.Lock()
        self.dir("")  # a missing root or one that is not a directory fails here, not at first use

    def where(self, name: str) -> str:
        """The path a name stands for, for messages and for tools that take paths (a private staging dir)."""
        return os.path.join(self.path, *name.split("/")) if name else self.path

    def refusal(self, name: str, why: str) -> UnsafeContentError:
        return UnsafeContentError(f"refusing {self.where(name)}: it is {why}; nothing in {self.path} is read, "
                                  "written or removed through a link or a special file")

    # -- directories -------------------------------------------------------------------

    def dir(self, name: str, *, create: bool = False) -> int | None:
        """The descriptor of a directory below the root (opened once), None when it does not exist."""
        with self._mutex:
            found = self._dirs.get(name)
            if found is not None:
                return found
            root = self._dirs.get("")
            if root is None:  # the user's path: followed, it may be a link
                self._dirs[""] = root = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            if not name:
                return root
            fd, done = root, ""
            for part in name.split("/"):
                if part in ("", ".", ".."):
                    raise MalformedDocument(f"not a name inside {self.path}: {name!r}")
                done = f"{done}/{part}" if done else part
                cached = self._dirs.get(done)
                if cached is not None:
                    fd = cached
                    continue
                child = self._open_dir(fd, part, done, create)
                if child is None:
                    return None
                self._dirs[done] = fd = child
            return fd

    def _open_dir(self, parent: int, part: str, name: str, create: bool) -> int | None:
        for _ in range(2):
            try:
                return os.open(part, _DIR_FLAGS, dir_fd=parent)
            except FileNotFoundError:
                if not create:
                    return None
                try:
                    os.mkdir(part, dir_mode(), dir_fd=parent)
                except FileExistsError:
                    pass  # another writer made it meanwhile
            except OSError as exc:
                if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
                    raise
                raise self.refusal(name, f"{_what(self._lstat_at(parent, part))}, not a directory") from None
        return None

    @staticmethod
    def _lstat_at(parent: int, part: str) -> os.stat_result | None:
        try:
            return os.stat(part, dir_fd=parent, follow_symlinks=False)
        except OSError:
            return None

    def _split(self, name: str, *, create: bool = False) -> tuple[int | None, str]:
        folder, _, leaf = name.rpartition("/")
        if leaf in ("", ".", ".."):
            raise MalformedDocument(f"not a file name inside {self.path}: {name!r}")
        return self.dir(folder, create=create), leaf

    # -- reading -----------------------------------------------------------------------

    def lstat(self, name: str) -> os.stat_result | None:
        """The name's own status (a link is not followed); None when it or its directory does not exist."""
        fd, leaf = self._split(name)
        return self._lstat_at(fd, leaf) if fd is not None else None

    def regular(self, name: str) -> os.stat_result | None:
        """The status of a regular file; None when absent; refused when it is a link or anything else."""
        st = self.lstat(name)
        if st is not None and not stat.S_ISREG(st.st_mode):
            raise self.refusal(name, _what(st))
        return st

    def open_fd(self, name: str) -> int | None:
        """A regular file opened for reading: checked before it is opened (a device is never opened) and after."""
        fd, leaf = self._split(name)
        if fd is None or self.regular(name) is None:
            return None
        try:
            opened = os.open(leaf, _READ_FLAGS, dir_fd=fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
            raise self.refusal(name, "a symbolic link") from None
        st = os.fstat(opened)
        if not stat.S_ISREG(st.st_mode):
            os.close(opened)
            raise self.refusal(name, _what(st))
        return opened

    def open(self, name: str) -> io.BufferedReader | None:
        fd = self.open_fd(name)
        return os.fdopen(fd, "rb") if fd is not None else None

    def read(self, name: str, limit: int) -> bytes | None:
        fd = self.open_fd(name)
        if fd is None:
            return None
        with os.fdopen(fd, "rb") as fh:
            # Check the size first: read(limit) would allocate the whole limit up front.
            if os.fstat(fh.fileno()).st_size > limit:
                raise MalformedDocument(f"{self.where(name)} is larger than {limit} bytes")
            data = fh.read()
        if len(data) > limit:
            raise MalformedDocument(f"{self.where(name)} is larger than {limit} bytes")
        return data

    def names(self, folder: str) -> list[str]:
        """The names in a directory below the root, sorted (none when it does not exist); a link is refused."""
        fd = self.dir(folder)
        if fd is None:
            return []
        own = os.open(".", _DIR_FLAGS, dir_fd=fd)  # listdir shares the offset of the descriptor it is given
        try:
            return sorted(os.listdir(own))
        finally:
            os.close(own)

    # -- writing -----------------------------------------------------------------------

    def new_file(self, folder: str) -> tuple[int, str]:
        """A new private file (0600) with a fresh `.tmp-` name in `folder` (made if missing), open for writing."""
        fd = self.dir(folder, create=True)
        if fd is None:
            raise OcisiftError(f"could not create {self.where(folder)}")
        while True:
            leaf = f".tmp-{secrets.token_hex(8)}"
            try:
                return os.open(leaf, _NEW_FLAGS, 0o600, dir_fd=fd), leaf
            except FileExistsError:
                continue

    def write_file(self, name: str, data: bytes, *, sync: bool = True) -> None:
        """Replace `name` whole with `data`: a new file renamed over it (a link there is replaced, not followed)."""
        folder, _, leaf = name.rpartition("/")
        fd, tmp = self.new_file(folder)
        try:
            os.fchmod(fd, file_mode())
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                if sync:
                    os.fsync(out.fileno())
            self.rename(folder, tmp, leaf)
        except BaseException:
            self.unlink(f"{folder}/{tmp}" if folder else tmp)
            raise

    def rename(self, folder: str, src: str, dst: str) -> None:
        """Rename within one directory; a link named `dst` is replaced itself (its target is untouched)."""
        fd = self.dir(folder)
        if fd is None:
            raise FileNotFoundError(errno.ENOENT, "no such directory", self.where(folder))
        os.replace(src, dst, src_dir_fd=fd, dst_dir_fd=fd)

    def link(self, folder: str, src: str, dst: str) -> None:
        fd = self.dir(folder)
        if fd is None:
            raise FileNotFoundError(errno.ENOENT, "no such directory", self.where(folder))
        os.link(src, dst, src_dir_fd=fd, dst_dir_fd=fd, follow_symlinks=False)

    def unlink(self, name: str) -> bool:
        """Remove a name (a file, or a link itself, never what it points to); False when it was not there."""
        fd, leaf = self._split(name)
        if fd is None:
            return False
        try:
            os.unlink(leaf, dir_fd=fd)
        except FileNotFoundError:
            return False
        except IsADirectoryError:
            raise self.refusal(name, "a directory") from None
        return True

    def touch(self, name: str) -> bool:
        """Mark a regular file as just used (its mtime); False when absent. A link is refused, never followed."""
        fd, leaf = self._split(name)
        if fd is None or self.regular(name) is None:
            return False
        try:
            os.utime(leaf, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        return True

    @contextmanager
    def locked(self, name: str, timeout: float) -> Iterator[None]:
        """An exclusive flock on `name` (created if missing), waited for at most `timeout` seconds.

        The file is opened without O_TRUNC and must be a regular file with one link: a lock file that
        is a link, or a hard link to a user's file, is refused rather than opened for writing.
        """
        st = self.regular(name)
        if st is not None and st.st_nlink != 1:
            raise self.refusal(name, f"a file with {st.st_nlink} hard links (a lock file has one; remove it "
                                     "when no writer is running, and the next writer makes a new one)")
        fd, leaf = self._split(name, create=True)
        assert fd is not None
        try:
            lock = os.open(leaf, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                           file_mode(), dir_fd=fd)
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
            raise self.refusal(name, "a symbolic link") from None
        try:
            opened = os.fstat(lock)
            if not stat.S_ISREG(opened.st_mode) or opened.st_nlink != 1:
                raise self.refusal(name, f"{_what(opened)} with {opened.st_nlink} links (a lock file has one)")
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise OcisiftError(f"another writer has held {self.where(name)} for {timeout:.0f} s; "
                                           "try again when it is done") from None
                    time.sleep(0.02)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        finally:
            os.close(lock)

    def close(self) -> None:
        with self._mutex:
            fds, self._dirs = list(self._dirs.values()), {}
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass

    def __del__(self) -> None:
        self.close()


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def exchange_paths(a: str, b: str) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE): a directory replaced this way is never
    missing, not even for a moment. False where the system or filesystem cannot, and nothing was done."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), b)


ARCHIVE_LOCK_TIMEOUT = 600.0  # a writer of an archive holds it for its whole copy, which may take minutes


class FileLock:
    """A writer's lock on one file (an archive): a lock file beside it (`.NAME.lock`), held from open to
    close, so two processes writing one archive go one after the other, the second starting from what the
    first wrote instead of packing over it.

    The lock file is removed when the lock is released, so nothing is left beside the archive: the holder
    unlinks it while still holding it, and a waiter that then gets the lock on the unlinked file sees that
    the name no longer leads to what it holds, and opens it again. It is reached through the parent's
    directory descriptor without following a link, and must be a regular file with one link.
    """

    def __init__(self, path: str, timeout: float = ARCHIVE_LOCK_TIMEOUT) -> None:
        parent, name = os.path.split(os.path.abspath(path))
        self._dir = SafeDir(parent)
        self._name = f".{name}.lock"
        self._fd: int | None = None
        try:
            self._acquire(time.monotonic() + timeout, timeout)
        except BaseException:
            self._dir.close()
            raise

    def _acquire(self, deadline: float, timeout: float) -> None:
        parent = self._dir.dir("")
        while True:
            try:
                fd = os.open(self._name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                             file_mode(), dir_fd=parent)
            except OSError as exc:
                if exc.errno != errno.ELOOP:
                    raise
                raise self._dir.refusal(self._name, "a symbolic link") from None
            try:
                held = os.fstat(fd)
                if not stat.S_ISREG(held.st_mode) or held.st_nlink > 1:
                    raise self._dir.refusal(self._name, f"{_what(held)} with {held.st_nlink} links (a lock file "
                                                        "has one; remove it when no writer is running)")
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if time.monotonic() >= deadline:
                            raise OcisiftError(f"another writer has held {self._dir.where(self._name)} for "
                                               f"{timeout:.0f} s; try again when it is done") from None
                        time.sleep(0.02)
                try:
                    now = os.stat(self._name, dir_fd=parent, follow_symlinks=False)
                except FileNotFoundError:
                    now = None
                if now is not None and (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino):
                    self._fd, fd = fd, -1
                    return
                # the holder before us removed this lock file as it let go: open the name anew
            finally:
                if fd >= 0:
                    os.close(fd)

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            try:
                os.unlink(self._name, dir_fd=self._dir.dir(""))
            except FileNotFoundError:
                pass
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
            self._dir.close()
