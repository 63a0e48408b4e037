"""Docker media types seen as OCI's: what `copy --format oci` copies, as skopeo's `--format oci` does.

A Docker v2s2 image copied into an OCI layout keeps its media types by
default, digests and all (as regctl and crane copy); skopeo and umoci cannot
read such a layout. Converting makes new documents: a Docker manifest
becomes an OCI image manifest (config and layer media types mapped), a
Docker manifest list an OCI image index of the converted children. Blobs are
not touched: layers keep their bytes, and the config keeps its bytes too (the
OCI config is the same JSON; its extra Docker fields are ones OCI readers
ignore), so only manifests and indexes get new digests, each serialised once
here and digested over exactly those bytes.

`OciView` is a Reader over the source that answers with the converted
documents, so copy (and everything else that reads a store) runs unchanged.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .._core import jsontext
from .._core import mediatypes as mt
from .._core.digest import Digest, VerifyingReader, verify_bytes
from .._core.errors import MalformedDocument, UsageError
from .._core.models import Descriptor, Index, Manifest, parse_document
from .._core.reference import Target
from .._stores.base import Reader, load_document
from .walk import MAX_DEPTH, MAX_NODES

LAYER_TYPES = {
    mt.DOCKER_LAYER_GZIP: mt.OCI_LAYER_GZIP,
    mt.DOCKER_LAYER_TAR: mt.OCI_LAYER_TAR,
    mt.DOCKER_LAYER_FOREIGN: mt.OCI_LAYER_NONDIST_GZIP,
}
DOCUMENT_TYPES = {mt.DOCKER_MANIFEST: mt.OCI_MANIFEST, mt.DOCKER_LIST: mt.OCI_INDEX}


class OciView:
    """`inner` with every Docker manifest and list (at any depth) turned into OCI's; blobs pass through."""

    kind = "a converted view"

    def __init__(self, inner: Reader) -> None:
        self.inner = inner
        self.location = inner.location
        self._made: dict[Digest, bytes] = {}
        self._as: dict[Digest, Descriptor] = {}  # source digest -> its converted descriptor
        self.converted: dict[str, str] = {}  # source digest -> new digest, in the order converted
        self._lock = threading.Lock()
        self._nodes = 0

    # -- Reader --------------------------------------------------------------------------

    def resolve(self, target: Target) -> list[Descriptor]:
        return [self.convert(d) for d in self.inner.resolve(target)]

    @contextmanager
    def fetch(self, desc: Descriptor) -> Iterator[VerifyingReader]:
        made = self._made.get(desc.digest)
        if made is None:
            with self.inner.fetch(desc) as reader:
                yield reader
            return
        reader = VerifyingReader(io.BytesIO(made), desc.digest, desc.size, what=f"converted {desc.digest.short}")
        try:
            yield reader
        finally:
            reader.close()

    def fetch_manifest(self, desc: Descriptor) -> bytes:
        made = self._made.get(desc.digest)
        if made is None:
            return self.inner.fetch_manifest(desc)
        return verify_bytes(made, desc.digest, desc.size, what=f"converted manifest {desc.digest.short}")

    def exists(self, desc: Descriptor) -> bool:
        return desc.digest in self._made or self.inner.exists(desc)

    def pinned(self, desc: Descriptor) -> str:
        return self.inner.pinned(desc)

    def close(self) -> None:
        self.inner.close()

    # -- conversion ----------------------------------------------------------------------

    def convert(self, desc: Descriptor, path: tuple[Digest, ...] = ()) -> Descriptor:
        """The descriptor of `desc` as OCI: itself when nothing under it is Docker-typed."""
        with self._lock:
            done = self._as.get(desc.digest)
        if done is not None:
            return _with_entry_fields(done, desc)
        if desc.digest in path:
            raise MalformedDocument(f"cycle in the graph: {desc.digest} is its own ancestor")
        if len(path) > MAX_DEPTH:
            raise MalformedDocument(f"index nesting deeper than {MAX_DEPTH} levels at {desc.digest}")
        if not (mt.is_manifest(desc.media_type) or mt.is_index(desc.media_type)):
            return desc
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise MalformedDocument(f"graph has more than {MAX_NODES} manifests; refusing to convert it")
        doc = load_document(self.inner, desc)
        body = jsontext.document(doc.raw, f"manifest {desc.digest}")
        assert isinstance(body, dict)  # parse_document accepted it as an object
        if isinstance(doc, Index):
            raw = self._index(doc, body, (*path, desc.digest))
        else:
            raw = self._manifest(doc, body, desc)
        if raw is None:
            result = desc
        else:
            new_type = DOCUMENT_TYPES.get(doc.media_type, doc.media_type)
            parse_document(raw, new_type, what=f"converted {desc.digest}")  # what is written reads back
            result = Descriptor(new_type, Digest.of(raw), len(raw), desc.annotations, desc.platform,
                                desc.artifact_type, desc.urls)
            with self._lock:
                self._made[result.digest] = raw
                self.converted[str(desc.digest)] = str(result.digest)
        with self._lock:
            self._as[desc.digest] = result
        return result

    def _manifest(self, doc: Manifest, body: dict[str, Any], desc: Descriptor) -> bytes | None:
        if doc.media_type != mt.DOCKER_MANIFEST:
            return None
        body["mediaType"] = mt.OCI_MANIFEST
        config = body["config"]
        if config.get("mediaType") == mt.DOCKER_CONFIG:
            config["mediaType"] = mt.OCI_CONFIG
        for i, layer in enumerate(body.get("layers") or []):
            new = LAYER_TYPES.get(layer.get("mediaType"))
            if new is None:
                raise UsageError(f"manifest {desc.digest} has a layer of type {layer.get('mediaType')!r} (layers[{i}]) "
                                 "with no OCI equivalent; it cannot be converted (copy it without --format oci)")
            layer["mediaType"] = new
        return _serialise(body)

    def _index(self, doc: Index, body: dict[str, Any], path: tuple[Digest, ...]) -> bytes | None:
        entries = body.get("manifests") or []
        changed = doc.media_type == mt.DOCKER_LIST
        for entry, child in zip(entries, doc.manifests, strict=True):
            new = self.convert(child, path)
            if new.digest != child.digest:
                entry.update(mediaType=new.media_type, digest=str(new.digest), size=new.size)
                changed = True
        if not changed:
            return None
        body["mediaType"] = mt.OCI_INDEX
        return _serialise(body)


def _serialise(body: dict[str, Any]) -> bytes:
    """Once, compactly, in the source's key order: the digest is taken over exactly these bytes."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def _with_entry_fields(converted: Descriptor, entry: Descriptor) -> Descriptor:
    """A document seen again through another entry keeps that entry's annotations and platform."""
    if converted.digest == entry.digest:
        return entry
    return Descriptor(converted.media_type, converted.digest, converted.size, entry.annotations, entry.platform,
                      entry.artifact_type, entry.urls)
