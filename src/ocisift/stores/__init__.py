"""Store adapters behind one protocol, and the one place that picks an adapter."""

from __future__ import annotations

from ..reference import LayoutReference, Reference, parse_reference
from .base import Store
from .layout import LayoutStore


def open_store(ref: Reference | str, *, create: bool = False) -> Store:
    """Open the store a reference points into; `create` makes a missing layout directory (for writing)."""
    if isinstance(ref, str):
        ref = parse_reference(ref)
    if isinstance(ref, LayoutReference):
        if ref.layout == "archive":
            if create:
                from ..errors import UsageError

                raise UsageError("writing oci-archive: destinations is not supported yet; copy to oci: instead")
            from .archive import open_archive

            return open_archive(ref.path)
        if create:
            return LayoutStore.create_directory(ref.path)
        return LayoutStore.open_directory(ref.path)
    from .registry import RegistryStore

    return RegistryStore(ref.image)


__all__ = ["LayoutStore", "Store", "open_store"]
