"""The shapes of byte streams that blobs flow through, as protocols, and the chunk size they move in."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

CHUNK = 1 << 20


class Readable(Protocol):
    """Anything with readinto: files, responses, our verifying readers."""

    def readinto(self, buffer: WriteableBuffer, /) -> int | None: ...


class ByteSource(Readable, Protocol):
    """What a store's push reads from: a file, BytesIO, a verifying reader, a read-ahead."""

    def read(self, size: int = -1, /) -> bytes: ...


class CheckedStream(Readable, Protocol):
    """A blob's bytes whose check (digest and size) has run, or runs by the time `drain()` returns."""

    def drain(self) -> None: ...
