"""Store adapters behind one protocol, and the one place that picks an adapter."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ..reference import LayoutReference, Reference, parse_reference
from ..transport import RegistryOptions
from .base import Store
from .layout import LayoutStore


def open_store(ref: Reference | str, *, create: bool = False, options: RegistryOptions | None = None) -> Store:
    """Open the store a reference points into; `create` makes a missing layout directory (for writing)."""
    if isinstance(ref, str):
        ref = parse_reference(ref)
    if isinstance(ref, LayoutReference):
        if ref.layout == "archive":
            if create:
                from .archive import ArchiveWriter

                return ArchiveWriter(ref.path)
            from .archive import open_archive

            return open_archive(ref.path)
        if create:
            return LayoutStore.create_directory(ref.path)
        return LayoutStore.open_directory(ref.path)
    from .registry import RegistryStore

    options = options or RegistryOptions()
    credentials = None
    if options.username is not None:
        from ..auth import Credentials

        credentials = Credentials(options.username, options.password or "")
    return RegistryStore(ref.image, plain_http=options.plain_http, insecure=options.insecure,
                         ca_file=options.ca_file, timeout=options.timeout, retries=options.retries,
                         credentials=credentials, chunk_size=options.chunk_size)


@contextmanager
def opened(ref: Reference | str, *, create: bool = False, options: RegistryOptions | None = None) -> Iterator[Store]:
    """open_store for a `with` block: the store is closed however the block ends."""
    store = open_store(ref, create=create, options=options)
    try:
        yield store
    finally:
        store.close()


__all__ = ["LayoutStore", "Store", "open_store", "opened"]
