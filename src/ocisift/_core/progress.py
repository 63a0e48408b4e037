"""Transfer progress: the hook algorithms call. Drawing it is the command line's business."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from .models import Descriptor

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
