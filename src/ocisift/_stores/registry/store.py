"""A Distribution-spec registry repository behind the capability protocols.

The store is thin: requests go through the repository's session (one per
registry origin, shared by every store of that registry in the process), and
each capability is a function of its own module. Manifests read once are kept
by digest, so a graph walk never fetches the same document twice.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from ..._core import mediatypes as mt
from ..._core.builders import manifest_bytes
from ..._core.digest import Digest, VerifyingReader, verify_bytes
from ..._core.errors import MalformedDocument, NotFoundError, UsageError
from ..._core.models import MAX_MANIFEST_BYTES, Descriptor, parse_document
from ..._core.options import RegistryOptions
from ..._core.reference import ImageName, Target
from ..._core.sources import ByteSource
from ..base import Reader
from .blobs import blob_exists, blob_size, fetch_blob
from .listing import (
    TAG_PAGE_SIZE,
    add_fallback_referrer,
    adopt_referrer_index,
    list_referrers,
    list_tags,
    peek_referrer_index,
    referrer_index,
)
from .manifests import (
    check_deletes_allowed,
    delete_manifest,
    delete_tag,
    get_manifest,
    head_manifest,
    manifest_exists,
    put_manifest,
)
from .repository import Repository
from .uploads import mount_blob, single_upload, upload_blob

UNTAG_ANNOTATION = "io.ocisift.untag"  # on the throw-away manifest untag moves a tag to, then deletes


class RegistryStore:
    """One repository of one registry."""

    kind = "a registry"
    remote = True  # RemoteReader: pulls fetch several blobs at once, and ahead of unpacking

    def __init__(self, image: ImageName, options: RegistryOptions | None = None) -> None:
        self.options = options or RegistryOptions()
        self.image = image
        self.repo = Repository.open(image, self.options)
        self.location = image.name
        self.tag_page_size = TAG_PAGE_SIZE
        self._manifests: dict[Digest, bytes] = {}
        self._referrer_indexes: dict[Digest, bytes] = {}  # a referrers API's answer to a peek, by subject

    # -- Reader ----------------------------------------------------------------------

    def resolve(self, target: Target) -> list[Descriptor]:
        if target.name is not None:
            raise UsageError(f"{self.location} is a registry repository: name a tag or digest, not {target.name}")
        ident = str(target.digest) if target.digest is not None else target.tag
        if ident is None:
            raise UsageError(f"{self.location}: a registry reference needs a tag or a digest")
        found = get_manifest(self.repo, ident, target.digest)
        if found is None:
            return []
        raw, media_type = found
        digest = target.digest or Digest.of(raw)
        self._manifests[digest] = raw
        return [Descriptor(media_type, digest, len(raw))]

    def peek(self, target: Target) -> Descriptor | None:
        """One HEAD: what the tag (or digest) names, for a mirror that reads nothing when it has it already."""
        ident = str(target.digest) if target.digest is not None else target.tag
        if ident is None or target.name is not None:
            return None
        found = head_manifest(self.repo, ident)
        if found is None:
            return None
        digest, media_type, size = found
        if size > MAX_MANIFEST_BYTES or (target.digest is not None and digest != target.digest):
            return None  # the plan reads it, and says what is wrong with it
        return Descriptor(media_type, digest, size)

    def fetch_manifest(self, desc: Descriptor) -> bytes:
        if desc.size > MAX_MANIFEST_BYTES:
            raise MalformedDocument(f"manifest {desc.digest} claims {desc.size} bytes, over the limit")
        raw = self._manifests.get(desc.digest)
        if raw is None:
            found = get_manifest(self.repo, str(desc.digest), desc.digest)
            if found is None:
                raise NotFoundError(f"manifest {desc.digest} not found in {self.location}")
            raw = self._manifests[desc.digest] = found[0]
        return verify_bytes(raw, desc.digest, desc.size, what=f"manifest {desc.digest.short}")

    @contextmanager
    def fetch(self, desc: Descriptor) -> Iterator[VerifyingReader]:
        with fetch_blob(self.repo, desc) as reader:
            yield reader

    def exists(self, desc: Descriptor) -> bool:
        """Registries keep manifests apart from blobs, so ask the right endpoint."""
        if mt.is_manifest(desc.media_type) or mt.is_index(desc.media_type):
            return manifest_exists(self.repo, desc.digest)
        return blob_exists(self.repo, desc.digest)

    def stat_blob(self, digest: Digest) -> Descriptor | None:
        size = blob_size(self.repo, digest)
        return Descriptor(mt.OCTET_STREAM, digest, size) if size is not None else None

    def pinned(self, desc: Descriptor) -> str:
        return f"{self.image.name}@{desc.digest}"

    def close(self) -> None:
        self._manifests.clear()  # the session stays: it belongs to the registry, not to this store
        self._referrer_indexes.clear()

    # -- listing -----------------------------------------------------------------------

    def tags(self, limit: int | None = None) -> list[str]:
        page = self.tag_page_size if limit is None else min(self.tag_page_size, limit)
        return list_tags(self.repo, page, limit)

    def referrers(self, desc: Descriptor) -> list[Descriptor]:
        return list_referrers(self.repo, desc)

    def peek_referrers(self, subject: Descriptor) -> Digest | None:
        """One request: the fallback tag's HEAD, or the referrers API's answer (kept for `referrer_index`)."""
        found = peek_referrer_index(self.repo, subject)
        if found is None:
            return None
        digest, raw = found
        if raw is not None:
            self._referrer_indexes[subject.digest] = raw
        return digest

    def referrer_index(self, subject: Descriptor) -> bytes | None:
        kept = self._referrer_indexes.pop(subject.digest, None)
        return kept if kept is not None else referrer_index(self.repo, subject)

    def adopt_referrer_index(self, subject: Descriptor, raw: bytes) -> bool:
        return adopt_referrer_index(self.repo, subject, raw)

    # -- writing ------------------------------------------------------------------------

    def push(self, desc: Descriptor, stream: ByteSource) -> None:
        """Blobs by upload; manifests and indexes by PUT to their digest (and the referrer fallback if needed)."""
        if not (mt.is_manifest(desc.media_type) or mt.is_index(desc.media_type)):
            with single_upload(self.repo, desc) as needed:
                if needed:
                    upload_blob(self.repo, desc, stream, self.options.chunk_size)
            return
        raw = stream.read(MAX_MANIFEST_BYTES + 1)
        verify_bytes(raw, desc.digest, desc.size, what=f"manifest {desc.digest.short}")
        doc = parse_document(raw, desc.media_type, what=f"manifest {desc.digest.short}")
        subject_seen = put_manifest(self.repo, str(desc.digest), raw, desc.media_type)
        self._manifests[desc.digest] = raw
        if doc.subject is not None and not subject_seen:
            add_fallback_referrer(self.repo, doc.subject, desc, doc)

    def tag(self, desc: Descriptor, tag: str, annotations: Mapping[str, str] | None = None) -> None:
        """PUT the manifest's exact bytes under the tag (a registry keeps no annotations on tags)."""
        put_manifest(self.repo, tag, self.fetch_manifest(desc), desc.media_type)

    def mount(self, desc: Descriptor, source: Reader) -> bool:
        """Cross-repository mount from another repository of the same registry; False when it cannot be used."""
        if not isinstance(source, RegistryStore) or source.repo.base != self.repo.base:
            return False
        if source.image.repository == self.image.repository:
            return False
        return mount_blob(self.repo, desc, source.repo)

    def delete(self, desc: Descriptor) -> None:
        delete_manifest(self.repo, desc.digest)
        self._manifests.pop(desc.digest, None)

    def untag(self, tag: str) -> int:
        """Delete the tag itself where the registry can; else regclient's way, which touches nothing else.

        A registry that cannot delete a tag alone (distribution 2.x) deletes a manifest with every tag
        naming it. So the tag is first moved to a throw-away manifest of its own (unique, empty), which is
        then deleted by digest: the tag goes with it, and the image it named stays, under its other tags
        and by digest. Where deletes are off this is refused before anything is written.
        """
        original = get_manifest(self.repo, tag, None)
        if original is None:
            raise NotFoundError(f"tag {tag} is not in {self.location}")
        if delete_tag(self.repo, tag):
            return 1
        check_deletes_allowed(self.repo)
        config = Descriptor(mt.OCI_EMPTY, Digest.of(b"{}"), 2)
        self.push(config, io.BytesIO(b"{}"))
        raw = manifest_bytes(config, [], annotations={UNTAG_ANNOTATION: f"{tag} {uuid.uuid4()}"})
        put_manifest(self.repo, tag, raw, mt.OCI_MANIFEST)
        try:
            delete_manifest(self.repo, Digest.of(raw))
        except BaseException:
            put_manifest(self.repo, tag, *original)  # the tag names what it named before
            raise
        return 1
