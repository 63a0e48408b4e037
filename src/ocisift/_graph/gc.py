"""Garbage collection: remove the blobs nothing reachable from a store's roots uses.

An algorithm over the BlobSweeper capability, so it runs the same over a
layout directory and the in-memory store. The roots are read and blobs
removed while the store's exclusive lock is held, which writers recording a
root also take; blobs younger than the grace period are kept, because a push
writes its blobs before the root that makes them reachable.
"""

from __future__ import annotations

from dataclasses import dataclass

from .._core.digest import Digest
from .._core.models import Manifest
from .._stores.base import BlobSweeper, Reader, require
from .walk import document_loader, walk

DEFAULT_GRACE_SECONDS = 600.0


@dataclass(frozen=True, slots=True)
class GcResult:
    removed: tuple[str, ...]
    kept: int
    dry_run: bool

    def to_json(self) -> dict[str, object]:
        return {"removed": list(self.removed), "kept": self.kept, "dryRun": self.dry_run}


def collect_garbage(store: Reader, *, grace_seconds: float = DEFAULT_GRACE_SECONDS, dry_run: bool = False) -> GcResult:
    sweeper = require(store, BlobSweeper, "be garbage-collected")
    with sweeper.exclusive():
        load = document_loader(store)
        reachable: set[Digest] = set()
        for root in sweeper.roots():
            for desc, doc, _ in walk(root, load):
                reachable.add(desc.digest)
                if isinstance(doc, Manifest):
                    reachable.update(b.digest for b in doc.blobs)
        removed: list[str] = []
        kept = 0
        for digest, age in sweeper.inventory():
            if digest in reachable or age < grace_seconds:
                kept += 1
                continue
            removed.append(str(digest))
            if not dry_run:
                sweeper.remove_blob(digest)
    return GcResult(tuple(removed), kept, dry_run)
