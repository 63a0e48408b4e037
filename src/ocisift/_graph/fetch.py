"""Blobs fetched several at once into files, and a pull's unpacking that goes on while later ones arrive.

A pull unpacks its layers in manifest order, one after another (a later
layer's whiteouts remove what an earlier one wrote). Fetching them in that
order too leaves the network idle while the first one is unpacked. So the
first layer streams straight into the unpacker, while up to `concurrency - 1`
workers fetch the next ones into files of the staging's scratch directory;
when the unpacker reaches a layer, it reads the finished file, waits for the
one being fetched, or, if no worker has begun it yet, streams it itself.
Nothing is held in memory: a blob is either a stream or a file, and a file
is removed as soon as the last layer using it is unpacked.

Every fetch is verified while it streams (digest and size), so a file the
unpacker reads has already been checked. A failure stops the other workers at
their next chunk, and the first failure in plan order is the one raised.
"""

from __future__ import annotations

import io
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager

from .._core.digest import Digest
from .._core.errors import OcisiftError
from .._core.models import Descriptor
from .._core.progress import Progress
from .._core.sources import CheckedStream
from .._core.streams import ReadAhead, copy_stream
from .._stores.base import Reader


class FetchedFile(io.FileIO):
    """A blob fetched (and verified as it arrived) into a private file of the staging's scratch directory."""

    def drain(self) -> None:
        pass  # verified when it was written


class _Stopped(OcisiftError):
    """A worker told to stop because another part of the pull failed (never the error shown)."""


class BlobFiles:
    """A pool that fetches blobs into files, verified; `close()` stops it and waits for its workers."""

    def __init__(self, store: Reader, workers: int, progress: Progress) -> None:
        self.store = store
        self.progress = progress
        self.stop = threading.Event()
        self.pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="ocisift-fetch")

    def submit(self, desc: Descriptor, path: str, before: Callable[[], bool] | None = None) -> Future[str | None]:
        """Fetch `desc` into a new file at `path`; `before` may decline the work when its turn comes."""
        return self.pool.submit(self._fetch, desc, path, before)

    def _fetch(self, desc: Descriptor, path: str, before: Callable[[], bool] | None) -> str | None:
        if self.stop.is_set() or (before is not None and not before()):
            return None
        advance = self.progress.begin(desc, "fetch")

        def write(chunk: memoryview) -> None:
            if self.stop.is_set():
                raise _Stopped("stopped")
            out.write(chunk)

        with self.store.fetch(desc) as reader, open(path, "xb") as out:
            reader.on_read = advance
            copy_stream(reader, write)  # its last read is where a digest or size mismatch is raised
        self.progress.end(desc)
        return path

    def close(self) -> None:
        self.stop.set()
        self.pool.shutdown(wait=True, cancel_futures=True)


def fetch_all(store: Reader, jobs: Sequence[tuple[Descriptor, str]], concurrency: int, progress: Progress) -> None:
    """Every blob into its file, `concurrency` at a time; the first failure in order is raised, the rest stop."""
    files = BlobFiles(store, concurrency, progress)
    try:
        futures = [files.submit(desc, path) for desc, path in jobs]
        for future in futures:
            future.result()
    finally:
        files.close()


class Prefetcher:
    """The blobs of a plan, in order, to a consumer that uses one at a time (see the module's docstring)."""

    def __init__(self, store: Reader, plan: Sequence[Descriptor], scratch: Callable[[], str], concurrency: int,
                 progress: Progress) -> None:
        self.store = store
        self.progress = progress
        self._uses = Counter(d.digest for d in plan)
        unique = list({d.digest: d for d in plan}.values())
        self._lock = threading.Lock()
        self._claimed: set[Digest] = set()  # streamed by the consumer: no worker takes them
        self._begun: set[Digest] = set()
        self._futures: dict[Digest, Future[str | None]] = {}
        self._files: BlobFiles | None = None
        if concurrency > 1 and len(unique) > 1:
            folder = scratch()
            self._files = BlobFiles(store, concurrency - 1, progress)
            for desc in unique[1:]:  # the first is the consumer's, streamed as soon as it asks
                self._futures[desc.digest] = self._files.submit(
                    desc, os.path.join(folder, desc.digest.hex), self._begin(desc.digest))

    def _begin(self, digest: Digest) -> Callable[[], bool]:
        def begin() -> bool:
            with self._lock:
                if digest in self._claimed:
                    return False
                self._begun.add(digest)
                return True
        return begin

    @contextmanager
    def open(self, desc: Descriptor) -> Iterator[CheckedStream]:
        """The blob's bytes, verified: from its fetched file, or streamed now if no worker began it."""
        with self._lock:
            begun = desc.digest in self._begun
            if not begun:
                self._claimed.add(desc.digest)
        path = self._futures[desc.digest].result() if begun else None
        try:
            if path is not None:
                with FetchedFile(path, "rb") as fh:
                    yield fh
            else:
                advance = self.progress.begin(desc, "unpack")
                with self.store.fetch(desc) as raw:
                    raw.on_read = advance
                    with ReadAhead(raw) as ahead:  # receive and verify on one core, unpack on the other
                        yield ahead
                self.progress.end(desc)
        finally:
            self._uses[desc.digest] -= 1
            if path is not None and self._uses[desc.digest] <= 0:
                os.unlink(path)  # disk is freed layer by layer, not at the end

    def close(self) -> None:
        if self._files is not None:
            self._files.close()
