"""Capabilities: the small protocols stores implement, each exactly what it can.

Modelled on oras-go's `content.Fetcher`, `Pusher`, `TagResolver`, `Tagger`,
`TagLister`, `ReferrerLister` and `Deleter`. An algorithm asks `require()` for
the capability it needs, once, and gets a clear error (exit 2) naming the
store and what it cannot do, instead of a placeholder method that pretends.
Optional capabilities (mounting) are tested with `isinstance` and skipped.

| capability     | memory | layout dir | archive (read) | archive (write) | registry | docker (read) | docker (write) | dir (read) | dir (write) |
|----------------|--------|------------|----------------|-----------------|----------|---------------|----------------|------------|-------------|
| Reader         | yes    | yes        | yes            | yes             | yes      | yes           | yes            | yes        | yes         |
| RootLister     | yes    | yes        | yes            | yes             | -        | yes           | -              | yes        | yes         |
| Pusher         | yes    | yes        | -              | yes             | yes      | -             | yes            | -          | yes         |
| Tagger         | yes    | yes        | -              | yes             | yes      | -             | yes            | -          | -           |
| RootRecorder   | yes    | yes        | -              | yes             | -        | -             | yes            | -          | yes         |
| Untagger       | yes    | yes        | -              | yes             | yes      | -             | -              | -          | -           |
| TagLister      | yes    | yes        | yes            | yes             | yes      | yes           | -              | -          | -           |
| ReferrerLister | yes    | yes        | yes            | yes             | yes      | -             | -              | -          | -           |
| Mounter        | yes    | -          | -              | -               | yes      | -             | -              | -          | -           |
| Deleter        | yes    | yes        | -              | yes             | yes      | -             | -              | -          | -           |
| Finisher       | -      | -          | -              | yes             | -        | -             | yes            | -          | yes         |
| BlobStatter    | yes    | yes        | yes            | yes             | yes      | -             | -              | yes        | yes         |
| RemoteReader   | -      | -          | -              | -               | yes      | -             | -              | -          | -           |
| TagPeeker      | -      | -          | -              | -               | yes      | -             | -              | -          | -           |
| ReferrerPeeker | yes    | yes        | yes            | yes             | yes      | -             | -              | -          | -           |
| ReferrerIndexAdopter | - | yes       | -              | yes             | yes      | -             | -              | -          | -           |
| NameBatcher    | -      | yes        | -              | yes             | -        | -             | -              | -          | -           |
| BlobSweeper    | yes    | yes        | -              | yes             | -        | -             | -              | -          | -           |
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Protocol, TypeVar, runtime_checkable

from .._core.digest import Digest, VerifyingReader
from .._core.errors import UnsupportedError
from .._core.models import Descriptor, Document, parse_document
from .._core.reference import Target
from .._core.sources import ByteSource

MAX_CONFIG_BYTES = 4 * 1024 * 1024


@runtime_checkable
class Reader(Protocol):
    """Every store reads: what a target names, blobs as verified streams, manifests as exact bytes.

    `resolve` returns every root the target could name (several only for
    tagless layouts or duplicate names); the shared algorithms decide what is
    ambiguous, so all stores behave alike.
    """

    location: str

    def resolve(self, target: Target) -> list[Descriptor]: ...

    def fetch(self, desc: Descriptor) -> AbstractContextManager[VerifyingReader]: ...

    def fetch_manifest(self, desc: Descriptor) -> bytes:
        """The exact bytes, verified against the descriptor."""
        ...

    def exists(self, desc: Descriptor) -> bool: ...

    def pinned(self, desc: Descriptor) -> str:
        """A ready-to-paste reference to this digest in this store."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class RootLister(Protocol):
    """Stores with a list of top-level entries (a layout's index.json)."""

    def roots(self) -> list[Descriptor]: ...


@runtime_checkable
class Pusher(Protocol):
    """Write a blob, manifest or index; the bytes are verified against `desc` before they become visible."""

    def push(self, desc: Descriptor, stream: ByteSource) -> None: ...


@runtime_checkable
class Tagger(Protocol):
    def tag(self, desc: Descriptor, tag: str, annotations: Mapping[str, str] | None = None) -> None:
        """Point `tag` at `desc` (moving it if it named something else); `annotations` join the entry."""
        ...


@runtime_checkable
class RootRecorder(Protocol):
    """Stores where content is reachable only when listed (layouts): record a root without a name."""

    def add_root(self, desc: Descriptor, annotations: Mapping[str, str] | None = None) -> None: ...


@runtime_checkable
class Untagger(Protocol):
    def untag(self, tag: str) -> int:
        """Remove the name; returns how many entries it named. NotFoundError when none.

        Layouts keep the content until gc. A registry that cannot delete a tag alone gets the tag moved to
        a throw-away manifest, which is deleted by digest: the image it named and its other tags stay.
        """
        ...


@runtime_checkable
class TagLister(Protocol):
    def tags(self, limit: int | None = None) -> list[str]:
        """The tags, in the store's order; with `limit`, at most that many (a registry fetches no more pages)."""
        ...


@runtime_checkable
class ReferrerLister(Protocol):
    def referrers(self, desc: Descriptor) -> list[Descriptor]:
        """Manifests whose `subject` is `desc`, as descriptors carrying their artifactType and annotations."""
        ...


@runtime_checkable
class TagPeeker(Protocol):
    def peek(self, target: Target) -> Descriptor | None:
        """What the tag names, without fetching the manifest (a registry's HEAD); None when it names nothing.

        For stores where resolving costs a request per manifest read: a mirror asks this of the source
        and the destination, and reads nothing more when they agree.
        """
        ...


@runtime_checkable
class ReferrerPeeker(Protocol):
    """Stores that can say cheaply whether a subject's referrers changed.

    A mirror asks this of both ends of an unchanged tag: when the two digests
    agree it lists nothing more, and when they differ it reads the two indexes
    and copies only the referrers the destination lacks.
    """

    def peek_referrers(self, subject: Descriptor) -> Digest | None:
        """The digest of the index listing the subject's referrers here, for one request at most (a registry's
        fallback tag by HEAD, or its referrers API's answer); a layout answers from index.json. None when
        nothing refers to the subject."""
        ...

    def referrer_index(self, subject: Descriptor) -> bytes | None:
        """That index's exact bytes (an OCI index whose manifests are the referrers); None when there are none."""
        ...


@runtime_checkable
class ReferrerIndexAdopter(Protocol):
    def adopt_referrer_index(self, subject: Descriptor, raw: bytes) -> bool:
        """Make `raw`, another store's index of the subject's referrers, this store's own (its fallback tag),
        so that the two ends' `peek_referrers` agree until a referrer is added.

        The caller has copied every referrer `raw` lists and checked that it lists every referrer the
        subject has here, so nothing is lost. False where the store makes its index itself (a registry
        with the referrers API): there nothing is written.
        """
        ...


@runtime_checkable
class NameBatcher(Protocol):
    def batch(self) -> AbstractContextManager[None]:
        """Record the names given inside the block in one write when it ends (a layout's index.json is
        rewritten once for 10,000 tags, not 10,000 times)."""
        ...


@runtime_checkable
class Mounter(Protocol):
    def mount(self, desc: Descriptor, source: Reader) -> bool:
        """Make a blob of `source` appear here without moving its bytes; False when it cannot be done."""
        ...


@runtime_checkable
class Deleter(Protocol):
    def delete(self, desc: Descriptor) -> None:
        """Remove a manifest or index (and, in layouts, the entries naming it)."""
        ...


@runtime_checkable
class BlobFetcher(Protocol):
    """Only fetches blobs by descriptor: where non-distributable blobs come from when a copy carries them
    (registry/external.py: their own URLs). Every Reader is one too."""

    location: str

    def fetch(self, desc: Descriptor) -> AbstractContextManager[VerifyingReader]: ...


@runtime_checkable
class BlobStatter(Protocol):
    def stat_blob(self, digest: Digest) -> Descriptor | None:
        """A descriptor (size, and `application/octet-stream`) for a blob known only by digest; None when absent.

        What `blob get REF@DIGEST` needs before it can fetch: every fetch is checked against a size."""
        ...


@runtime_checkable
class RemoteReader(Protocol):
    """A reader whose fetches wait on a network, so fetching several at once, and ahead, pays.

    Local stores do not claim it: for them a blob fetched ahead into a file is
    only a second write and read of the same bytes.
    """

    remote: bool


@runtime_checkable
class Finisher(Protocol):
    def finish(self) -> None:
        """Publish staged writes (an archive is packed here); called only after success."""
        ...


@runtime_checkable
class BlobSweeper(Protocol):
    """What garbage collection needs: every blob with its age, removal, and the lock root writers take."""

    def roots(self) -> list[Descriptor]: ...

    def inventory(self) -> Iterator[tuple[Digest, int, float]]:
        """Every blob held: its digest, its size, and seconds since it was last written or reused."""
        ...

    def remove_blob(self, digest: Digest, older_than: float) -> bool:
        """Remove the blob unless it was written or reused less than `older_than` seconds ago; True if removed.

        Writers mark a blob they reuse (its `exists` does), so a blob a push is about to reference survives.
        """
        ...

    def exclusive(self) -> AbstractContextManager[None]:
        """Held while roots are read and blobs removed; writers recording roots wait for it."""
        ...


C = TypeVar("C")


def require(store: Reader, capability: type[C], doing: str) -> C:
    """The store as `capability`, or UnsupportedError (exit 2) saying which store cannot do what."""
    if isinstance(store, capability):
        return store
    raise UnsupportedError(f"{store.location} cannot {doing}: {describe_kind(store)} does not support it")


def describe_kind(store: object) -> str:
    """A store's kind in words, for error messages only (never for branching)."""
    return str(getattr(store, "kind", type(store).__name__))


def load_document(store: Reader, desc: Descriptor) -> Document:
    return parse_document(store.fetch_manifest(desc), desc.media_type, what=f"manifest {desc.digest}")


def read_small_blob(store: Reader, desc: Descriptor, limit: int = MAX_CONFIG_BYTES) -> bytes | None:
    """A config-sized blob, or None when it is too large to be a config."""
    if desc.size > limit:
        return None
    with store.fetch(desc) as reader:
        data = reader.read()
        reader.drain()
    return data
