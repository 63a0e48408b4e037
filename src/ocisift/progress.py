"""Transfer progress: a hook the algorithms call, drawn by rich only on a terminal."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import IO, Protocol

from .models import Descriptor

Advance = Callable[[int], None]


class Progress(Protocol):
    def begin(self, desc: Descriptor, verb: str) -> Advance: ...

    def end(self, desc: Descriptor) -> None: ...


class NoProgress:
    def begin(self, desc: Descriptor, verb: str) -> Advance:
        return lambda n: None

    def end(self, desc: Descriptor) -> None:
        pass


class CountingReader(io.RawIOBase):
    """Reports bytes as they pass; the wrapped stream still does the verifying."""

    def __init__(self, inner: IO[bytes], advance: Advance) -> None:
        super().__init__()
        self.inner = inner
        self.advance = advance

    @property
    def verifies(self):  # type: ignore[no-untyped-def]
        return getattr(self.inner, "verifies", None)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        n = self.inner.readinto(buffer)  # type: ignore[attr-defined]
        if n:
            self.advance(n)
        return n or 0


class RichProgress:
    """One bar per blob on standard error."""

    def __init__(self, console=None) -> None:  # type: ignore[no-untyped-def]
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

        self.bars = Progress("{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                             console=console or Console(stderr=True))
        self.tasks: dict[str, int] = {}

    def __enter__(self) -> RichProgress:
        self.bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bars.stop()

    def begin(self, desc: Descriptor, verb: str) -> Advance:
        task = self.bars.add_task(f"{verb} {desc.digest.hex[:12]}", total=desc.size)
        self.tasks[str(desc.digest)] = task
        return lambda n: self.bars.advance(task, n)

    def end(self, desc: Descriptor) -> None:
        task = self.tasks.get(str(desc.digest))
        if task is not None:
            self.bars.update(task, completed=desc.size)
