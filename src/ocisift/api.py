"""The importable API; the CLI is a thin layer over these functions, with the same words."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import mediatypes as mt
from .copier import CopyResult
from .extract import ExtractLimits
from .layers import LayerSelector, Mode
from .models import Descriptor, Index, Manifest
from .platform import Platform
from .progress import Progress
from .puller import PullResult, pull_from
from .pusher import Pushed
from .reference import Reference, parse_reference
from .resolution import names_of
from .resolver import Resolved, config_platform_reader, find_roots, resolve_in
from .select import MAX_DEPTH, Selector, walk
from .stores import Store, open_store, opened
from .stores.base import load_document
from .transport import RegistryOptions

RefLike = Reference | str


def _ref(ref: RefLike) -> Reference:
    return parse_reference(ref) if isinstance(ref, str) else ref


def _selector(
    select: Selector | None,
    platform: str | Platform | Sequence[str | Platform] | None,
    artifact_type: str | None,
    media_type: str | None,
    annotations: Sequence[str] | dict[str, str] | None,
    first: bool,
    referrers: bool = False,
) -> Selector:
    if select is not None:
        return select
    return Selector.build(platform, artifact_type, media_type, annotations, referrers, first)


def resolve(
    ref: RefLike,
    *,
    platform: str | Platform | Sequence[str | Platform] | None = None,
    artifact_type: str | None = None,
    media_type: str | None = None,
    annotations: Sequence[str] | dict[str, str] | None = None,
    first: bool = False,
    referrers: bool = False,
    select: Selector | None = None,
    registry: RegistryOptions | None = None,
) -> Resolved:
    """What a reference names; with any selector, the one manifest selected under it."""
    reference = _ref(ref)
    with opened(reference, options=registry) as store:
        sel = _selector(select, platform, artifact_type, media_type, annotations, first, referrers)
        return resolve_in(store, reference, sel)


def manifest(ref: RefLike, *, select: Selector | None = None, registry: RegistryOptions | None = None,
             **selectors: Any) -> bytes:
    """The exact bytes of the manifest or index the reference (and selectors) name."""
    reference = _ref(ref)
    with opened(reference, options=registry) as store:
        resolved = resolve_in(store, reference, select or Selector.build(**selectors))
        return store.fetch_manifest(resolved.descriptor)


def tags(ref: RefLike, *, registry: RegistryOptions | None = None) -> list[str]:
    reference = _ref(ref)
    with opened(reference, options=registry) as store:
        return store.tags()


def pull(
    ref: RefLike,
    dest: str,
    *,
    select: Selector | None = None,
    layers: LayerSelector | None = None,
    mode: Mode = "copy",
    name: str | None = None,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    overwrite: bool = False,
    dry_run: bool = False,
    limits: ExtractLimits | None = None,
    platform: str | Platform | None = None,
    artifact_type: str | None = None,
    annotations: Sequence[str] | dict[str, str] | None = None,
    first: bool = False,
    registry: RegistryOptions | None = None,
    progress: Progress | None = None,
) -> PullResult:
    """Select one manifest, then write or unpack the chosen layers into `dest`, all or nothing."""
    reference = _ref(ref)
    with opened(reference, options=registry) as store:
        sel = _selector(select, platform, artifact_type, None, annotations, first)
        return pull_from(
            store, reference, dest, selector=sel, layers=layers, mode=mode, name=name,
            include=tuple(include), exclude=tuple(exclude), overwrite=overwrite, dry_run=dry_run, limits=limits,
            progress=progress,
        )


@dataclass
class TreeNode:
    descriptor: Descriptor
    kind: str
    platform: Platform | None = None
    artifact_type: str | None = None
    names: list[str] = field(default_factory=list)
    children: list[TreeNode] = field(default_factory=list)
    layers: list[Descriptor] = field(default_factory=list)
    referrers: list[TreeNode] = field(default_factory=list)

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
        if self.children:
            out["manifests"] = [c.to_json() for c in self.children]
        if self.layers:
            out["layers"] = [layer.to_json() for layer in self.layers]
        if self.referrers:
            out["referrers"] = [r.to_json() for r in self.referrers]
        return out


def tree(ref: RefLike, *, referrers: bool = False, max_depth: int = MAX_DEPTH,
         registry: RegistryOptions | None = None) -> list[TreeNode]:
    """The whole graph under what the reference names (every root of a tagless layout)."""
    reference = _ref(ref)
    with opened(reference, options=registry) as store:
        return tree_in(store, reference, referrers=referrers, max_depth=max_depth)


def tree_in(store: Store, reference: Reference, *, referrers: bool = False, max_depth: int = MAX_DEPTH) -> list[TreeNode]:
    if reference.tagless:
        roots = store.roots()
    else:
        roots = find_roots(store, reference)
    config_platform = config_platform_reader(store)
    out = []
    for root in roots:
        nodes: dict[str, TreeNode] = {}
        top: TreeNode | None = None
        for desc, doc, path in walk(root, lambda d: load_document(store, d), max_depth=max_depth):
            node = TreeNode(desc, "index" if isinstance(doc, Index) else "manifest", desc.platform, desc.artifact_type)
            node.names = names_of(desc)
            if isinstance(doc, Manifest):
                node.artifact_type = node.artifact_type or doc.effective_artifact_type
                node.layers = list(doc.layers)
                if node.platform is None:
                    node.platform = config_platform(doc)
                if referrers:
                    for r in store.referrers(desc):
                        node.referrers.append(TreeNode(r, "referrer", None, r.artifact_type))
            elif isinstance(doc, Index) and mt.is_index(desc.media_type):
                node.artifact_type = node.artifact_type or doc.artifact_type
            key = "/".join(str(p.digest) for p in (*path, desc))
            nodes[key] = node
            if path:
                parent = nodes["/".join(str(p.digest) for p in path)]
                parent.children.append(node)
            else:
                top = node
        assert top is not None
        out.append(top)
    return out


def copy(src: RefLike, dst: RefLike, *, platform: str | Sequence[str] | None = None,
         concurrency: int = 4, registry: RegistryOptions | None = None,
         progress: Progress | None = None) -> CopyResult:
    """The whole graph (or the chosen platforms) from one store to another; existing blobs are skipped."""
    from .copier import copy_between

    src_ref, dst_ref = _ref(src), _ref(dst)
    platforms = (platform,) if isinstance(platform, str) else tuple(platform or ())
    with opened(src_ref, options=registry) as source, opened(dst_ref, create=True, options=registry) as destination:
        result = copy_between(source, src_ref, destination, dst_ref, platforms=platforms,
                              concurrency=concurrency, progress=progress)
        destination.finish()  # an archive is packed only after success
        return result


def open(ref: RefLike, *, registry: RegistryOptions | None = None) -> Store:
    """A store object opened from a reference (layout directory or archive)."""
    return open_store(_ref(ref), options=registry)


def _parse_annotations(items: Sequence[str] | Mapping[str, str] | None) -> dict[str, str]:
    from .errors import UsageError

    if items is None:
        return {}
    if isinstance(items, Mapping):
        return dict(items)
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key or not sep:
            raise UsageError(f"invalid annotation {item!r}: expected KEY=VALUE")
        out[key] = value
    return out


def push(
    ref: RefLike,
    files: Sequence[str],
    *,
    artifact_type: str | None = None,
    annotations: Sequence[str] | Mapping[str, str] | None = None,
    annotation_file: str | None = None,
    config: str | None = None,
    platform: str | Platform | None = None,
    subject: RefLike | None = None,
    tags: Sequence[str] = (),
    registry: RegistryOptions | None = None,
) -> Pushed:
    """Push files and directories as an ORAS-compatible artifact to a registry, layout or archive."""
    import json as _json

    from .errors import UsageError
    from .pusher import push_artifact

    reference = _ref(ref)
    per_file: dict[str, dict[str, str]] = {}
    if annotation_file is not None:
        try:
            with builtins.open(annotation_file, "rb") as fh:  # this module's open() opens stores
                loaded = _json.load(fh)
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read annotation file {annotation_file}: {exc}") from None
        if not isinstance(loaded, dict) or not all(isinstance(v, dict) for v in loaded.values()):
            raise UsageError(f"{annotation_file}: expected an object of objects ($manifest, $config, file names)")
        per_file = {k: {str(a): str(b) for a, b in v.items()} for k, v in loaded.items()}
    subject_desc = None
    if subject is not None:
        subject_desc = resolve(subject, registry=registry).descriptor
    plat = Platform.parse(platform) if isinstance(platform, str) else platform
    with opened(reference, create=True, options=registry) as store:
        result = push_artifact(store, reference, files, artifact_type=artifact_type,
                               annotations=_parse_annotations(annotations), file_annotations=per_file,
                               config=config, platform=plat, subject=subject_desc, tags=tags)
        store.finish()
        return result


def index_create(
    dst: RefLike,
    sources: Sequence[RefLike],
    *,
    annotations: Sequence[str] | Mapping[str, str] | None = None,
    platform_of: Mapping[str, str] | None = None,
    artifact_type: str | None = None,
    registry: RegistryOptions | None = None,
) -> Pushed:
    """Compose an image index from manifests or indexes in any stores, copying their content into DST."""
    from .copier import CopyResult, copy_graph
    from .digest import Digest as _Digest
    from .pusher import Pushed, build_index, index_entry, record_name

    dst_ref = _ref(dst)
    platform_of = dict(platform_of or {})
    entries: list[Descriptor] = []
    with opened(dst_ref, create=True, options=registry) as destination:
        for src in sources:
            src_ref = _ref(src)
            with opened(src_ref, options=registry) as source:
                root = resolve_in(source, src_ref).root
                copy_graph(source, destination, root, CopyResult(str(src_ref), str(dst_ref)))
                given = platform_of.pop(str(src), None)
                entry = index_entry(source, root, Platform.parse(given) if given else None)
                if all(e.digest != entry.digest for e in entries):
                    entries.append(entry)
        if platform_of:
            from .errors import UsageError

            raise UsageError(f"--platform-of names sources that were not given: {', '.join(platform_of)}")
        raw = build_index(entries, annotations=_parse_annotations(annotations), artifact_type=artifact_type)
        desc = Descriptor(mt.OCI_INDEX, _Digest.of(raw), len(raw))
        import io as _io

        destination.push(desc, _io.BytesIO(raw))
        tags = record_name(destination, dst_ref, desc)
        destination.finish()
        return Pushed(desc, destination.pinned(desc), tuple(tags))


def index_edit(
    dst: RefLike,
    *,
    add: RefLike | None = None,
    remove: str | None = None,
    platform: str | None = None,
    registry: RegistryOptions | None = None,
) -> Pushed:
    """Add a manifest to, or remove a digest from, the index DST names; DST's name moves to the new index."""
    from .copier import CopyResult, copy_graph
    from .digest import Digest as _Digest
    from .errors import NotFoundError, UsageError
    from .pusher import Pushed, build_index, index_entry, record_name

    dst_ref = _ref(dst)
    with opened(dst_ref, options=registry) as destination:
        current = resolve_in(destination, dst_ref).root
        doc = load_document(destination, current)
        if not isinstance(doc, Index):
            raise UsageError(f"{dst} names a manifest, not an index")
        entries = list(doc.manifests)
        if add is not None:
            src_ref = _ref(add)
            with opened(src_ref, options=registry) as source:
                root = resolve_in(source, src_ref).root
                copy_graph(source, destination, root, CopyResult(str(src_ref), str(dst_ref)))
                entries.append(index_entry(source, root, Platform.parse(platform) if platform else None))
        if remove is not None:
            gone = _Digest.parse(remove)
            kept = [e for e in entries if e.digest != gone]
            if len(kept) == len(entries):
                raise NotFoundError(f"{remove} is not in the index {current.digest}")
            entries = kept
        raw = build_index(entries, annotations=dict(doc.annotations), artifact_type=doc.artifact_type)
        desc = Descriptor(mt.OCI_INDEX, _Digest.of(raw), len(raw))
        import io as _io

        destination.push(desc, _io.BytesIO(raw))
        # The name moves to the new index; an unnamed or pinned reference leaves naming to the caller.
        tags = record_name(destination, dst_ref, desc) if dst_ref.named_tag else []
        return Pushed(desc, destination.pinned(desc), tuple(tags))


def tag(src: RefLike, tags: Sequence[str], *, registry: RegistryOptions | None = None) -> list[str]:
    """Give what SRC names more tags in the same store."""
    from .pusher import check_tags

    check_tags(tags)
    reference = _ref(src)
    with opened(reference, options=registry) as store:
        root = resolve_in(store, reference).root
        for name in tags:
            store.tag(root, name)
    return list(tags)
