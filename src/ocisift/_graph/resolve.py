"""From a target to a root, and from a root to the selected manifest, for any store."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .._core.errors import AmbiguousError, NotFoundError, OcisiftError
from .._core.models import Descriptor, Manifest, parse_config_platform
from .._core.names import names_of
from .._core.platform import Platform
from .._core.reference import Target
from .._stores.base import Reader, ReferrerLister, RootLister, TagLister, read_small_blob
from .select import Candidate, Selector, describe_candidate, format_candidates, select
from .walk import Loader, document_loader

MAX_LISTED_TAGS = 50


@dataclass(frozen=True, slots=True)
class Resolved:
    """What a reference names: its root and, when selectors were given, the selected manifest."""

    reference: str
    target: Target
    root: Descriptor
    selected: Candidate | None
    pinned: str

    @property
    def descriptor(self) -> Descriptor:
        return self.selected.descriptor if self.selected else self.root

    @property
    def vouched_by(self) -> list[Descriptor]:
        """What a signature must be of for the selected content to be trusted: the root or the manifest
        selected under it (a signed index vouches for what it lists by digest). A referrer is listed by no
        one: anyone who may push can attach one to a signed image, so only a signature of the referrer
        itself vouches for it, never its subject's."""
        if self.selected is not None and self.selected.referrer_of is not None:
            return [self.selected.descriptor]
        return [self.root, self.descriptor]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "reference": self.reference,
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


def config_platform_reader(store: Reader) -> Callable[[Manifest], Platform | None]:
    """The platform an image config declares, read once per config."""
    cache: dict[str, Platform | None] = {}

    def read(manifest: Manifest) -> Platform | None:
        key = str(manifest.config.digest)
        if key not in cache:
            data = read_small_blob(store, manifest.config) if manifest.config.size > 2 else None
            cache[key] = parse_config_platform(data, manifest.config.media_type,
                                               f"config {manifest.config.digest}") if data else None
        return cache[key]

    return read


def describer(store: Reader) -> Callable[[Candidate], dict[str, Any]]:
    def describe(c: Candidate) -> dict[str, Any]:
        out = describe_candidate(c)
        out["reference"] = store.pinned(c.descriptor)
        return out

    return describe


def root_listing(store: Reader, roots: list[Descriptor]) -> list[dict[str, Any]]:
    return [{
        "digest": str(r.digest),
        "reference": store.pinned(r),
        "mediaType": r.media_type,
        "platform": str(r.platform) if r.platform else None,
        "artifactType": r.artifact_type,
        "annotations": dict(r.annotations),
        "names": names_of(r),
    } for r in roots]


def _what_it_holds(store: Reader) -> tuple[str, list[dict[str, Any]]]:
    """For a not-found message: a store's roots if it lists them, else its tags.

    NotFoundError passes through: the repository itself does not exist, which says more than "nothing".
    """
    if isinstance(store, RootLister):
        listing = root_listing(store, store.roots())
        return format_candidates(listing) or "  nothing", listing
    if isinstance(store, TagLister):
        try:
            tags = store.tags(MAX_LISTED_TAGS + 1)
        except NotFoundError:
            raise
        except OcisiftError as exc:  # a pull-only account may not list tags: the not-found stands
            return f"  (its tags could not be listed: {exc.message})", []
        shown = ", ".join(tags[:MAX_LISTED_TAGS]) + (", …" if len(tags) > MAX_LISTED_TAGS else "")
        return f"  tags: {shown}" if tags else "  no tags", [{"tag": t} for t in tags[:MAX_LISTED_TAGS]]
    return "  (this store cannot list what it holds)", []


def find_roots(store: Reader, target: Target, hint: str = "") -> list[Descriptor]:
    roots = store.resolve(target)
    if not roots:
        try:
            text, listing = _what_it_holds(store)
        except NotFoundError as exc:
            raise NotFoundError(f"{target.looking_for} not found: {exc.message}") from None
        raise NotFoundError(f"{target.looking_for} not found in {store.location}; it holds:\n{text}{hint}",
                            candidates=listing)
    return roots


def resolve_in(store: Reader, target: Target, selector: Selector | None = None, *, descend: bool = False,
               reference: str | None = None, hint: str = "", load: Loader | None = None) -> Resolved:
    """Rules 1-5, then selection. `descend` forces selection down to one manifest (pull).

    `load` lets a caller that reads the graph afterwards (copy) share one document cache with resolution.
    """
    selector = selector or Selector()
    load = load or document_loader(store)
    shown = reference or f"{store.location}:{target}"
    roots = find_roots(store, target, hint)
    if len(roots) > 1 and not target.tagless and not selector.first:
        listing = root_listing(store, roots)
        raise AmbiguousError(
            f"{shown} names {len(roots)} different digests; pin one:\n" + format_candidates(listing),
            candidates=listing,
        )
    if len(roots) > 1 and not selector.active and not selector.first:
        listing = root_listing(store, roots)
        raise AmbiguousError(
            f"{store.location} has {len(roots)} entries and no tag was given; pin one by digest, "
            "name a tag, or narrow with --platform / --artifact-type / --annotation:\n" + format_candidates(listing),
            candidates=listing,
        )
    if not selector.active and not descend:
        root = roots[0]
        # The same answer as tree, pull and copy give: a document whose own mediaType disagrees with
        # its descriptor's, or that is no manifest at all, is refused here too (exit 5).
        load(root)
        return Resolved(shown, target, root, None, store.pinned(root))
    referrers = store.referrers if isinstance(store, ReferrerLister) else None
    chosen = select(
        roots if target.tagless else roots[:1],
        load,
        selector,
        config_platform=config_platform_reader(store),
        referrers=referrers,
        describe=describer(store),
    )
    top = chosen.path[0].digest if chosen.path else chosen.descriptor.digest
    root = next((r for r in roots if r.digest == top), roots[0])
    return Resolved(shown, target, root, chosen, store.pinned(chosen.descriptor))
