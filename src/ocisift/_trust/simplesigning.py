"""cosign's simple-signing payload: what a legacy `.sig` signature signs, read and written byte for byte.

A payload counts for a digest only when its `critical.type` is cosign's and
its `critical.image.docker-manifest-digest` is that digest; with a reference
to match, `critical.identity.docker-reference` must name its repository. The
signature is over the payload's exact bytes, so they are never re-serialised.
Written as sigstore's Go code writes it (struct order, `optional` a sorted map
or null), so cosign reads what ocisift signs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NamedTuple

from .._core import jsontext
from .._core.digest import Digest
from .._core.errors import OcisiftError
from .._core.reference import parse_image_name
from .formats import COSIGN_SIGNATURE_TYPE, MAX_PAYLOAD_BYTES
from .outcome import Refused


class SimpleSigning(NamedTuple):  # a named tuple, as keys.NamedKey says why
    digest: str
    docker_reference: str | None
    type: str
    optional: Mapping[str, Any] | None


def parse_payload(raw: bytes) -> SimpleSigning:
    """The fields a check reads; anything else about the payload is refused with its reason."""
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise Refused(f"payload of {len(raw)} bytes is over the {MAX_PAYLOAD_BYTES} a payload may have")
    try:
        doc = jsontext.loads(raw, max_values=100_000)
    except (ValueError, OcisiftError):
        raise Refused("payload is not JSON") from None
    critical = doc.get("critical") if isinstance(doc, dict) else None
    if not isinstance(critical, dict):
        raise Refused("payload has no `critical` object: not a simple-signing payload")
    kind = critical.get("type")
    image = critical.get("image")
    identity = critical.get("identity")
    digest = image.get("docker-manifest-digest") if isinstance(image, dict) else None
    reference = identity.get("docker-reference") if isinstance(identity, dict) else None
    optional = doc.get("optional")
    if not isinstance(kind, str) or not isinstance(digest, str):
        raise Refused("payload lacks critical.type or critical.image.docker-manifest-digest")
    if reference is not None and not isinstance(reference, str):
        raise Refused("payload's critical.identity.docker-reference is not a string")
    return SimpleSigning(digest, reference, kind, optional if isinstance(optional, dict) else None)


def check_payload(raw: bytes, digest: Digest, repository: str | None = None) -> SimpleSigning:
    """The payload, when it vouches for `digest` (and names `repository`, when one is to be matched)."""
    payload = parse_payload(raw)
    if payload.type != COSIGN_SIGNATURE_TYPE:
        raise Refused(f"payload's critical.type is {payload.type[:100]!r}, not {COSIGN_SIGNATURE_TYPE!r}")
    if payload.digest != str(digest):
        raise Refused(f"payload signs {payload.digest[:100]}, not {digest} (a signature of other content)")
    if repository is not None:
        named = payload.docker_reference
        if named is None:
            raise Refused(f"payload names no docker-reference, and {repository} was to be matched")
        if repository_name(named) != repository_name(repository):
            raise Refused(f"payload names {named[:200]}, not {repository}")
    return payload


def repository_name(text: str) -> str:
    """host/repository, normalised as Docker does (docker.io/library/…), without a tag or digest."""
    try:
        return parse_image_name(text, default_tag=None).name
    except OcisiftError:
        return text


def build_payload(digest: Digest, docker_reference: str, annotations: Mapping[str, str] | None = None) -> bytes:
    """The payload `cosign sign` writes for `digest` in the repository `docker_reference`."""
    critical = {
        "identity": {"docker-reference": docker_reference},
        "image": {"docker-manifest-digest": str(digest)},
        "type": COSIGN_SIGNATURE_TYPE,
    }
    optional = dict(sorted(annotations.items())) if annotations else None
    return json.dumps({"critical": critical, "optional": optional}, separators=(",", ":")).encode()
