"""Garbage collection: remove the blobs nothing reachable from a store's roots uses.

An algorithm over the BlobSweeper capability, so it runs the same over a
layout directory, a staged archive and the in-memory store. The roots are
read and blobs removed while the store's exclusive lock is held, which
writers recording a root also take. Blobs younger than the grace period are
kept, because a push writes its blobs before the root that makes them
reachable; and a young manifest or index keeps everything it reaches, so a
half-finished copy that is tried again never finds its manifest without its
layers. Manifests an index lists but the store does not hold (an export of
one platform) are passed over, not an error.
"""

from __future__ import annotations

from collections.abc import Iterable

from .._core import mediatypes as mt
from .._core.digest import Digest
from .._core.errors import MalformedDocument, NotFoundError, OcisiftError
from .._core.models import MAX_MANIFEST_BYTES, Descriptor, Index, Manifest, parse_document
from .._stores.base import BlobSweeper, Reader, RootLister, require
from .results import GcResult
from .walk import MAX_NODES, Loader, document_loader

DEFAULT_GRACE_SECONDS = 600.0


def reachable_from(roots: Iterable[Descriptor], load: Loader, *, max_nodes: int = MAX_NODES) -> set[Digest]:
    """Every digest the roots reach: indexes, manifests, configs, layers. Absent children are passed over."""
    reached: set[Digest] = set()
    stack = list(roots)
    while stack:
        desc = stack.pop()
        if desc.digest in reached:
            continue
        reached.add(desc.digest)
        if len(reached) > max_nodes * 8:
            raise MalformedDocument(f"the store's graph reaches more than {max_nodes * 8} digests; refusing to walk it")
        try:
            doc = load(desc)
        except NotFoundError:
            continue  # listed but not held: nothing below it to keep
        if isinstance(doc, Index):
            stack.extend(doc.children)
        else:
            reached.update(b.digest for b in doc.blobs)
    return reached


def _young_documents(store: Reader, young: list[tuple[Digest, int]]) -> list[Descriptor]:
    """The young blobs that are manifests or indexes (an unfinished write's roots)."""
    found = []
    for digest, size in young:
        if size > MAX_MANIFEST_BYTES:
            continue
        try:
            raw = store.fetch_manifest(Descriptor(mt.OCTET_STREAM, digest, size))
            doc = parse_document(raw, None, what=f"blob {digest}")
        except OcisiftError:
            continue  # not a document: a layer or a config
        found.append(Descriptor(doc.media_type, digest, size))
    return found


def collect_garbage(store: Reader, *, grace_seconds: float = DEFAULT_GRACE_SECONDS, dry_run: bool = False) -> GcResult:
    sweeper = require(store, BlobSweeper, "be garbage-collected")
    with sweeper.exclusive():
        load = document_loader(store)
        held = list(sweeper.inventory())
        young = [(digest, size) for digest, size, age in held if age < grace_seconds]
        reachable = reachable_from([*sweeper.roots(), *_young_documents(store, young)], load)
        removed: list[str] = []
        kept = 0
        for digest, _size, age in held:
            if digest in reachable or age < grace_seconds:
                kept += 1
                continue
            if dry_run or sweeper.remove_blob(digest, grace_seconds):
                removed.append(str(digest))
            else:
                kept += 1  # a writer reused it since the inventory
    return GcResult(tuple(removed), kept, dry_run)


def referencing_indexes(store: Reader, digest: Digest) -> list[str]:
    """Indexes the store still reaches that list `digest` (deleting it would break them). Empty where roots
    are not listed (a registry, which answers for itself)."""
    if not isinstance(store, RootLister):
        return []
    load = document_loader(store)
    parents: list[str] = []
    for root in store.roots():
        if root.digest == digest:
            continue
        stack, seen = [root], set()
        while stack:
            desc = stack.pop()
            if desc.digest in seen or desc.digest == digest:
                continue
            seen.add(desc.digest)
            try:
                doc = load(desc)
            except NotFoundError:
                continue
            if isinstance(doc, Index):
                if any(c.digest == digest for c in doc.manifests):
                    parents.append(str(desc.digest))
                stack.extend(doc.children)
            elif isinstance(doc, Manifest):
                continue
    return sorted(set(parents))
