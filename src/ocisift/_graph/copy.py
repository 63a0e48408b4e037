"""copy: a graph, or chosen platforms of it, from any store to any store. Written once, like oras.Copy.

1. Plan: walk the graph from the root, children before parents, reading each
   manifest once; a sub-graph whose root the destination already has is
   skipped whole (a destination never holds a manifest whose content is
   missing, because it is always written last).
2. Move: one worker pool for every blob of the graph; each blob is checked at
   the destination, mounted when the destination can mount from the source,
   else streamed through one verification (its source's) into the destination.
3. Publish: manifests and indexes in plan order, each once all it needs is there.
"""

from __future__ import annotations

import io
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field

from .._core import mediatypes as mt
from .._core.builders import build_index
from .._core.digest import Digest
from .._core.errors import MalformedDocument, NotFoundError
from .._core.models import Descriptor, Document, Index
from .._core.names import unnamed
from .._core.progress import NoProgress, Progress
from .._core.reference import Target
from .._core.sources import CHUNK
from .._core.streams import ReadAhead
from .._stores.base import Mounter, Pusher, Reader, require
from .naming import check_pin, record_name
from .resolve import resolve_in
from .results import CopyResult
from .select import Selector
from .walk import MAX_DEPTH, MAX_NODES, Loader, document_loader


@dataclass
class _Plan:
    documents: list[tuple[Descriptor, Document]] = field(default_factory=list)  # children before parents
    blobs: dict[Digest, Descriptor] = field(default_factory=dict)
    present: list[Descriptor] = field(default_factory=list)  # sub-graph roots the destination already has


def plan_copy(root: Descriptor, load: Loader, dst: Reader, *, max_depth: int = MAX_DEPTH,
              max_nodes: int = MAX_NODES) -> _Plan:
    """Post-order over the graph, pruned where the destination already has a sub-graph's root."""
    plan = _Plan()
    seen: set[Digest] = set()
    budget = [max_nodes]

    def visit(desc: Descriptor, path: tuple[Digest, ...]) -> None:
        if desc.digest in path:
            raise MalformedDocument(f"cycle in the graph: {desc.digest} is its own ancestor")
        if len(path) > max_depth:
            raise MalformedDocument(f"index nesting deeper than {max_depth} levels at {desc.digest}")
        if desc.digest in seen:
            return
        seen.add(desc.digest)
        budget[0] -= 1
        if budget[0] < 0:
            raise MalformedDocument(f"graph has more than {max_nodes} manifests; refusing to copy it")
        if dst.exists(desc):
            plan.present.append(desc)
            return
        try:
            doc = load(desc)
        except NotFoundError:
            if not path:
                raise
            what = f" ({desc.platform})" if desc.platform else ""
            raise NotFoundError(
                f"manifest {desc.digest}{what} is listed by index {path[-1]} but absent from the source, so the "
                "whole index cannot be copied; copy the platforms that are there with --platform") from None
        if isinstance(doc, Index):
            for child in doc.children:
                visit(child, (*path, desc.digest))
        else:
            for blob in doc.blobs:
                if not blob.urls:  # foreign layers stay where their URLs say
                    plan.blobs.setdefault(blob.digest, blob)
        plan.documents.append((desc, doc))

    visit(root, ())
    return plan


class GraphCopier:
    """Moves planned graphs from `src` to `dst`; one instance may copy several roots, sharing what it saw."""

    def __init__(self, src: Reader, dst: Reader, result: CopyResult, *, concurrency: int = 4,
                 progress: Progress | None = None) -> None:
        self.src = src
        self.dst = dst
        self.pusher = require(dst, Pusher, "be written to")
        self.mounter = dst if isinstance(dst, Mounter) else None
        self.result = result
        self.concurrency = max(1, concurrency)
        self.progress = progress or NoProgress()
        self.load = document_loader(src)
        self._done: set[Digest] = set()
        self._lock = threading.Lock()

    def copy(self, root: Descriptor) -> None:
        plan = plan_copy(root, self.load, self.dst)
        for desc in plan.present:
            self._count(self.result.skipped, desc)
        blobs = [b for d, b in plan.blobs.items() if d not in self._done]
        # Blobs moving one at a time leave a core idle: a read-ahead thread receives and
        # verifies while the writer writes. Several at once already keep both busy.
        one_at_a_time = self.concurrency <= 1 or sum(b.size > CHUNK for b in blobs) <= 1
        pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="ocisift-copy")
        try:
            futures: list[Future[None]] = [
                pool.submit(self._blob, b, one_at_a_time and b.size > CHUNK) for b in blobs
            ]
            for future in futures:
                future.result()
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        for desc, doc in plan.documents:
            self.publish(desc, doc.raw)

    def _blob(self, desc: Descriptor, read_ahead: bool) -> None:
        if self.dst.exists(desc):
            self._count(self.result.skipped, desc)
            return
        if self.mounter is not None and self.mounter.mount(desc, self.src):
            self._count(self.result.mounted, desc)
            return
        with self.src.fetch(desc) as reader, (ReadAhead(reader) if read_ahead else nullcontext(reader)) as stream:
            reader.on_read = self.progress.begin(desc, "copy")
            self.pusher.push(desc, stream)
        self.progress.end(desc)
        self._count(self.result.copied, desc, desc.size)

    def publish(self, desc: Descriptor, raw: bytes) -> None:
        """Write a manifest or index (the source's exact bytes, or one made here) once all it needs is there."""
        if desc.digest in self._done:
            return
        self.pusher.push(desc, io.BytesIO(raw))
        self._count(self.result.copied, desc, desc.size)

    def _count(self, bucket: list[str], desc: Descriptor, moved: int = 0) -> None:
        with self._lock:
            if desc.digest not in self._done:
                self._done.add(desc.digest)
                bucket.append(str(desc.digest))
                self.result.bytes_copied += moved


def copy_between(src: Reader, src_target: Target, dst: Reader, dst_target: Target, *,
                 platforms: tuple[str, ...] = (), concurrency: int = 4, progress: Progress | None = None,
                 source_name: str | None = None, destination_name: str | None = None) -> CopyResult:
    """Resolve SRC, copy its graph (or the chosen platforms, under a new index of them), name it as DST says."""
    result = CopyResult(source_name or src.location, destination_name or dst.location)
    copier = GraphCopier(src, dst, result, concurrency=concurrency, progress=progress)
    if platforms:
        chosen: list[Descriptor] = []
        for p in platforms:
            sel = resolve_in(src, src_target, Selector.build(p), descend=True, reference=source_name,
                             load=copier.load)
            assert sel.selected is not None
            d = unnamed(sel.selected.descriptor)
            entry = Descriptor(d.media_type, d.digest, d.size, d.annotations, d.platform or sel.selected.platform,
                               d.artifact_type)
            if all(c.digest != entry.digest for c in chosen):
                chosen.append(entry)
        if len(chosen) == 1:
            check_pin(dst_target, chosen[0])
        for entry in chosen:
            copier.copy(entry)
        if len(chosen) == 1:
            root = chosen[0]
        else:  # a new index listing just these (a new digest, said in the summary)
            raw = build_index(chosen)
            root = Descriptor(mt.OCI_INDEX, Digest.of(raw), len(raw))
            copier.publish(root, raw)
    else:
        root = unnamed(resolve_in(src, src_target, reference=source_name, load=copier.load).root)  # names stay
        check_pin(dst_target, root)
        copier.copy(root)
    result.root = root
    record_name(dst, dst_target, root)
    result.destination = dst.pinned(root)
    return result
