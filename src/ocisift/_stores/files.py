"""Where a layout's files are kept: a directory, or the members of a plain tar file read in place."""

from __future__ import annotations

import io
import os
import posixpath
import tarfile
from typing import IO, TYPE_CHECKING, NamedTuple, Protocol

from .._core.errors import MalformedDocument, NotFoundError, UnsafeContentError, UsageError
from .._core.sources import CHUNK
from .._core.tarheaders import CappedTarInfo
from .safefs import SafeDir

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer


class LayoutFiles(Protocol):
    """Read access to the files of a layout, wherever they are kept."""

    description: str

    def read(self, name: str, limit: int) -> bytes | None: ...

    def open(self, name: str) -> io.BufferedReader | None: ...

    def exists(self, name: str) -> bool: ...

    def size(self, name: str) -> int | None: ...


class DirectoryFiles:
    """A layout directory's files, reached without following a link below its root (see safefs)."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.description = root
        try:
            self.safe = SafeDir(root)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFoundError(f"no OCI layout directory at {root}") from None

    def path(self, name: str) -> str:
        """The path of a file, for what takes paths; only for directories ocisift made itself (staging)."""
        return self.safe.where(name)

    def read(self, name: str, limit: int) -> bytes | None:
        return self.safe.read(name, limit)

    def open(self, name: str) -> io.BufferedReader | None:
        return self.safe.open(name)

    def exists(self, name: str) -> bool:
        return self.safe.regular(name) is not None

    def size(self, name: str) -> int | None:
        st = self.safe.regular(name)
        return st.st_size if st is not None else None

    def close(self) -> None:
        self.safe.close()


class _Slice(io.RawIOBase):
    """A window on an open file: one tar member's data."""

    def __init__(self, fh: IO[bytes], offset: int, size: int) -> None:
        super().__init__()
        self._fh = fh
        self._left = size
        fh.seek(offset)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        if self._left <= 0:
            return 0
        view = memoryview(buffer).cast("B")
        n = self._fh.readinto(view[: min(len(view), self._left)])  # type: ignore[attr-defined]
        self._left -= n or 0
        return n or 0

    def close(self) -> None:
        try:
            self._fh.close()
        finally:
            super().close()


class Member(NamedTuple):
    """Where a file's data lies in the tar, and when it was written."""

    offset: int
    size: int
    mtime: float


MAX_LINK_HOPS = 8


class ArchiveFiles:
    """Files inside a plain tar file, indexed once by header, never unpacked.

    Symlink members are followed inside the archive (skopeo's docker archives
    link `ID/layer.tar` to `HEX.tar`); a link that leaves the archive names
    nothing.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.description = path
        self.members: dict[str, Member] = {}
        self.links: dict[str, str] = {}
        try:
            with open(path, "rb") as fh:
                magic = fh.read(4)
                if magic[:2] == b"\x1f\x8b" or magic == b"\x28\xb5\x2f\xfd":
                    raise UsageError(
                        f"{path} is a compressed file; oci-archive: reads plain tar files (decompress it first)"
                    )
            length = os.path.getsize(path)
            with tarfile.open(path, "r:", tarinfo=CappedTarInfo) as tar:
                for member in tar:
                    name = member.name
                    while name.startswith("./"):
                        name = name[2:]
                    if member.isfile():
                        self.members[name] = self._checked(member, name, length)
                    elif member.issym():
                        self.links[name] = member.linkname
        except tarfile.TarError as exc:
            raise MalformedDocument(f"{path} is not a readable tar archive: {exc}") from None
        except FileNotFoundError:
            raise NotFoundError(f"no archive at {path}") from None
        except (MalformedDocument, UnsafeContentError) as exc:  # a header refused: say which archive
            raise type(exc)(f"{path}: {exc.message}") from None

    def _checked(self, member: tarfile.TarInfo, name: str, length: int) -> Member:
        """Where a regular member's data lies, read in place: only a plain window of the file can be."""
        if member.sparse is not None:
            raise MalformedDocument(f"tar member {name[:200]!r} is stored sparse; archive members are read in "
                                    "place, and a sparse one cannot be (repack the archive without --sparse)")
        if member.offset_data + member.size > length:
            raise MalformedDocument(f"tar member {name[:200]!r} claims {member.size} bytes, past the end of "
                                    "the archive")
        return Member(member.offset_data, member.size, member.mtime)

    def resolve(self, name: str) -> str | None:
        """The regular member a name leads to, through symlinks inside the archive; None when none does."""
        for _ in range(MAX_LINK_HOPS + 1):
            if name in self.members:
                return name
            target = self.links.get(name)
            if target is None or target.startswith("/"):
                return None
            joined = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
            if joined.startswith("../") or joined == "..":
                return None
            name = joined
        return None

    def member(self, name: str) -> Member | None:
        found = self.resolve(name)
        return self.members[found] if found is not None else None

    def read(self, name: str, limit: int) -> bytes | None:
        entry = self.member(name)
        if entry is None:
            return None
        if entry.size > limit:
            raise MalformedDocument(f"{name} in {self.path} is larger than {limit} bytes")
        fh = self.open(name)
        if fh is None:
            return None
        with fh:
            data = fh.read()
        if len(data) > limit:
            raise MalformedDocument(f"{name} in {self.path} is larger than {limit} bytes")
        return data

    def open(self, name: str) -> io.BufferedReader | None:
        entry = self.member(name)
        if entry is None:
            return None
        return io.BufferedReader(_Slice(open(self.path, "rb"), entry.offset, entry.size), CHUNK)

    def exists(self, name: str) -> bool:
        return self.resolve(name) is not None

    def size(self, name: str) -> int | None:
        entry = self.member(name)
        return entry.size if entry is not None else None
