"""The one protocol every store speaks; graph algorithms are written against it only."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from typing import IO, Protocol, runtime_checkable

from ..digest import VerifyingReader
from ..models import Descriptor, Document, parse_document
from ..reference import Reference

MAX_CONFIG_BYTES = 4 * 1024 * 1024


@runtime_checkable
class Store(Protocol):
    """resolve, fetch, exists, push, tag, tags, referrers, and the small hooks writers need.

    `resolve` returns every root the reference could name (several only for
    tagless layouts or duplicate names); the shared algorithms decide what is
    ambiguous, so all stores behave alike.
    """

    location: str

    def resolve(self, ref: Reference) -> list[Descriptor]: ...

    def roots(self) -> list[Descriptor]:
        """What the store lists at its top (index.json entries, or the named tag)."""
        ...

    def fetch(self, desc: Descriptor) -> AbstractContextManager[VerifyingReader]: ...

    def fetch_manifest(self, desc: Descriptor) -> bytes:
        """The exact bytes, verified against the descriptor."""
        ...

    def exists(self, desc: Descriptor) -> bool: ...

    def push(self, desc: Descriptor, stream: IO[bytes]) -> None: ...

    def tag(self, desc: Descriptor, tag: str | None, annotations: Mapping[str, str] | None = None) -> None:
        """Name `desc`; with tag None, record it unnamed (a layout's untagged entry; a no-op for registries)."""
        ...

    def tags(self) -> list[str]: ...

    def referrers(self, desc: Descriptor) -> list[Descriptor]: ...

    def pinned(self, desc: Descriptor) -> str:
        """A ready-to-paste reference to this digest in this store."""
        ...

    def mount(self, desc: Descriptor, source: Store) -> bool:
        """Make a blob of `source` appear here without copying it; False when this store cannot."""
        ...

    def finish(self) -> None:
        """Publish staged writes (an archive is packed here); called only after success."""
        ...

    def close(self) -> None: ...


def load_document(store: Store, desc: Descriptor) -> Document:
    return parse_document(store.fetch_manifest(desc), desc.media_type, what=f"manifest {desc.digest}")


def read_small_blob(store: Store, desc: Descriptor, limit: int = MAX_CONFIG_BYTES) -> bytes | None:
    """A config-sized blob, or None when it is too large to be a config."""
    if desc.size > limit:
        return None
    with store.fetch(desc) as reader:
        data = reader.read()
        reader.drain()
    return data


def iter_chunks(stream: IO[bytes], size: int = 1 << 20) -> Iterator[bytes]:
    while chunk := stream.read(size):
        yield chunk
