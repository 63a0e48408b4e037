"""copy: a whole graph, or chosen platforms, between any two stores.

Written once against the Store protocol: children before parents, so a
destination never holds a manifest whose blobs are missing; blobs the
destination has are skipped; several blobs move at once.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

from . import mediatypes as mt
from .digest import CHUNK, Digest
from .models import Descriptor, Manifest
from .progress import NoProgress, Progress
from .pusher import build_index, record_name
from .reference import Reference
from .resolver import resolve_in
from .select import Selector
from .stores.base import Store, load_document
from .streams import ReadAhead


@dataclass
class CopyResult:
    source: str
    destination: str
    root: Descriptor | None = None
    copied: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    mounted: list[str] = field(default_factory=list)
    progress: Progress = field(default_factory=NoProgress, repr=False)

    def to_json(self) -> dict[str, Any]:
        assert self.root is not None
        return {"source": self.source, "destination": self.destination, "digest": str(self.root.digest),
                "mediaType": self.root.media_type, "size": self.root.size,
                "copied": self.copied, "skipped": self.skipped, "mounted": self.mounted}


def _copy_blob(src: Store, dst: Store, desc: Descriptor, result: CopyResult, read_ahead: bool = False) -> None:
    if dst.exists(desc):
        result.skipped.append(str(desc.digest))
        return
    if dst.mount(desc, src):  # registries mount across repositories; layouts say no
        result.mounted.append(str(desc.digest))
        return
    with src.fetch(desc) as reader, (ReadAhead(reader) if read_ahead else nullcontext(reader)) as stream:
        reader.on_read = result.progress.begin(desc, "copy")
        dst.push(desc, stream)
    result.progress.end(desc)
    result.copied.append(str(desc.digest))


def copy_graph(src: Store, dst: Store, root: Descriptor, result: CopyResult, concurrency: int = 4,
               seen: set[str] | None = None) -> None:
    """Every blob and manifest under `root`, children first."""
    seen = seen if seen is not None else set()
    if str(root.digest) in seen:
        return
    seen.add(str(root.digest))
    doc = load_document(src, root)
    if isinstance(doc, Manifest):
        blobs = [b for b in (doc.config, *doc.layers) if not b.urls]
        # Blobs moving one at a time leave a core idle: a read-ahead thread receives and
        # verifies while the writer writes. Several at once already keep both busy.
        one_at_a_time = concurrency <= 1 or sum(b.size > CHUNK for b in blobs) <= 1
        with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
            for future in [pool.submit(_copy_blob, src, dst, b, result, one_at_a_time and b.size > CHUNK)
                           for b in blobs]:
                future.result()
    else:
        for child in doc.manifests:
            if mt.is_index(child.media_type) or mt.is_manifest(child.media_type):
                copy_graph(src, dst, child, result, concurrency, seen)
    _push_document(dst, root, doc.raw, result)


def _push_document(dst: Store, desc: Descriptor, raw: bytes, result: CopyResult) -> None:
    import io

    if dst.exists(desc):
        result.skipped.append(str(desc.digest))
        return
    dst.push(desc, io.BytesIO(raw))
    result.copied.append(str(desc.digest))


def _platform_index(src: Store, dst: Store, chosen: list[Descriptor], result: CopyResult, concurrency: int) -> Descriptor:
    """Several platforms chosen: a new index listing just them (a new digest, said in the summary)."""
    import io

    seen: set[str] = set()
    for d in chosen:
        copy_graph(src, dst, d, result, concurrency, seen)
    raw = build_index(chosen)
    desc = Descriptor(mt.OCI_INDEX, Digest.of(raw), len(raw))
    dst.push(desc, io.BytesIO(raw))
    result.copied.append(str(desc.digest))
    return desc


def copy_between(src: Store, src_ref: Reference, dst: Store, dst_ref: Reference, *,
                 platforms: tuple[str, ...] = (), concurrency: int = 4,
                 progress: Progress | None = None) -> CopyResult:
    result = CopyResult(str(src_ref), str(dst_ref), progress=progress or NoProgress())
    if platforms:
        chosen: list[Descriptor] = []
        for p in platforms:
            sel = resolve_in(src, src_ref, Selector.build(p), descend=True)
            assert sel.selected is not None
            d = sel.selected.descriptor
            if sel.selected.platform and not d.platform:
                d = Descriptor(d.media_type, d.digest, d.size, d.annotations, sel.selected.platform, d.artifact_type)
            if all(c.digest != d.digest for c in chosen):
                chosen.append(d)
        if len(chosen) == 1:
            root = chosen[0]
            copy_graph(src, dst, root, result, concurrency)
        else:
            root = _platform_index(src, dst, chosen, result, concurrency)
    else:
        root = resolve_in(src, src_ref).root
        copy_graph(src, dst, root, result, concurrency)
    result.root = root
    record_name(dst, dst_ref, root)
    result.destination = dst.pinned(root)
    return result
