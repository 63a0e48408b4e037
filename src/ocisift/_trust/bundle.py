"""Sigstore bundles (v0.3) signed with a key: cosign's `--new-bundle-format` referrers, checked here.

A keyless bundle (a Fulcio certificate, a Rekor entry) goes to `keyless`,
which has the sigstore library check it. A bundle signed with a key carries
`publicKey` instead of a certificate; its DSSE envelope (or message signature
over the digest) is checked against the keys given. As Flux does with keys,
the transparency-log entries such a bundle may carry are not required.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from .._core import jsontext
from .._core.digest import Digest
from .._core.errors import OcisiftError
from .dsse import b64, check_statement, pae, parse_envelope
from .formats import MAX_PAYLOAD_BYTES, SIGSTORE_BUNDLE_TYPES
from .keys import NamedKey, verify_prehashed, verify_signature
from .outcome import Refused


class ParsedBundle(NamedTuple):  # a named tuple, as keys.NamedKey says why
    raw: bytes
    doc: dict[str, Any]

    @property
    def keyless(self) -> bool:
        material = self.doc.get("verificationMaterial")
        return isinstance(material, dict) and ("certificate" in material or "x509CertificateChain" in material)


def parse_bundle(raw: bytes) -> ParsedBundle:
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise Refused(f"bundle of {len(raw)} bytes is over the {MAX_PAYLOAD_BYTES} a bundle may have")
    try:
        doc = jsontext.loads(raw, max_values=200_000)
    except (ValueError, OcisiftError):
        raise Refused("bundle is not JSON") from None
    if not isinstance(doc, dict):
        raise Refused("bundle is not a JSON object")
    media_type = doc.get("mediaType")
    if media_type not in SIGSTORE_BUNDLE_TYPES:
        raise Refused(f"bundle media type {str(media_type)[:100]!r} is not sigstore's v0.3")
    if not isinstance(doc.get("verificationMaterial"), dict):
        raise Refused("bundle has no verificationMaterial")
    return ParsedBundle(raw, doc)


def check_with_keys(bundle: ParsedBundle, digest: Digest, keys: Sequence[NamedKey],
                    repository: str | None = None) -> tuple[NamedKey, str]:
    """The key that signed the bundle and what it signed (a predicate type, or `message signature`); with
    `repository`, the statement must name it (dsse.check_statement)."""
    if bundle.keyless:
        raise Refused("bundle is signed keyless (a certificate), and only keys were given")
    envelope = bundle.doc.get("dsseEnvelope")
    if envelope is not None:
        parsed = parse_envelope(envelope)
        predicate = check_statement(parsed.payload_type, parsed.payload, digest, repository)  # before any key
        signed = pae(parsed.payload_type, parsed.payload)
        for key in keys:
            if any(verify_signature(key.key, sig, signed) for sig in parsed.signatures):
                return key, predicate
        raise Refused(_no_key(keys))
    message = bundle.doc.get("messageSignature")
    if not isinstance(message, dict):
        raise Refused("bundle holds neither a DSSE envelope nor a message signature")
    if repository is not None:
        raise Refused(no_repository(repository))
    claimed = message.get("messageDigest")
    if digest.algorithm != "sha256" or not isinstance(claimed, dict) or claimed.get("algorithm") != "SHA2_256" \
            or b64(claimed.get("digest"), "messageDigest") != bytes.fromhex(digest.hex):
        raise Refused(f"message signature is over another digest than {digest} (a signature of other content)")
    signature = b64(message.get("signature"), "messageSignature.signature")
    for key in keys:
        if verify_prehashed(key.key, signature, bytes.fromhex(digest.hex)):
            return key, "message signature"
    raise Refused(_no_key(keys))


def no_repository(repository: str) -> str:
    return f"a message signature names no repository, and {repository} was to be matched"


def _no_key(keys: Sequence[NamedKey]) -> str:
    names = ", ".join(f"{k.name} ({k.algorithm})" for k in keys)
    return f"signature does not verify with {names}"
