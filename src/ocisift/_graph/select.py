"""From a root to one manifest: walk indexes, keep the leaves every selector accepts.

Pure over a `load` callable and plain descriptors, so it is the same for
every store and can be tested over plain dictionaries.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._core import mediatypes as mt
from .._core.bounds import MAX_DEPTH as MAX_DEPTH_BOUND
from .._core.digest import Digest
from .._core.errors import AmbiguousError, NotFoundError
from .._core.matching import annotations_match, glob_match, parse_annotation_filters
from .._core.models import Descriptor, Manifest
from .._core.platform import Platform, platform_matches
from .walk import MAX_DEPTH, Loader, walk_lazily


@dataclass(frozen=True, slots=True)
class Selector:
    """What the user asked for; empty means 'whatever the reference names'."""

    platforms: tuple[Platform, ...] = ()
    artifact_type: str | None = None
    media_type: str | None = None
    annotations: tuple[tuple[str, str | None], ...] = ()
    referrers: bool = False
    first: bool = False
    max_depth: int = MAX_DEPTH

    def __post_init__(self) -> None:
        MAX_DEPTH_BOUND.check(self.max_depth)

    @property
    def active(self) -> bool:
        return bool(self.platforms or self.artifact_type or self.media_type or self.annotations or self.referrers)

    @classmethod
    def build(
        cls,
        platform: str | Platform | Sequence[str | Platform] | None = None,
        artifact_type: str | None = None,
        media_type: str | None = None,
        annotations: Sequence[str] | dict[str, str] | None = None,
        referrers: bool = False,
        first: bool = False,
        max_depth: int = MAX_DEPTH,
    ) -> Selector:
        if platform is None:
            plats: tuple[Platform, ...] = ()
        elif isinstance(platform, (str, Platform)):
            plats = (platform if isinstance(platform, Platform) else Platform.parse(platform),)
        else:
            plats = tuple(p if isinstance(p, Platform) else Platform.parse(p) for p in platform)
        ann: tuple[tuple[str, str | None], ...]
        if isinstance(annotations, dict):
            ann = tuple(annotations.items())
        else:
            ann = parse_annotation_filters(annotations or ())
        return cls(plats, artifact_type, media_type, ann, referrers, first, max_depth)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A leaf manifest reached from a root, with what was learnt on the way."""

    descriptor: Descriptor
    manifest: Manifest
    platform: Platform | None
    path: tuple[Descriptor, ...] = field(default=())
    referrer_of: Descriptor | None = None

    @property
    def artifact_type(self) -> str | None:
        return self.descriptor.artifact_type or self.manifest.effective_artifact_type

    @property
    def annotations(self) -> dict[str, str]:
        merged = dict(self.manifest.annotations)
        merged.update(self.descriptor.annotations)
        return merged


ConfigPlatform = Callable[[Manifest], "Platform | None"]
Referrers = Callable[[Descriptor], list[Descriptor]]


@dataclass(frozen=True, slots=True)
class Leaf:
    """A leaf manifest's index entry and where it was reached; read only when its entry cannot decide."""

    descriptor: Descriptor
    path: tuple[Descriptor, ...]
    manifest: Manifest | None  # read already (a root, or an entry whose media type did not say manifest)


def leaf_entries(roots: Sequence[Descriptor], load: Loader, *, max_depth: int = MAX_DEPTH,
                 absent: list[Descriptor] | None = None) -> list[Leaf]:
    """The leaf manifests under the roots, in graph order, mostly unread."""
    out = []
    on_absent = (lambda desc, path: absent.append(desc)) if absent is not None else None
    for root in roots:
        for desc, doc, path in walk_lazily(root, load, max_depth=max_depth, on_absent=on_absent):
            if doc is None or isinstance(doc, Manifest):
                out.append(Leaf(desc, path, doc))
    return out


def read_leaf(leaf: Leaf, load: Loader, absent: list[Descriptor] | None) -> Candidate | None:
    """The leaf as a candidate, its manifest read; None when the store does not hold it (then `absent`)."""
    manifest = leaf.manifest
    if manifest is None:
        try:
            doc = load(leaf.descriptor)
        except NotFoundError:
            if absent is None or not leaf.path:
                raise
            absent.append(leaf.descriptor)
            return None
        if not isinstance(doc, Manifest):  # an entry that says manifest over an index's bytes: not a leaf
            return None
        manifest = doc
    return Candidate(leaf.descriptor, manifest, leaf.descriptor.platform, leaf.path)


def leaves(
    roots: Sequence[Descriptor],
    load: Loader,
    *,
    max_depth: int = MAX_DEPTH,
    absent: list[Descriptor] | None = None,
) -> list[Candidate]:
    """The leaf manifests under the roots, every one read; children the store does not hold go to `absent`."""
    read = (read_leaf(leaf, load, absent) for leaf in leaf_entries(roots, load, max_depth=max_depth, absent=absent))
    return [c for c in read if c is not None]


def ruled_out_by_entry(desc: Descriptor, selector: Selector) -> bool:
    """Does the index entry alone rule the manifest out? Only what the entry says for sure counts: a
    platform or artifactType on the entry is the candidate's (the manifest's own is asked only when the
    entry has none), and a media type is the entry's."""
    if not glob_match(selector.media_type, desc.media_type):
        return True
    if selector.artifact_type is not None and desc.artifact_type is not None \
            and not glob_match(selector.artifact_type, desc.artifact_type):
        return True
    return bool(selector.platforms) and desc.platform is not None \
        and not any(platform_matches(w, desc.platform) for w in selector.platforms)


def absent_matches(desc: Descriptor, selector: Selector) -> bool:
    """Would an absent manifest have matched? Judged on what its index entry says, as nothing more is there."""
    if not glob_match(selector.media_type, desc.media_type):
        return False
    if selector.artifact_type is not None and not glob_match(selector.artifact_type, desc.artifact_type):
        return False
    if selector.annotations and not annotations_match(selector.annotations, desc.annotations):
        return False
    if selector.platforms:
        return desc.platform is not None and any(platform_matches(w, desc.platform) for w in selector.platforms)
    return True


def candidate_matches(c: Candidate, selector: Selector, config_platform: ConfigPlatform | None) -> bool:
    if not glob_match(selector.media_type, c.descriptor.media_type):
        return False
    if selector.artifact_type is not None and not glob_match(selector.artifact_type, c.artifact_type):
        return False
    if selector.annotations and not annotations_match(selector.annotations, c.annotations):
        return False
    if selector.platforms:
        platform = c.platform
        if platform is None and config_platform is not None:
            platform = config_platform(c.manifest)
        if platform is None or not any(platform_matches(w, platform) for w in selector.platforms):
            return False
    return True


def with_config_platforms(cands: Sequence[Candidate], config_platform: ConfigPlatform | None) -> list[Candidate]:
    if config_platform is None:
        return list(cands)
    out = []
    for c in cands:
        if c.platform is None and c.referrer_of is None:
            c = Candidate(c.descriptor, c.manifest, config_platform(c.manifest), c.path, c.referrer_of)
        out.append(c)
    return out


def select(
    roots: Sequence[Descriptor],
    load: Loader,
    selector: Selector,
    *,
    config_platform: ConfigPlatform | None = None,
    referrers: Referrers | None = None,
    describe: Callable[[Candidate], dict[str, Any]] | None = None,
    max_depth: int | None = None,
) -> Candidate:
    """Exactly one leaf, or NotFound (exit 3) / Ambiguous (exit 4) listing what is there.

    Manifests an index lists but the store does not hold are no candidates
    (nothing of them could be pulled); when only such a manifest would have
    matched, the not-found says it is absent rather than that nothing matched.
    """
    absent: list[Descriptor] = []
    entries = leaf_entries(roots, load, max_depth=max_depth if max_depth is not None else selector.max_depth,
                           absent=absent)
    # Read only the manifests the index entries cannot rule out: selecting one platform of many
    # costs one manifest read, not one per platform. The others are read only to list them when
    # nothing or several match.
    pool: list[Candidate] = []
    passed_over = False
    for leaf in entries:
        if selector.active and not selector.referrers and ruled_out_by_entry(leaf.descriptor, selector):
            passed_over = True
            continue
        candidate = read_leaf(leaf, load, absent)
        if candidate is not None:
            pool.append(candidate)
    if selector.referrers and referrers is not None:
        # Artifacts may hang off a leaf manifest (they inherit its platform) or off a root index.
        subjects = [(leaf.descriptor, leaf.descriptor.platform, leaf.path) for leaf in entries]
        subjects += [(r, None, ()) for r in roots if mt.is_index(r.media_type)]
        for subject, platform, path in subjects:
            for ref_desc in referrers(subject):
                doc = load(ref_desc)
                if isinstance(doc, Manifest):
                    pool.append(Candidate(ref_desc, doc, platform, (*path, subject), subject))
    matched = [c for c in pool if candidate_matches(c, selector, config_platform)]
    if selector.referrers:
        matched = [c for c in matched if c.referrer_of is not None] or matched
    unique: list[Candidate] = []
    seen: set[Digest] = set()
    for c in matched:
        if c.descriptor.digest not in seen:  # a set: 30,000 candidates must not cost 30,000 squared
            seen.add(c.descriptor.digest)
            unique.append(c)
    describe = describe or describe_candidate
    if len(unique) == 1 or (unique and selector.first):
        return unique[0]
    if not unique:
        if passed_over:  # list the whole graph, in its order: read what the entries ruled out too
            referred = [c for c in pool if c.referrer_of is not None]
            known_absent = {d.digest for d in absent}
            everything = []
            for leaf in entries:
                if leaf.descriptor.digest not in known_absent:
                    candidate = read_leaf(leaf, load, absent)
                    if candidate is not None:
                        everything.append(candidate)
            pool = everything + referred
        listing = [describe(c) for c in with_config_platforms(pool, config_platform)]
        wanted = [d for d in absent if absent_matches(d, selector)] if selector.active else []
        if wanted:
            names = ", ".join(f"{d.digest}" + (f" ({d.platform})" if d.platform else "") for d in wanted)
            raise NotFoundError(
                f"the manifest that matches, {names}, is listed by its index but absent from this store "
                "(an export of some platforms keeps the index of all); what is here:\n"
                + (format_candidates(listing) or "  no image manifest"),
                candidates=listing,
            )
        raise NotFoundError(
            "no manifest matches the selectors; the graph holds:\n" + format_candidates(listing)
            if listing else "no manifest matches: the graph holds no image manifest",
            candidates=listing,
        )
    listing = [describe(c) for c in with_config_platforms(unique, config_platform)]
    raise AmbiguousError(
        f"{len(unique)} manifests match; pin one by digest or narrow with --platform, --artifact-type, "
        "--annotation (or accept the first with --first):\n" + format_candidates(listing),
        candidates=listing,
    )


def describe_candidate(c: Candidate) -> dict[str, Any]:
    out: dict[str, Any] = {
        "digest": str(c.descriptor.digest),
        "mediaType": c.descriptor.media_type,
        "platform": str(c.platform) if c.platform else None,
        "artifactType": c.artifact_type,
        "annotations": c.annotations,
    }
    if c.referrer_of is not None:
        out["subject"] = str(c.referrer_of.digest)
    return out


def format_candidates(listing: Sequence[dict[str, Any]]) -> str:
    lines = []
    for item in listing:
        bits = [item.get("reference") or item["digest"]]
        if item.get("platform"):
            bits.append(f"platform={item['platform']}")
        if item.get("artifactType"):
            bits.append(f"artifactType={item['artifactType']}")
        if item.get("names"):
            bits.append("names=" + ",".join(item["names"]))
        ann = {k: v for k, v in (item.get("annotations") or {}).items() if k != mt.ANNOTATION_REF_NAME}
        if ann:
            bits.append("annotations=" + ",".join(f"{k}={v}" for k, v in sorted(ann.items())))
        lines.append("  " + "  ".join(bits))
    return "\n".join(lines)
