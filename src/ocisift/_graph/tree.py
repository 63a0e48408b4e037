"""The whole graph under a reference, as data: nested indexes, platforms, artifact types, layers, referrers.

Drawing it is the command line's business; this builds what it draws.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._core import mediatypes as mt
from .._core.models import Descriptor, Index, Manifest
from .._core.names import names_of
from .._core.platform import Platform
from .._core.reference import Target
from .._stores.base import Reader, ReferrerLister, RootLister, require
from .resolve import config_platform_reader, find_roots
from .walk import MAX_DEPTH, document_loader, walk


@dataclass
class TreeNode:
    """One manifest or index of the graph. `descriptor.annotations` are those it is listed with (its
    index's entry, index.json's); `own_annotations` are the document's own `annotations`."""

    descriptor: Descriptor
    kind: str
    platform: Platform | None = None
    artifact_type: str | None = None
    names: list[str] = field(default_factory=list)
    children: list[TreeNode] = field(default_factory=list)
    layers: list[Descriptor] = field(default_factory=list)
    referrers: list[TreeNode] = field(default_factory=list)
    own_annotations: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "digest": str(self.descriptor.digest),
            "mediaType": self.descriptor.media_type,
            "size": self.descriptor.size,
        }
        if self.names:
            out["names"] = self.names
        if self.platform:
            out["platform"] = str(self.platform)
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        if self.descriptor.annotations:
            out["annotations"] = dict(self.descriptor.annotations)
        if self.own_annotations:
            out["ownAnnotations"] = dict(self.own_annotations)
        if self.children:
            out["manifests"] = [c.to_json() for c in self.children]
        if self.layers:
            out["layers"] = [layer.to_json() for layer in self.layers]
        if self.referrers:
            out["referrers"] = [r.to_json() for r in self.referrers]
        return out


def build_tree(store: Reader, target: Target, *, referrers: bool = False, max_depth: int = MAX_DEPTH,
               hint: str = "") -> list[TreeNode]:
    """One tree per root the target names (every root of a tagless layout)."""
    if target.tagless:
        roots = require(store, RootLister, "list its entries").roots()
    else:
        roots = find_roots(store, target, hint)
    lister = require(store, ReferrerLister, "list referrers") if referrers else None
    config_platform = config_platform_reader(store)
    load = document_loader(store)
    out = []
    nodes: dict[tuple[str, ...], TreeNode] = {}

    def absent(desc: Descriptor, path: tuple[Descriptor, ...]) -> None:
        """Listed by its index, not held by the store (an export of one platform): shown, marked."""
        node = TreeNode(desc, "absent", desc.platform, desc.artifact_type, names_of(desc))
        nodes[tuple(str(p.digest) for p in path)].children.append(node)

    for root in roots:
        nodes.clear()
        top: TreeNode | None = None
        for desc, doc, path in walk(root, load, max_depth=max_depth, on_absent=absent):
            node = TreeNode(desc, "index" if isinstance(doc, Index) else "manifest", desc.platform, desc.artifact_type)
            node.names = names_of(desc)
            node.own_annotations = doc.annotations
            if isinstance(doc, Manifest):
                node.artifact_type = node.artifact_type or doc.effective_artifact_type
                node.layers = list(doc.layers)
                if node.platform is None:
                    node.platform = config_platform(doc)
                if lister is not None:
                    node.referrers = [TreeNode(r, "referrer", None, r.artifact_type) for r in lister.referrers(desc)]
            elif mt.is_index(desc.media_type):
                node.artifact_type = node.artifact_type or doc.artifact_type
                if lister is not None:  # an index can be a subject too (an SBOM of a multi-platform image)
                    node.referrers = [TreeNode(r, "referrer", None, r.artifact_type) for r in lister.referrers(desc)]
            key = tuple(str(p.digest) for p in (*path, desc))
            nodes[key] = node
            if path:
                nodes[key[:-1]].children.append(node)
            else:
                top = node
        if top is not None:
            out.append(top)
    return out
