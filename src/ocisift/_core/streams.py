"""Stream plumbing for blobs: one reused buffer, and reading ahead in a second thread.

Both exist because of measurements at a gigabyte: a new buffer per chunk made
the allocator map, and the kernel fault in, every mebibyte again; and unpacking
in one thread left the second core idle while the first received, hashed,
inflated, parsed and wrote in turn.
"""

from __future__ import annotations

import io
import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from .digest import Digest
from .meter import in_this_context
from .sources import CHUNK, Readable

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer


def copy_stream(src: Readable, write: Callable[[memoryview], object], chunk: int = CHUNK) -> int:
    """Move a stream through one reused buffer; returns the bytes moved."""
    buffer = bytearray(chunk)
    view = memoryview(buffer)
    total = 0
    while n := src.readinto(view):
        write(view[:n])
        total += n
    return total


class ReadAhead(io.RawIOBase):
    """Reads the next chunks of `source` in a thread of its own while the caller works on this one.

    Receiving and hashing release the GIL, so a second core takes them while
    this one inflates and writes. `depth` reused buffers bound the memory. An
    error in the reader thread (a digest mismatch, a dead connection) is raised
    here, at the read that would have returned the bytes after it, and again on
    every later read. Close it (or leave its `with` block) before the source.
    """

    def __init__(self, source: Readable, depth: int = 4, chunk: int = CHUNK) -> None:
        super().__init__()
        self._source = source
        self._free: queue.Queue[bytearray | None] = queue.Queue()
        for _ in range(depth):
            self._free.put(bytearray(chunk))
        self._ready: queue.Queue[tuple[bytearray, int] | BaseException] = queue.Queue()
        self._stop = threading.Event()
        self._buffer: bytearray | None = None
        self._start = self._end = 0
        self._ended = False
        self._error: BaseException | None = None
        # in a copy of this context: a request the source makes to resume counts where this read's do
        self._thread = threading.Thread(target=in_this_context(self._fill), name="ocisift-read-ahead", daemon=True)
        self._thread.start()

    def _fill(self) -> None:
        try:
            while not self._stop.is_set():
                buffer = self._free.get()
                if buffer is None:
                    return
                n = self._source.readinto(buffer)
                self._ready.put((buffer, n or 0))
                if not n:
                    return
        except BaseException as exc:  # handed to the reading thread, which raises it
            self._ready.put(exc)

    @property
    def verifies(self) -> Digest | None:
        """The digest the source checks, if it does: a writer need not hash these bytes again."""
        found = getattr(self._source, "verifies", None)
        return found if isinstance(found, Digest) else None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        while self._buffer is None:
            if self._error is not None:
                raise self._error
            if self._ended:
                return 0
            item = self._ready.get()
            if isinstance(item, BaseException):
                self._error = item
                raise item
            chunk, n = item
            if n == 0:
                self._ended = True
                return 0
            self._buffer, self._start, self._end = chunk, 0, n
        view = memoryview(buffer).cast("B")
        k = min(len(view), self._end - self._start)
        view[:k] = memoryview(self._buffer)[self._start : self._start + k]
        self._start += k
        if self._start == self._end:
            self._free.put(self._buffer)
            self._buffer = None
        return k

    def drain(self) -> None:
        """Read to the end, so the source's own end-of-stream checks run."""
        scratch = bytearray(CHUNK)
        while self.readinto(scratch):
            pass

    def close(self) -> None:
        if not self.closed:
            self._stop.set()
            self._free.put(None)  # wakes a reader thread waiting for a buffer
            self._thread.join()
        super().close()
