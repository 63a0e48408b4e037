"""Referrers: what is attached to a manifest or index through its `subject`, the same for every store.

`discover` lists them as `oras discover` shows them: the subject's referrers,
and with `recursive` the referrers of those (a signature on an SBOM). Copy
carries them with `graph_manifests` and `record_referrer`. A referrer list
comes from outside (a registry's answer, a fallback index anyone can push),
so it may name the subject itself or loop back: every walk keeps the digests
it has seen and a node budget.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .._core.digest import Digest
from .._core.errors import MalformedDocument
from .._core.matching import glob_match
from .._core.models import Descriptor, Index, Manifest, parse_document, referrer_descriptor
from .._stores.base import Reader, ReferrerLister, RootRecorder, require
from .walk import MAX_DEPTH, MAX_NODES, Loader, walk


@dataclass
class ReferrerNode:
    """A subject, or a referrer of one, with what refers to it in turn."""

    descriptor: Descriptor
    reference: str  # the pinned reference, `host/repo@sha256:…` or `oci:DIR@sha256:…`
    referrers: list[ReferrerNode] = field(default_factory=list)

    def count(self) -> int:
        return sum(1 + r.count() for r in self.referrers)

    def to_json(self) -> dict[str, Any]:
        """oras discover's JSON: the node's descriptor and reference, its referrers under `manifests`."""
        return {"reference": self.reference, **self.descriptor.to_json(),
                "manifests": [r.to_json() for r in self.referrers]}


def discover(store: Reader, subject: Descriptor, *, artifact_type: str | None = None, recursive: bool = False,
             max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES) -> ReferrerNode:
    """The referrers of `subject` (of any artifact type matching the glob `artifact_type` at every level)."""
    lister = require(store, ReferrerLister, "list referrers")
    budget = [max_nodes]
    expanded: set[Digest] = set()  # each digest's referrers are listed once, however many paths reach it

    def node(desc: Descriptor, depth: int) -> ReferrerNode:
        out = ReferrerNode(desc, store.pinned(desc))
        if depth > max_depth:
            raise MalformedDocument(f"referrers nested deeper than {max_depth} levels at {desc.digest}")
        expanded.add(desc.digest)
        for ref in lister.referrers(desc):
            if ref.digest == desc.digest:
                continue  # a list that names its own subject
            if artifact_type is not None and not glob_match(artifact_type, ref.artifact_type):
                continue
            budget[0] -= 1
            if budget[0] < 0:
                raise MalformedDocument(f"more than {max_nodes} referrers under {subject.digest}; refusing to list them")
            # met before (an ancestor, or a referrer shared by two subjects): shown again, not walked again
            again = ref.digest in expanded
            child = node(ref, depth + 1) if recursive and not again else ReferrerNode(ref, store.pinned(ref))
            out.referrers.append(child)
        return out

    return node(subject, 0)


def graph_manifests(root: Descriptor, load: Loader, *, max_depth: int = MAX_DEPTH) -> Iterator[Descriptor]:
    """Every manifest and index of a graph, the root first: the subjects whose referrers a copy carries."""
    for desc, _doc, _path in walk(root, load, max_depth=max_depth, on_absent=lambda d, p: None):
        yield desc


def index_entries(raw: bytes | None, subject: Descriptor) -> list[Descriptor]:
    """The referrers a referrer index lists (none for None), leaving out one that names the subject itself."""
    if raw is None:
        return []
    doc = parse_document(raw, None, what=f"the index of the referrers of {subject.digest}")
    if not isinstance(doc, Index):
        raise MalformedDocument(f"the index of the referrers of {subject.digest} is not an image index")
    return [d for d in doc.manifests if d.digest != subject.digest]


def record_referrer(store: Reader, desc: Descriptor, doc: Manifest | Index) -> None:
    """Make a copied referrer findable where it landed.

    A registry indexes a manifest with a subject when it is pushed (its
    referrers API, else ocisift's push maintains the fallback tag); a store
    that lists its roots (a layout, an archive) finds referrers among its
    index.json entries, so the referrer becomes one, as `oras push --subject`
    and `oras copy -r` leave it in a layout.
    """
    if isinstance(store, RootRecorder):
        store.add_root(referrer_descriptor(desc, doc))
