"""DSSE envelopes and the in-toto statements in them: what a sigstore bundle of cosign's signs.

cosign's bundle signature (`cosign sign --new-bundle-format`) is a DSSE
envelope over an in-toto statement whose subject is the image's digest and
whose predicate type is `https://sigstore.dev/cosign/sign/v1`; attestations
are the same with another predicate. As with cosign and Flux, a statement
vouches for a digest when one of its subjects has exactly that digest.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, NamedTuple

from .._core import jsontext
from .._core.digest import Digest
from .._core.errors import OcisiftError
from .formats import INTOTO_PAYLOAD_TYPE
from .outcome import Refused
from .simplesigning import repository_name

STATEMENT_TYPES = ("https://in-toto.io/Statement/v0.1", "https://in-toto.io/Statement/v1")


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what the signature is over."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise Refused(f"{what} is not a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise Refused(f"{what} is not base64") from None


class Envelope(NamedTuple):  # a named tuple, as keys.NamedKey says why
    payload_type: str
    payload: bytes
    signatures: tuple[bytes, ...]


def parse_envelope(obj: Any) -> Envelope:
    if not isinstance(obj, dict):
        raise Refused("dsseEnvelope is not an object")
    payload_type = obj.get("payloadType")
    if not isinstance(payload_type, str):
        raise Refused("dsseEnvelope has no payloadType")
    sigs = obj.get("signatures")
    if not isinstance(sigs, list) or not sigs or not all(isinstance(s, dict) for s in sigs):
        raise Refused("dsseEnvelope has no signatures")
    return Envelope(payload_type, b64(obj.get("payload"), "dsseEnvelope.payload"),
                    tuple(b64(s.get("sig"), "dsseEnvelope signature") for s in sigs[:16]))


def check_statement(payload_type: str, payload: bytes, digest: Digest, repository: str | None = None) -> str:
    """The statement's predicate type, when it is an in-toto statement naming `digest` among its subjects
    (and, when `repository` is to be matched, naming it as that subject's `name`, which cosign writes as
    `host/repository`: the bundle's counterpart of a simple-signing payload's docker-reference)."""
    if payload_type != INTOTO_PAYLOAD_TYPE:
        raise Refused(f"DSSE payload type is {payload_type[:100]!r}, not an in-toto statement")
    try:
        doc = jsontext.loads(payload, max_values=100_000)
    except (ValueError, OcisiftError):
        raise Refused("in-toto statement is not JSON") from None
    if not isinstance(doc, dict) or doc.get("_type") not in STATEMENT_TYPES:
        raise Refused("DSSE payload is not an in-toto statement")
    subjects = doc.get("subject")
    if not isinstance(subjects, list):
        raise Refused("in-toto statement has no subject list")
    listed = [s for s in subjects[:1000] if isinstance(s, dict) and isinstance(s.get("digest"), dict)]
    named = [s["digest"].get(digest.algorithm) for s in listed]
    if digest.hex not in named:
        shown = ", ".join(str(n)[:80] for n in named[:3]) or "nothing"
        raise Refused(f"statement's subjects are {shown}, not {digest} (a signature of other content)")
    if repository is not None:
        names = [s.get("name") for s in listed if s["digest"].get(digest.algorithm) == digest.hex]
        wanted = repository_name(repository)
        if not any(isinstance(n, str) and repository_name(n) == wanted for n in names):
            shown = ", ".join(str(n)[:200] for n in names if n is not None) or "no name"
            raise Refused(f"statement's subject {digest} names {shown}, not {repository}")
    predicate = doc.get("predicateType")
    return predicate if isinstance(predicate, str) else "(no predicate type)"
