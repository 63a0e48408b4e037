"""sign: a cosign key-based signature of one manifest or index, written where cosign writes it.

Two forms, both read by cosign and by `verify`:

- legacy (the default): a simple-signing payload layer, its signature in the
  `dev.cosignproject.cosign/signature` annotation, appended to the manifest
  the `sha256-<hex>.sig` tag names (made when there is none, as cosign does);
- bundle: a sigstore bundle v0.3 holding a DSSE envelope over an in-toto
  statement whose subject is the digest (predicate
  `https://sigstore.dev/cosign/sign/v1`), pushed as a referrer of the digest
  with artifact type `application/vnd.dev.sigstore.bundle.v0.3+json`, as
  `cosign sign --new-bundle-format` does. A key-based bundle carries no
  transparency-log entry (cosign's `--tlog-upload=false`).

The digest signed is the one the reference was resolved to, once.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from .._core import mediatypes as mt
from .._core.builders import manifest_bytes
from .._core.digest import Digest
from .._core.errors import NotFoundError
from .._core.models import Descriptor, Manifest, parse_document
from .._core.reference import Target
from .._stores.base import Pusher, Reader, require
from .._trust.cosignkey import PrivateKeyType, public_key, sign
from .._trust.dsse import pae
from .._trust.formats import (
    BUNDLE_CONTENT_ANNOTATION,
    BUNDLE_PREDICATE_ANNOTATION,
    COSIGN_SIGN_PREDICATE,
    COSIGN_SIGNATURE_ANNOTATION,
    COSIGN_SIMPLESIGNING,
    INTOTO_PAYLOAD_TYPE,
    MAX_SIGNATURES,
    SIGSTORE_BUNDLE_V03,
    signature_tag,
)
from .._trust.keys import public_pem
from .._trust.simplesigning import build_payload
from .naming import record_name
from .push import push_bytes
from .referrers import record_referrer
from .signed import Signed

ANNOTATION_CREATED = "org.opencontainers.image.created"


def sign_legacy(store: Reader, subject: Descriptor, key: PrivateKeyType, docker_reference: str,
                annotations: Mapping[str, str] | None = None) -> Signed:
    pusher = require(store, Pusher, "be signed into")
    payload = build_payload(subject.digest, docker_reference, annotations)
    signature = base64.b64encode(sign(key, payload)).decode()
    layer = push_bytes(store, pusher, payload, COSIGN_SIMPLESIGNING, {COSIGN_SIGNATURE_ANNOTATION: signature})
    tag = signature_tag(subject.digest)
    layers = [*_existing_layers(store, tag), layer]
    if len(layers) > MAX_SIGNATURES:
        layers = layers[-MAX_SIGNATURES:]  # verify tries this many; the oldest make room
    config = push_bytes(store, pusher, _signature_config(layers), mt.OCI_CONFIG)
    raw = manifest_bytes(config, layers)
    desc = Descriptor(mt.OCI_MANIFEST, Digest.of(raw), len(raw))
    pusher.push(desc, io.BytesIO(raw))
    record_name(store, Target(tag=tag), desc)
    return Signed(subject, "legacy", desc, store.pinned(desc), tag)


def _existing_layers(store: Reader, tag: str) -> list[Descriptor]:
    """The signatures the tag holds already (cosign appends to them); none when it names no manifest."""
    try:
        found = store.resolve(Target(tag=tag))
    except NotFoundError:
        return []
    if not found:
        return []
    doc = parse_document(store.fetch_manifest(found[0]), found[0].media_type, what=f"signature manifest {tag}")
    if not isinstance(doc, Manifest):
        return []  # an index there is no signature cosign wrote; the new manifest replaces it
    return [d for d in doc.layers if d.media_type == COSIGN_SIMPLESIGNING]


def _signature_config(layers: list[Descriptor]) -> bytes:
    """The config cosign gives a signature image: its rootfs lists the payloads."""
    body = {"architecture": "", "created": "0001-01-01T00:00:00Z", "history": [{"created": "0001-01-01T00:00:00Z"}],
            "os": "", "rootfs": {"type": "layers", "diff_ids": [str(d.digest) for d in layers]}, "config": {}}
    return json.dumps(body, separators=(",", ":")).encode()


def bundle_bytes(subject: Descriptor, key: PrivateKeyType, name: str) -> bytes:
    """A sigstore bundle v0.3 with a DSSE envelope over cosign's sign statement, signed with `key`; the
    subject is named `name` (the repository), as cosign names it, so --match-reference can check it."""
    statement = {"_type": "https://in-toto.io/Statement/v1",
                 "subject": [{"name": name, "digest": {subject.digest.algorithm: subject.digest.hex}}],
                 "predicateType": COSIGN_SIGN_PREDICATE, "predicate": {}}
    payload = json.dumps(statement, separators=(",", ":")).encode()
    signature = sign(key, pae(INTOTO_PAYLOAD_TYPE, payload))
    der = public_key(key).public_bytes(*_spki())
    bundle = {
        "mediaType": SIGSTORE_BUNDLE_V03,
        "verificationMaterial": {"publicKey": {"hint": base64.b64encode(hashlib.sha256(der).digest()).decode()},
                                 "tlogEntries": []},
        "dsseEnvelope": {"payload": base64.b64encode(payload).decode(), "payloadType": INTOTO_PAYLOAD_TYPE,
                         "signatures": [{"sig": base64.b64encode(signature).decode()}]},
    }
    return json.dumps(bundle, separators=(",", ":")).encode()


def _spki() -> tuple[Any, Any]:
    from cryptography.hazmat.primitives import serialization

    return serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo


def sign_bundle(store: Reader, subject: Descriptor, key: PrivateKeyType, name: str) -> Signed:
    pusher = require(store, Pusher, "be signed into")
    layer = push_bytes(store, pusher, bundle_bytes(subject, key, name), SIGSTORE_BUNDLE_V03)
    config = push_bytes(store, pusher, b"{}", mt.OCI_EMPTY)
    annotations = {BUNDLE_CONTENT_ANNOTATION: "dsse-envelope", BUNDLE_PREDICATE_ANNOTATION: COSIGN_SIGN_PREDICATE,
                   ANNOTATION_CREATED: datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    raw = manifest_bytes(config, [Descriptor(layer.media_type, layer.digest, layer.size)],
                         artifact_type=SIGSTORE_BUNDLE_V03, annotations=annotations, subject=subject)
    desc = Descriptor(mt.OCI_MANIFEST, Digest.of(raw), len(raw), artifact_type=SIGSTORE_BUNDLE_V03)
    pusher.push(desc, io.BytesIO(raw))  # a registry lists it (its referrers API, else the fallback tag)
    record_referrer(store, desc, parse_document(raw, desc.media_type))  # a layout, as an index.json entry
    return Signed(subject, "bundle", desc, store.pinned(desc), None)


def public_key_pem(key: PrivateKeyType) -> bytes:
    return public_pem(public_key(key))
