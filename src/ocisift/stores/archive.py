"""`oci-archive:` stores: a layout packed in a tar file, read in place."""

from __future__ import annotations

from .layout import ArchiveFiles, LayoutStore


def open_archive(path: str) -> LayoutStore:
    """Index the tar's members by header once; blobs are read as windows of the file."""
    return LayoutStore(path, ArchiveFiles(path), scheme="oci-archive", writable=False)
