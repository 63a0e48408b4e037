"""Store adapters behind one protocol, and the one place that picks an adapter."""

from __future__ import annotations

from ..reference import LayoutReference, Reference, parse_reference
from .base import Store
from .layout import LayoutStore


def open_store(ref: Reference | str) -> Store:
    """Open the store a reference points into."""
    if isinstance(ref, str):
        ref = parse_reference(ref)
    if isinstance(ref, LayoutReference):
        if ref.layout == "archive":
            from .archive import open_archive

            return open_archive(ref.path)
        return LayoutStore.open_directory(ref.path)
    from .registry import RegistryStore

    return RegistryStore(ref.image)


__all__ = ["LayoutStore", "Store", "open_store"]
