"""Keyless sigstore bundles, verified offline by the sigstore library against a given trusted root.

The library does what must not be hand-written: the certificate chain to a
Fulcio CA of the trusted root, valid at the time the log or a timestamp
authority vouches for; the embedded SCT against the root's CT logs; the Rekor
inclusion proof and checkpoint (and the signed entry timestamp) against its
Rekor keys; the entry's consistency with the signature; the signature itself.
This module adds what cosign and Flux ask on top: the signer's identity (a
SAN and the OIDC issuer, exact or by pattern) and, for DSSE, an in-toto
statement naming the digest. Nothing here touches the network.

The library costs most of a second to import, so only a keyless check imports
this module.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography import x509
from cryptography.x509.oid import ObjectIdentifier
from sigstore.errors import Error as SigstoreError
from sigstore.errors import VerificationError
from sigstore.hashes import Hashed
from sigstore.models import Bundle, TrustedRoot
from sigstore.verify import Verifier
from sigstore_models.common.v1 import HashAlgorithm

from .._core.digest import Digest
from .._core.errors import UsageError
from .._core.trustspec import IdentityMatch
from .bundle import ParsedBundle, no_repository
from .dsse import check_statement
from .keys import MAX_KEY_FILE_BYTES
from .outcome import Refused

ISSUER_V1 = ObjectIdentifier("1.3.6.1.4.1.57264.1.1")  # the issuer as raw bytes
ISSUER_V2 = ObjectIdentifier("1.3.6.1.4.1.57264.1.8")  # the issuer as a DER UTF8String
OTHERNAME_SAN = ObjectIdentifier("1.3.6.1.4.1.57264.1.7")
MAX_TRUSTED_ROOT_BYTES = 16 * MAX_KEY_FILE_BYTES * 16  # 16 MiB: a root lists many keys and certificates


def certificate_identity(cert: x509.Certificate) -> tuple[list[str], str | None]:
    """The SANs a keyless identity may be (e-mails, URIs, sigstore's other name) and the OIDC issuer."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], _issuer(cert)
    subjects = [*san.get_values_for_type(x509.RFC822Name), *san.get_values_for_type(x509.UniformResourceIdentifier)]
    for other in san.get_values_for_type(x509.OtherName):
        if other.type_id == OTHERNAME_SAN:
            subjects.append(_utf8(other.value) or other.value.decode(errors="replace"))
    return subjects, _issuer(cert)


def _issuer(cert: x509.Certificate) -> str | None:
    for oid, der in ((ISSUER_V2, True), (ISSUER_V1, False)):
        try:
            ext = cert.extensions.get_extension_for_oid(oid).value
        except x509.ExtensionNotFound:
            continue
        raw = ext.value if isinstance(ext, x509.UnrecognizedExtension) else b""
        text = _utf8(raw) if der else raw.decode(errors="replace")
        if text:
            return text
    return None


def _utf8(der: bytes) -> str | None:
    """A DER UTF8String's text (tag 12, short or long length)."""
    if len(der) < 2 or der[0] != 0x0C:
        return None
    length, start = der[1], 2
    if length & 0x80:
        count = length & 0x7F
        length, start = int.from_bytes(der[2:2 + count], "big"), 2 + count
    body = der[start:start + length]
    return body.decode(errors="replace") if len(body) == length else None


class _IdentityPolicy:
    """sigstore's VerificationPolicy for any one of the identities; remembers who signed."""

    def __init__(self, identities: Sequence[IdentityMatch]) -> None:
        self.identities = list(identities)
        self.signer = ""

    def verify(self, cert: x509.Certificate) -> None:
        subjects, issuer = certificate_identity(cert)
        for identity in self.identities:
            if identity.matches(subjects, issuer):
                self.signer = f"{', '.join(subjects)[:300]} (issuer {issuer})"
                return
        shown = ", ".join(subjects)[:300] or "no subject"
        wanted = "; ".join(str(i) for i in self.identities)[:500]
        raise VerificationError(f"certificate identity {shown} from issuer {issuer} is not {wanted}")


class KeylessTrust:
    """A trusted root and the identities accepted under it."""

    def __init__(self, trusted_root: str, identities: Sequence[IdentityMatch]) -> None:
        self.name = trusted_root
        try:
            import os

            if os.path.getsize(trusted_root) > MAX_TRUSTED_ROOT_BYTES:
                raise UsageError(f"{trusted_root}: too large for a trusted root")
            root = TrustedRoot.from_file(trusted_root)
            self.verifier = Verifier(trusted_root=root)
        except FileNotFoundError:
            raise UsageError(f"{trusted_root}: no such trusted root file") from None
        except OSError as exc:
            raise UsageError(f"{trusted_root}: cannot read the trusted root: {exc.strerror or exc}") from None
        except (SigstoreError, ValueError) as exc:
            raise UsageError(f"{trusted_root}: not a sigstore trusted_root.json ({exc})") from None
        self.identities = tuple(identities)

    def check(self, bundle: ParsedBundle, digest: Digest, repository: str | None = None) -> tuple[str, str]:
        """Who signed (identity and issuer) and what (a predicate type, or `message signature`); with
        `repository`, the statement must name it (dsse.check_statement), and a message signature cannot."""
        try:
            parsed = Bundle.from_json(bundle.raw)
        except (SigstoreError, ValueError) as exc:
            raise Refused(f"bundle is not one sigstore can verify: {str(exc)[:300]}") from None
        policy = _IdentityPolicy(self.identities)
        try:
            if bundle.doc.get("dsseEnvelope") is not None:
                payload_type, payload = self.verifier.verify_dsse(parsed, policy)
                what = check_statement(payload_type, payload, digest, repository)
            else:
                if repository is not None:
                    raise Refused(no_repository(repository))
                if digest.algorithm != "sha256":
                    raise Refused(f"a message signature covers a sha256 digest, not {digest}")
                hashed = Hashed(algorithm=HashAlgorithm.SHA2_256, digest=bytes.fromhex(digest.hex))
                self.verifier.verify_artifact(hashed, parsed, policy)
                what = "message signature"
        except (SigstoreError, ValueError) as exc:
            raise Refused(f"keyless verification against {self.name} failed: {str(exc)[:500]}") from None
        return policy.signer, what
