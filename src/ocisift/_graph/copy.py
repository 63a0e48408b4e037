"""copy: a graph, or chosen platforms of it, from any store to any store. Written once, like oras.Copy.

1. Plan: walk the graph from the root, children before parents, reading each
   manifest once; a sub-graph whose root the destination already has is
   skipped whole (a destination never holds a manifest whose content is
   missing, because it is always written last).
2. Move: one worker pool for every blob of the graph; each blob is checked at
   the destination, mounted when the destination can mount from the source,
   else streamed through one verification (its source's) into the destination.
3. Publish: manifests and indexes in plan order, each once all it needs is there.
4. Referrers (when asked): every manifest and index of the source graph is a
   subject; its referrers are copied the same way, then theirs, each made
   findable at the destination (`record_referrer`).

A copy whose destination tag already names what the source tag names does
nothing more than ask both (`unchanged`): the destination never holds a
manifest whose content is missing, so the graph under it is there. With
referrers, it also compares the digests of the two ends' indexes of the root's
referrers (one request each, none when the source lists none) and copies only
what arrived since (`complete`); the destination keeps the source's index
byte for byte where it can, so the digests agree on the next run.
"""

from __future__ import annotations

import io
import threading
from collections import deque
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
from .._stores.base import (
    BlobFetcher,
    Mounter,
    Pusher,
    Reader,
    ReferrerIndexAdopter,
    ReferrerLister,
    ReferrerPeeker,
    Tagger,
    TagPeeker,
    require,
)
from .._trust.formats import signature_tag
from .naming import check_pin, record_name
from .referrers import graph_manifests, index_entries, record_referrer
from .resolve import resolve_in
from .results import CopyResult
from .select import Selector
from .walk import MAX_DEPTH, MAX_NODES, Loader, document_loader


@dataclass
class _Plan:
    documents: list[tuple[Descriptor, Document]] = field(default_factory=list)  # children before parents
    blobs: dict[Digest, Descriptor] = field(default_factory=dict)
    present: list[Descriptor] = field(default_factory=list)  # sub-graph roots the destination already has
    external: dict[Digest, Descriptor] = field(default_factory=dict)  # non-distributable: descriptors with urls


def plan_copy(root: Descriptor, load: Loader, dst: Reader, *, max_depth: int = MAX_DEPTH,
              max_nodes: int = MAX_NODES, include_external: bool = False) -> _Plan:
    """Post-order over the graph, pruned where the destination already has a sub-graph's root.

    A blob whose descriptor carries `urls` is non-distributable (Docker's foreign layers, OCI's
    non-distributable ones): by Docker's rule its descriptor is kept and the blob is not copied, and the
    plan lists it so the copy can say so; `include_external` copies it like any other."""
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
        if dst.exists(desc) and not include_external:
            # Present means whole, except for blobs left at their URLs: asked to include those, the
            # graph is walked again and each blob checked (only what is missing moves).
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
                if blob.urls and not include_external:
                    plan.external.setdefault(blob.digest, blob)
                else:
                    plan.blobs.setdefault(blob.digest, blob)
        plan.documents.append((desc, doc))

    visit(root, ())
    return plan


class GraphCopier:
    """Moves planned graphs from `src` to `dst`; one instance may copy several roots, sharing what it saw."""

    def __init__(self, src: Reader, dst: Reader, result: CopyResult, *, concurrency: int = 4,
                 progress: Progress | None = None, referrers: bool = False,
                 external: BlobFetcher | None = None) -> None:
        """`external`: where non-distributable blobs the source lacks are fetched from (their own URLs);
        given, they are copied, else left at their URLs and listed in the result."""
        self.src = src
        self.external = external
        self.dst = dst
        self.pusher = require(dst, Pusher, "be written to")
        self.mounter = dst if isinstance(dst, Mounter) else None
        self.lister = require(src, ReferrerLister, "list referrers (--referrers)") if referrers else None
        self.result = result
        self.concurrency = max(1, concurrency)
        self.progress = progress or NoProgress()
        self.load = document_loader(src)
        self._done: set[Digest] = set()
        self._subjects: set[Digest] = set()  # whose referrers were listed already
        self._indexes: dict[Digest, bytes] = {}  # roots' referrer indexes at the source, for the destination
        self._compared: set[Digest] = set()  # unchanged roots whose referrer indexes were compared
        self._signature_tags = isinstance(dst, Tagger)  # cosign's .sig tags go along where tags can be written
        self._lock = threading.Lock()

    def copy(self, root: Descriptor) -> None:
        """Copy the graph under `root`; with referrers, then theirs, breadth first, each graph once, and the
        destination keeps the source's index of root's referrers (so a later run compares the two by digest)."""
        self._copy_graph(root)
        if self.lister is None:
            return
        self._carry(root, None)
        self._adopt(root, None)

    def complete(self, root: Descriptor) -> None:
        """A tag the destination has already (`root` under it): copy only the referrers of root that arrived
        at the source since, deciding by one request at each end when none did.

        The two ends' referrer indexes are compared by digest; only when they differ are both read, and
        what the destination lacks is copied. Referrers of the manifests under an index, and referrers of
        referrers that were there before, are not looked for: that would cost a request for each.
        """
        if self.lister is None or root.digest in self._subjects or root.digest in self._compared:
            return  # no referrers wanted, or listed or compared already in this run (another tag of it)
        if not isinstance(self.src, ReferrerPeeker) or not isinstance(self.dst, ReferrerPeeker):
            return  # no cheap way to tell: the tag is taken as complete, as before
        self._compared.add(root.digest)
        here = self.src.peek_referrers(root)
        if here is None or here == self.dst.peek_referrers(root):
            return
        raw = self.src.referrer_index(root)
        if raw is None:
            return
        self._indexes[root.digest] = raw
        have = {d.digest for d in index_entries(self.dst.referrer_index(root), root)}
        self._subjects.add(root.digest)
        self._carry(root, [d for d in index_entries(raw, root) if d.digest not in have])
        self._adopt(root, have)

    def _listed(self, subject: Descriptor, root: Descriptor) -> list[Descriptor]:
        """The subject's referrers at the source; root's as the index the source keeps, which is kept here
        until the destination may adopt it."""
        if subject.digest == root.digest and isinstance(self.src, ReferrerPeeker):
            raw = self.src.referrer_index(subject)
            if raw is None:
                return []
            self._indexes[subject.digest] = raw
            return index_entries(raw, subject)
        assert self.lister is not None
        return self.lister.referrers(subject)

    def _carry(self, root: Descriptor, found: list[Descriptor] | None) -> None:
        """Referrers, then theirs, breadth first, each graph once: those of every manifest and index under
        `root`, or (given `found`) just these referrers of root."""
        queue: deque[Descriptor] = deque()
        queued = {root.digest}  # a set: a list of 20,000 referrers must not cost 20,000 squared
        budget = [MAX_NODES]

        def take(refs: list[Descriptor]) -> None:
            for ref in refs:
                if ref.digest in self._subjects or ref.digest in queued:
                    continue  # a list naming an ancestor, or one already on its way
                budget[0] -= 1
                if budget[0] < 0:
                    raise MalformedDocument(f"more than {MAX_NODES} referrers under {root.digest}; "
                                            "refusing to copy them")
                queued.add(ref.digest)
                queue.append(ref)

        def list_graph(desc: Descriptor) -> None:
            for subject in graph_manifests(desc, self.load):
                if subject.digest not in self._subjects:
                    self._subjects.add(subject.digest)
                    self._copy_signature_tag(subject)
                    take(self._listed(subject, root))

        if found is None:
            list_graph(root)
        else:
            take(found)
        while queue:
            desc = queue.popleft()
            self._copy_graph(desc)
            record_referrer(self.dst, desc, self.load(desc))
            with self._lock:
                self.result.referrers.append(str(desc.digest))
            list_graph(desc)

    def _copy_signature_tag(self, subject: Descriptor) -> None:
        """cosign's legacy signatures of `subject` (the `sha256-<hex>.sig` tag), carried under the same tag, so
        they verify at the destination as they did at the source. One look per subject (a HEAD)."""
        if not self._signature_tags:
            return
        tag = signature_tag(subject.digest)
        found = peek(self.src, Target(tag=tag))
        if found is None or found.digest in self._subjects:
            return
        self._copy_graph(found)
        there = peek(self.dst, Target(tag=tag))
        if there is None or there.digest != found.digest:
            record_name(self.dst, Target(tag=tag), unnamed(found))
        with self._lock:
            self.result.referrers.append(str(found.digest))

    def _adopt(self, root: Descriptor, have: set[Digest] | None) -> None:
        """Let the destination keep the source's index of root's referrers byte for byte, when it keeps a
        fallback tag and lists nothing the index does not (`have`: what it listed before, if known)."""
        raw = self._indexes.pop(root.digest, None)
        dst = self.dst
        if raw is None or not isinstance(dst, ReferrerIndexAdopter) or not isinstance(dst, ReferrerPeeker):
            return
        if have is None:
            if dst.peek_referrers(root) == Digest.of(raw):
                return  # written alike at both ends already
            have = {d.digest for d in index_entries(dst.referrer_index(root), root)}
        if have <= {d.digest for d in index_entries(raw, root)} and dst.adopt_referrer_index(root, raw):
            with self._lock:
                self.result.referrer_indexes.append(str(root.digest))

    def _copy_graph(self, root: Descriptor) -> None:
        plan = plan_copy(root, self.load, self.dst, include_external=self.external is not None)
        for desc in plan.present:
            self._count(self.result.skipped, desc)
        for desc in plan.external.values():
            if desc.digest not in self._done:
                self._count(self.result.external, desc)
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
        origin: BlobFetcher = self.src
        if desc.urls and self.external is not None and not self.src.exists(desc):
            origin = self.external  # a non-distributable blob the source does not hold: from its URLs
        with origin.fetch(desc) as reader, (ReadAhead(reader) if read_ahead else nullcontext(reader)) as stream:
            reader.on_read = self.progress.begin(desc, "copy")
            self.pusher.push(desc, stream)
        self.progress.end(desc)
        self._count(self.result.copied, desc, desc.size)

    def publish(self, desc: Descriptor, raw: bytes) -> None:
        """Write a manifest or index (the source's exact bytes, or one made here) once all it needs is there."""
        if desc.digest in self._done:
            return
        if self.external is not None and self.dst.exists(desc):  # walked again only for its external blobs
            self._count(self.result.skipped, desc)
            return
        self.pusher.push(desc, io.BytesIO(raw))
        if desc.media_type in (mt.DOCKER_MANIFEST, mt.DOCKER_LIST):
            self.result.docker_documents += 1
        self._count(self.result.copied, desc, desc.size)

    def _count(self, bucket: list[str], desc: Descriptor, moved: int = 0) -> None:
        with self._lock:
            if desc.digest not in self._done:
                self._done.add(desc.digest)
                bucket.append(str(desc.digest))
                self.result.bytes_copied += moved


def copy_between(src: Reader, src_target: Target, dst: Reader, dst_target: Target, *,
                 platforms: tuple[str, ...] = (), concurrency: int = 4, progress: Progress | None = None,
                 source_name: str | None = None, destination_name: str | None = None,
                 referrers: bool = False, copier: GraphCopier | None = None,
                 external: BlobFetcher | None = None, pinned_tag: bool = False) -> CopyResult:
    """Resolve SRC, copy its graph (or the chosen platforms, under a new index of them), name it as DST says.

    `copier` lets several copies (every tag of a repository) share what they moved and listed.
    `pinned_tag`: SRC is the digest a tag was resolved to (and verified, before the destination was
    opened) by the caller; a DST tag naming it already is then `unchanged`, as the tag itself would be.
    """
    result = CopyResult(source_name or src.location, destination_name or dst.location)
    if copier is None:
        copier = GraphCopier(src, dst, result, concurrency=concurrency, progress=progress, referrers=referrers,
                             external=external)
    else:
        copier.result = result
    if not platforms and copier.external is None and \
            (root := unchanged(src, src_target, dst, dst_target)) is not None:
        result.root = root
        result.unchanged = True
        result.skipped.append(str(root.digest))
        result.destination = dst.pinned(root)
        copier.complete(root)
        return result
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
            root = chosen[0]
            check_pin(dst_target, root)
        else:  # a new index listing just these (a new digest, said in the summary)
            raw = build_index(chosen)
            root = Descriptor(mt.OCI_INDEX, Digest.of(raw), len(raw))
        if copier.external is None and _named(dst, dst_target, root):  # an earlier run's: the same choice
            result.root = root
            result.unchanged = True
            result.skipped.append(str(root.digest))
            result.destination = dst.pinned(root)
            for entry in chosen:
                copier.complete(entry)
            return result
        for entry in chosen:
            copier.copy(entry)
        if len(chosen) > 1:
            copier.publish(root, raw)
    else:
        root = unnamed(resolve_in(src, src_target, reference=source_name, load=copier.load).root)  # names stay
        check_pin(dst_target, root)
        if pinned_tag and copier.external is None and _named(dst, dst_target, root):
            result.root = root  # pinned by digest (a verified tag), and DST's tag names it already
            result.unchanged = True
            result.skipped.append(str(root.digest))
            result.destination = dst.pinned(root)
            copier.complete(root)
            return result
        copier.copy(root)
    result.root = root
    record_name(dst, dst_target, root)
    result.destination = dst.pinned(root)
    return result


def unchanged(src: Reader, src_target: Target, dst: Reader, dst_target: Target) -> Descriptor | None:
    """What SRC's tag names, when DST's tag names it already (asked without fetching a manifest); else None.

    Only tags can be compared this way: a destination without a tag, or a
    source pinned by digest, is planned as usual (the plan skips what is there).
    """
    if src_target.named_tag is None or dst_target.named_tag is None:
        return None  # by digest, or tagless: the plan decides
    there = peek(dst, dst_target)
    if there is None:
        return None
    here = peek(src, src_target)
    return here if here is not None and here.digest == there.digest else None


def _named(dst: Reader, dst_target: Target, root: Descriptor) -> bool:
    """Does DST's tag already name `root` (with its graph, since a destination never holds half of one)?"""
    if dst_target.named_tag is None:
        return False
    there = peek(dst, dst_target)
    return there is not None and there.digest == root.digest


def peek(store: Reader, target: Target) -> Descriptor | None:
    """What a tag names, without reading it where that costs (a registry's HEAD); None if nothing, or unsure.

    A store without the capability resolves locally, which is as cheap; several
    different entries under one name are unsure, and leave the decision to the plan.
    """
    if isinstance(store, TagPeeker):
        return store.peek(target)
    try:
        found = store.resolve(target)
    except NotFoundError:
        return None
    return found[0] if found and all(f.digest == found[0].digest for f in found) else None
