"""The media types, annotations and names signatures are found by, and the sizes read of them.

Every signature blob is bounded before it is read: its descriptor's size is
checked against these caps first, and the read itself is held to the size.
"""

from __future__ import annotations

from .._core.digest import Digest

COSIGN_SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
COSIGN_SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
COSIGN_CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate"
COSIGN_CHAIN_ANNOTATION = "dev.sigstore.cosign/chain"
COSIGN_BUNDLE_ANNOTATION = "dev.sigstore.cosign/bundle"
COSIGN_SIGNATURE_TYPE = "cosign container image signature"  # critical.type of a simple-signing payload

SIGSTORE_BUNDLE_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"
SIGSTORE_BUNDLE_TYPES = (SIGSTORE_BUNDLE_V03, "application/vnd.dev.sigstore.bundle+json;version=0.3")
BUNDLE_CONTENT_ANNOTATION = "dev.sigstore.bundle.content"
BUNDLE_PREDICATE_ANNOTATION = "dev.sigstore.bundle.predicateType"
COSIGN_SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"
INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"

NOTARY_SIGNATURE = "application/vnd.cncf.notary.signature"
NOTARY_PAYLOAD = "application/vnd.cncf.notary.payload.v1+json"
JWS_ENVELOPE = "application/jose+json"
COSE_ENVELOPE = "application/cose"
NOTARY_ENVELOPES = (JWS_ENVELOPE, COSE_ENVELOPE)

MAX_PAYLOAD_BYTES = 1024 * 1024  # a simple-signing payload, a bundle, a notation envelope
MAX_ANNOTATION_CHARS = 1024 * 1024  # a base64 signature or PEM certificate in an annotation
MAX_SIGNATURES = 64  # signatures tried per place (layers of a .sig manifest, referrers of one kind)


def signature_tag(digest: Digest) -> str:
    """cosign's legacy tag for the signatures of `digest`: `sha256-<hex>.sig`."""
    return f"{digest.algorithm}-{digest.hex}.sig"
