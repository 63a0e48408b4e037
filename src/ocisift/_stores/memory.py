"""An in-memory store with every capability a store can have, for unit tests of the algorithms.

It keeps roots the way a layout's index.json does (descriptors with name
annotations, resolved by the same rules) and indexes referrers the way a
registry's referrers API does (every pushed manifest with a subject). Bytes
are verified on the way in, like every other store, so the algorithms meet
the same failures here as anywhere.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager

from .._core import mediatypes as mt
from .._core.builders import build_index
from .._core.digest import Digest, VerifyingReader, verified, verify_bytes
from .._core.errors import NotFoundError
from .._core.models import MAX_MANIFEST_BYTES, Descriptor, Manifest, parse_document, referrer_descriptor
from .._core.names import is_named, match_index_entries, replaced_by, tags_of
from .._core.reference import Target
from .._core.sources import ByteSource
from .._core.streams import copy_stream
from .base import Reader


class MemoryStore:
    kind = "the in-memory store"

    def __init__(self, name: str = "memory", *, registry: str | None = None) -> None:
        """`registry` groups stores the way repositories of one registry are grouped: they can mount from each other."""
        self.location = f"memory:{name}"
        self.registry = registry
        self.blobs: dict[Digest, bytes] = {}
        self.written: dict[Digest, float] = {}
        self.entries: list[Descriptor] = []
        self.subjects: dict[Digest, list[Descriptor]] = {}
        self._lock = threading.RLock()

    # -- Reader --------------------------------------------------------------------

    def resolve(self, target: Target) -> list[Descriptor]:
        found = match_index_entries(self.roots(), target)
        if found or target.digest is None:
            return found
        raw = self.blobs.get(target.digest)
        if raw is None:
            return []
        doc = parse_document(raw, None, what=f"blob {target.digest}")
        return [Descriptor(doc.media_type, target.digest, len(raw))]

    @contextmanager
    def fetch(self, desc: Descriptor) -> Iterator[VerifyingReader]:
        data = self.blobs.get(desc.digest)
        if data is None:
            raise NotFoundError(f"blob {desc.digest} is missing from {self.location}")
        reader = VerifyingReader(io.BytesIO(data), desc.digest, desc.size, what=f"blob {desc.digest.short}")
        try:
            yield reader
        finally:
            reader.close()

    def fetch_manifest(self, desc: Descriptor) -> bytes:
        data = self.blobs.get(desc.digest)
        if data is None:
            raise NotFoundError(f"manifest {desc.digest} is missing from {self.location}")
        return verify_bytes(data, desc.digest, desc.size, what=f"manifest {desc.digest.short}")

    def exists(self, desc: Descriptor) -> bool:
        """Present, and marked as reused (a gc running meanwhile spares it), as in a layout."""
        with self._lock:
            if desc.digest not in self.blobs:
                return False
            self.written[desc.digest] = time.time()
        return True

    def stat_blob(self, digest: Digest) -> Descriptor | None:
        with self._lock:
            data = self.blobs.get(digest)
        return Descriptor(mt.OCTET_STREAM, digest, len(data)) if data is not None else None

    def pinned(self, desc: Descriptor) -> str:
        return f"{self.location}@{desc.digest}"

    def close(self) -> None:
        pass

    # -- writing -------------------------------------------------------------------

    def push(self, desc: Descriptor, stream: ByteSource) -> None:
        out = io.BytesIO()
        copy_stream(verified(stream, desc.digest, desc.size, what=f"blob {desc.digest.short}"), out.write)
        data = out.getvalue()
        with self._lock:
            self.blobs[desc.digest] = data
            self.written[desc.digest] = time.time()
            if (mt.is_manifest(desc.media_type) or mt.is_index(desc.media_type)) and len(data) <= MAX_MANIFEST_BYTES:
                doc = parse_document(data, desc.media_type, what=f"manifest {desc.digest.short}")
                if doc.subject is not None and isinstance(doc, Manifest):
                    listed = self.subjects.setdefault(doc.subject.digest, [])
                    if all(d.digest != desc.digest for d in listed):
                        listed.append(referrer_descriptor(desc, doc))

    def roots(self) -> list[Descriptor]:
        with self._lock:
            return list(self.entries)

    def add_root(self, desc: Descriptor, annotations: Mapping[str, str] | None = None) -> None:
        self._record(desc, dict(annotations or {}), None)

    def tag(self, desc: Descriptor, tag: str, annotations: Mapping[str, str] | None = None) -> None:
        self._record(desc, {**(annotations or {}), mt.ANNOTATION_REF_NAME: tag}, tag)

    def _record(self, desc: Descriptor, annotations: dict[str, str], replace_tag: str | None) -> None:
        if desc.digest not in self.blobs:
            raise NotFoundError(f"{desc.digest} is not in {self.location}; push it before naming it")
        entry = Descriptor(desc.media_type, desc.digest, desc.size, {**desc.annotations, **annotations},
                           desc.platform, desc.artifact_type)
        with self._lock:
            if replace_tag is not None:
                self.entries = [e for e in self.entries if not replaced_by(e.annotations, replace_tag)]
            if entry not in self.entries:
                self.entries.append(entry)

    def untag(self, tag: str) -> int:
        with self._lock:
            kept = [e for e in self.entries if not is_named(e.annotations, tag)]
            dropped = len(self.entries) - len(kept)
            if not dropped:
                raise NotFoundError(f"tag {tag} not found in {self.location}")
            self.entries = kept
        return dropped

    def tags(self, limit: int | None = None) -> list[str]:
        return tags_of(self.roots())[:limit]

    def referrers(self, desc: Descriptor) -> list[Descriptor]:
        with self._lock:
            return list(self.subjects.get(desc.digest, ()))

    def peek_referrers(self, subject: Descriptor) -> Digest | None:
        raw = self.referrer_index(subject)
        return Digest.of(raw) if raw is not None else None

    def referrer_index(self, subject: Descriptor) -> bytes | None:
        """An index of the referrers as they were pushed, made the way a referrers API makes its answer."""
        listed = self.referrers(subject)
        return build_index(listed) if listed else None

    def mount(self, desc: Descriptor, source: Reader) -> bool:
        """A blob of another store of the same registry is shared, not copied (a cross-repository mount)."""
        if (not isinstance(source, MemoryStore) or source is self or self.registry is None
                or source.registry != self.registry or desc.digest not in source.blobs):
            return False
        with self._lock:
            self.blobs[desc.digest] = source.blobs[desc.digest]
            self.written[desc.digest] = time.time()
        return True

    def delete(self, desc: Descriptor) -> None:
        with self._lock:
            if desc.digest not in self.blobs:
                raise NotFoundError(f"{desc.digest} is not in {self.location}")
            del self.blobs[desc.digest]
            self.entries = [e for e in self.entries if e.digest != desc.digest]
            for listed in self.subjects.values():
                listed[:] = [d for d in listed if d.digest != desc.digest]

    # -- garbage collection ------------------------------------------------------------

    def inventory(self) -> Iterator[tuple[Digest, int, float]]:
        now = time.time()
        with self._lock:
            held = [(d, len(data), now - self.written.get(d, now)) for d, data in self.blobs.items()]
        yield from held

    def remove_blob(self, digest: Digest, older_than: float) -> bool:
        with self._lock:
            if time.time() - self.written.get(digest, 0.0) < older_than:
                return False
            return self.blobs.pop(digest, None) is not None

    def exclusive(self) -> AbstractContextManager[None]:
        @contextmanager
        def held() -> Iterator[None]:
            with self._lock:
                yield

        return held()
