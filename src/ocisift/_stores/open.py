"""The one place that picks a store for a reference."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from .._core.limits import ExtractLimits
from .._core.options import RegistryOptions
from .._core.reference import DirReference, DockerArchiveReference, LayoutReference, Reference, parse_reference
from .archive import ArchiveReader, ArchiveWriter
from .base import Reader
from .dir_transport import DirReader, DirWriter
from .docker_archive import DockerArchiveWriter, open_docker_archive
from .layout import LayoutStore


def open_store(ref: Reference | str, *, writable: bool = False, create: bool = False,
               options: RegistryOptions | None = None, limits: ExtractLimits | None = None) -> Reader:
    """Open the store a reference points into.

    `writable` is for writers: an archive is opened as a staged copy that
    `finish()` packs back into place (read-only, it is read in place and
    cannot be written). `create` is for writers that may start a new layout or
    archive (push, copy, index create); the others (tag, untag, delete, gc,
    index add/remove) edit what exists, and a missing one is not found.
    `limits` caps what a store that unpacks layers (a docker archive being
    written) may inflate.
    """
    if isinstance(ref, str):
        ref = parse_reference(ref)
    if isinstance(ref, DockerArchiveReference):
        # Written by copy (a new file, as skopeo writes one); anything else reads it.
        return DockerArchiveWriter(ref.path, limits) if writable and create else open_docker_archive(ref.path)
    if isinstance(ref, DirReference):
        # Written by copy (staged, then put in place of the directory, as skopeo replaces it); read in place.
        return DirWriter(ref.path) if writable and create else DirReader(ref.path)
    if isinstance(ref, LayoutReference):
        if ref.layout == "archive":
            return ArchiveWriter(ref.path, create=create) if writable else ArchiveReader(ref.path)
        if writable and create:
            return LayoutStore.create(ref.path)
        return LayoutStore(ref.path)
    from .registry.store import RegistryStore  # urllib3 and friends only when a registry is named

    return RegistryStore(ref.image, options)


@contextmanager
def opened(ref: Reference | str, *, writable: bool = False, create: bool = False,
           options: RegistryOptions | None = None, limits: ExtractLimits | None = None) -> Iterator[Reader]:
    """open_store for a `with` block: the store is closed however the block ends."""
    store = open_store(ref, writable=writable, create=create, options=options, limits=limits)
    try:
        yield store
    finally:
        store.close()
