"""Transfer progress: the hook algorithms call. Drawing it is the command line's business."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from .models import Descriptor
from .sources import ByteSource

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

Advance = Callable[[int], None]


class Progress(Protocol):
    """`begin` when a blob starts moving (returns the per-chunk callback), `end` when it is done."""

    def begin(self, desc: Descriptor, verb: str) -> Advance: ...

    def end(self, desc: Descriptor) -> None: ...


def _ignore(n: int) -> None:
    pass


class NoProgress:
    def begin(self, desc: Descriptor, verb: str) -> Advance:
        return _ignore

    def end(self, desc: Descriptor) -> None:
        pass


class CountingReader(io.RawIOBase):
    """A source that reports each chunk read from it (a file being pushed, for its bar)."""

    def __init__(self, source: ByteSource, advance: Advance) -> None:
        super().__init__()
        self._source = source
        self._advance = advance

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        n = self._source.readinto(buffer) or 0
        if n:
            self._advance(n)
        return n
