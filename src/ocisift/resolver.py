"""From a reference to a root, and from a root to the selected manifest, for any store."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import AmbiguousError, NotFoundError
from .models import Descriptor, Manifest, parse_config_platform
from .platform import Platform
from .reference import Reference
from .resolution import names_of
from .select import Candidate, Selector, describe_candidate, format_candidates, select
from .stores.base import Store, load_document, read_small_blob


@dataclass(frozen=True, slots=True)
class Resolved:
    """What a reference names: its root and, when selectors were given, the selected manifest."""

    reference: Reference
    root: Descriptor
    selected: Candidate | None
    pinned: str

    @property
    def descriptor(self) -> Descriptor:
        return self.selected.descriptor if self.selected else self.root

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "reference": str(self.reference),
            "digest": str(self.descriptor.digest),
            "mediaType": self.descriptor.media_type,
            "size": self.descriptor.size,
            "pinned": self.pinned,
            "root": str(self.root.digest),
        }
        if self.selected is not None:
            out["platform"] = str(self.selected.platform) if self.selected.platform else None
            out["artifactType"] = self.selected.artifact_type
        return out


def config_platform_reader(store: Store) -> Callable[[Manifest], Platform | None]:
    cache: dict[str, Platform | None] = {}

    def read(manifest: Manifest) -> Platform | None:
        key = str(manifest.config.digest)
        if key not in cache:
            data = read_small_blob(store, manifest.config) if manifest.config.size > 2 else None
            cache[key] = parse_config_platform(data) if data else None
        return cache[key]

    return read


def describer(store: Store) -> Callable[[Candidate], dict[str, Any]]:
    def describe(c: Candidate) -> dict[str, Any]:
        out = describe_candidate(c)
        out["reference"] = store.pinned(c.descriptor)
        return out

    return describe


def _root_listing(store: Store, roots: list[Descriptor]) -> list[dict[str, Any]]:
    listing = []
    for r in roots:
        listing.append({
            "digest": str(r.digest),
            "reference": store.pinned(r),
            "mediaType": r.media_type,
            "platform": str(r.platform) if r.platform else None,
            "artifactType": r.artifact_type,
            "annotations": dict(r.annotations),
            "names": names_of(r),
        })
    return listing


def find_roots(store: Store, ref: Reference) -> list[Descriptor]:
    roots = store.resolve(ref)
    if not roots:
        available = _root_listing(store, store.roots())
        raise NotFoundError(
            f"{ref.looking_for} not found in {store.location}; it holds:\n"
            + (format_candidates(available) or "  nothing") + ref.not_found_hint,
            candidates=available,
        )
    return roots


def resolve_in(store: Store, ref: Reference, selector: Selector | None = None, *, descend: bool = False) -> Resolved:
    """Rules 1-5, then selection. `descend` forces selection down to one manifest (pull)."""
    selector = selector or Selector()
    roots = find_roots(store, ref)
    tagless = ref.tagless
    if len(roots) > 1 and not tagless and not selector.first:
        listing = _root_listing(store, roots)
        raise AmbiguousError(
            f"{ref} names {len(roots)} different digests; pin one:\n" + format_candidates(listing),
            candidates=listing,
        )
    if len(roots) > 1 and not selector.active and not selector.first:
        listing = _root_listing(store, roots)
        raise AmbiguousError(
            f"{store.location} has {len(roots)} entries and no tag was given; pin one by digest, "
            "name a tag, or narrow with --platform / --artifact-type / --annotation:\n" + format_candidates(listing),
            candidates=listing,
        )
    if not selector.active and not descend:
        root = roots[0]
        return Resolved(ref, root, None, store.pinned(root))
    chosen = select(
        roots if tagless else roots[:1],
        lambda d: load_document(store, d),
        selector,
        config_platform=config_platform_reader(store),
        referrers=store.referrers,
        describe=describer(store),
    )
    root = next((r for r in roots if r.digest == (chosen.path[0].digest if chosen.path else chosen.descriptor.digest)), roots[0])
    return Resolved(ref, root, chosen, store.pinned(chosen.descriptor))

