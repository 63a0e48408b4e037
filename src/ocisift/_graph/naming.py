"""Naming content in a store as a reference says: tags, full names, or an unnamed root."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext

from .._core.errors import UsageError
from .._core.models import Descriptor
from .._core.reference import Target, is_tag
from .._stores.base import NameBatcher, Reader, RootRecorder, Tagger, require


def check_tags(tags: Sequence[str]) -> None:
    for tag in tags:
        if not is_tag(tag):
            raise UsageError(f"invalid tag {tag!r} (letters, digits, '_', '.', '-'; at most 128)")


def check_pin(target: Target, root: Descriptor) -> None:
    """A destination pinned by digest must name what is written there (checked before writing anything)."""
    if target.digest is not None and target.digest != root.digest:
        raise UsageError(f"the reference pins {target.digest} but the content is {root.digest}")


def record_name(store: Reader, target: Target, root: Descriptor, extra_tags: Sequence[str] = ()) -> list[str]:
    """Name `root` in `store` as `target` says, plus extra tags.

    With no tag at all, a store that lists its roots (a layout) records it
    unnamed so it stays reachable; elsewhere (a registry) content pushed by
    digest is reachable as it is, and nothing is named.
    """
    check_pin(target, root)
    check_tags(extra_tags)
    # A full name is recorded whole (ref.name `docker.io/acme/one:1`, and io.containerd.image.name): two
    # images of one tag under different names then live side by side, each found by short and full name.
    primary = str(target.name) if target.name is not None and target.digest is None else target.named_tag
    tags = ([primary] if primary else []) + [t for t in extra_tags if t != primary]
    if not tags:
        if isinstance(store, RootRecorder):
            store.add_root(root)
        return []
    tagger = require(store, Tagger, "tag content")
    for tag in tags:
        tagger.tag(root, tag, target.name_annotations if tag == primary else None)
    return tags


def names_batched(store: Reader) -> AbstractContextManager[None]:
    """Names given inside the block recorded in one write where the store can (a layout's index.json)."""
    return store.batch() if isinstance(store, NameBatcher) else nullcontext()
