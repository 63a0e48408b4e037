"""Progress bars for people at a terminal, drawn by rich on standard error."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, TaskID, TransferSpeedColumn
from rich.progress import Progress as Bars

from .._core.models import Descriptor
from .._core.progress import Advance


class RichProgress:
    """One bar per blob."""

    def __init__(self, console: Console | None = None) -> None:
        self.bars = Bars("{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                         console=console or Console(stderr=True))
        self.tasks: dict[str, TaskID] = {}

    def __enter__(self) -> RichProgress:
        self.bars.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.bars.stop()

    def begin(self, desc: Descriptor, verb: str) -> Advance:
        task = self.bars.add_task(f"{verb} {desc.digest.hex[:12]}", total=desc.size)
        self.tasks[str(desc.digest)] = task

        def advance(n: int) -> None:
            self.bars.advance(task, n)

        return advance

    def end(self, desc: Descriptor) -> None:
        task = self.tasks.get(str(desc.digest))
        if task is not None:
            self.bars.update(task, completed=desc.size)
