"""Choosing tags in a repository, the same for every store: all of them, a list, or a semver range."""

from __future__ import annotations

from .._core.errors import UsageError
from .._core.names import is_referrers_tag
from .._core.reference import Reference, is_repository, tag_in, with_tag
from .._core.versions import TagFilter
from .._stores.base import Reader, TagLister, require


def repository_tags(reference: Reference, store: Reader) -> list[str]:
    """The tags of the repository REF names, in the store's order, referrer fallback tags left out."""
    listed = require(store, TagLister, "list tags").tags()
    found = (tag_in(reference, name) for name in listed)
    return list(dict.fromkeys(t for t in found if t is not None and not is_referrers_tag(t)))


def pick_tag(reference: Reference, store: Reader, semver: str | None, tag_regex: str | None) -> Reference:
    """REF with the highest tag inside `semver` (after `tag_regex`), or REF itself when neither is given."""
    if semver is None and tag_regex is None:
        return reference
    if semver is None:
        raise UsageError("--tag-regex filters the tags that --semver chooses from; give --semver RANGE too "
                         "(to list the tags that match a pattern: ocisift tags REF --tag-regex RE)")
    if not is_repository(reference):
        raise UsageError(f"--semver chooses the tag: give a repository without a tag or digest (got {reference})")
    chosen = TagFilter.build(semver, tag_regex).highest(repository_tags(reference, store), where=str(reference))
    return with_tag(reference, chosen)
