"""Progress bars for people at a terminal, drawn by rich on standard error."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, TaskID, TransferSpeedColumn
from rich.progress import Progress as Bars

from .._core import mediatypes as mt
from .._core.models import Descriptor
from .._core.progress import Advance
from .text import printable

_KINDS = {
    mt.OCI_CONFIG: "config", mt.DOCKER_CONFIG: "config", mt.OCI_EMPTY: "empty config",
    mt.OCI_MANIFEST: "manifest", mt.DOCKER_MANIFEST: "manifest", mt.OCI_INDEX: "index", mt.DOCKER_LIST: "index",
}


def short_media_type(media_type: str) -> str:
    """What a person calls it: "layer tar+gzip", "config", "spdx+json", not the whole registered name."""
    known = _KINDS.get(media_type)
    if known is not None:
        return known
    if mt.is_image_layer(media_type):
        fmt = media_type.rsplit(".", 1)[-1] if "tar" in media_type.rsplit(".", 1)[-1] else "tar"
        return f"layer {fmt}"
    subtype = media_type.split("/", 1)[-1]
    for prefix in ("vnd.oci.", "vnd.docker.", "vnd.cncf.", "vnd."):
        subtype = subtype.removeprefix(prefix)
    return subtype[:40]


def blob_label(desc: Descriptor) -> str:
    """A bar's name: the title (a file's name), else the short media type; with a short digest to tell
    two alike apart. Text from a document, so shown escaped."""
    name = desc.title or short_media_type(desc.media_type)
    return f"{printable(name)[:60]} {desc.digest.hex[:8]}"


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
        task = self.bars.add_task(escape(f"{verb} {blob_label(desc)}"), total=desc.size)
        self.tasks[str(desc.digest)] = task

        def advance(n: int) -> None:
            self.bars.advance(task, n)

        return advance

    def end(self, desc: Descriptor) -> None:
        task = self.tasks.get(str(desc.digest))
        if task is not None:
            self.bars.update(task, completed=desc.size)
