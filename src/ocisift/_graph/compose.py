"""Composing image indexes from manifests and indexes that live in any stores.

This is what CI pipelines did with jq: per-platform layouts merged into one
multi-platform index. Each entry's content is copied into the destination
first, so the index written last never points at something missing.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

from .._core import mediatypes as mt
from .._core.builders import build_index
from .._core.digest import Digest
from .._core.errors import NotFoundError, UsageError
from .._core.models import Descriptor, Index, Manifest, parse_config_platform
from .._core.platform import Platform
from .._core.reference import Target
from .._stores.base import Pusher, Reader, load_document, read_small_blob, require
from .copy import GraphCopier
from .naming import record_name
from .resolve import resolve_in
from .results import CopyResult, Pushed


def platform_of(store: Reader, desc: Descriptor) -> Platform | None:
    """A manifest's platform: its descriptor's, else its image config's."""
    if desc.platform is not None:
        return desc.platform
    doc = load_document(store, desc)
    if isinstance(doc, Manifest):
        data = read_small_blob(store, doc.config) if doc.config.size > 2 else None
        return parse_config_platform(data, doc.config.media_type, f"config {doc.config.digest}") if data else None
    return None


def index_entry(store: Reader, desc: Descriptor, platform: Platform | None) -> Descriptor:
    """How `desc` is listed in a composed index: platform (given, or from its config) and artifactType."""
    doc = load_document(store, desc)
    artifact_type = desc.artifact_type or doc.effective_artifact_type
    if platform is None and isinstance(doc, Manifest):
        platform = platform_of(store, desc)
    return Descriptor(desc.media_type, desc.digest, desc.size, {}, platform, artifact_type)


def plan_entry(src: Reader, src_target: Target, platform: Platform | None,
               source_name: str | None = None) -> tuple[Descriptor, Descriptor]:
    """What SRC names and the entry that will list it, read before anything is written: a source whose
    config is malformed fails here, with nothing copied."""
    root = resolve_in(src, src_target, reference=source_name).root
    return root, index_entry(src, root, platform)


def bring_entry(src: Reader, src_target: Target, dst: Reader, platform: Platform | None,
                source_name: str | None = None) -> Descriptor:
    """Copy what SRC names into DST and return the entry that lists it."""
    root, entry = plan_entry(src, src_target, platform, source_name)
    GraphCopier(src, dst, CopyResult(source_name or src.location, dst.location)).copy(root)
    return entry


def write_index(dst: Reader, target: Target | None, entries: Sequence[Descriptor], *,
                annotations: Mapping[str, str] | None = None, artifact_type: str | None = None) -> Pushed:
    """Push an index of `entries` into DST; name it as `target` says (None: leave naming to the caller)."""
    unique: list[Descriptor] = []
    for entry in entries:
        if all(e.digest != entry.digest for e in unique):
            unique.append(entry)
    raw = build_index(unique, annotations=annotations, artifact_type=artifact_type)
    desc = Descriptor(mt.OCI_INDEX, Digest.of(raw), len(raw))
    require(dst, Pusher, "be written to").push(desc, io.BytesIO(raw))
    tags = record_name(dst, target, desc) if target is not None else []
    return Pushed(desc, dst.pinned(desc), tuple(tags))


def current_index(dst: Reader, target: Target, name: str | None = None) -> tuple[Descriptor, Index]:
    """The index a target names, for editing."""
    root = resolve_in(dst, target, reference=name).root
    doc = load_document(dst, root)
    if not isinstance(doc, Index):
        raise UsageError(f"{name or target} names a manifest, not an index")
    return root, doc


def without_entry(index: Index, digest: Digest, root: Descriptor) -> list[Descriptor]:
    kept = [e for e in index.manifests if e.digest != digest]
    if len(kept) == len(index.manifests):
        raise NotFoundError(f"{digest} is not in the index {root.digest}")
    return kept
