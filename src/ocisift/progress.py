"""Transfer progress: a hook the algorithms call, drawn by rich only on a terminal."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

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
