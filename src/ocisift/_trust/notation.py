"""Notation: JWS and COSE signature envelopes, its trust store and its trust policy, checked as notation does.

- Envelope: JWS (`application/jose+json`, flattened JSON serialisation) or
  COSE_Sign1 (`application/cose`); algorithms PS256/384/512 and ES256/384/512;
  the certificate chain is carried in it (x5c / x5chain), leaf first. The
  payload `{"targetArtifact": descriptor}` must name the exact digest and
  size being verified.
- Chain: checked in the order given, as notation-core-go does: each
  certificate signed by the next, each issuer a CA, the leaf for digital
  signatures (and code signing, when it says), every one valid now. Its last
  certificate must be one of the trust store's (`x509/ca/NAME/…` under the
  store directory).
- Trust policy (`trustpolicy.json`, version 1.0): the policy whose
  `registryScopes` names the repository, else the one with `*`; its
  `signatureVerification.level` (strict, permissive, audit, skip, with
  `override`) decides which failures are enforced and which only logged;
  `trustedIdentities` are `*` or `x509.subject: DN` whose attributes the leaf's
  subject must all carry.

Not covered (said in the README): timestamp countersignatures (RFC 3161) and
revocation (OCSP, CRL), which need authorities on the network; the
`notary.x509.signingAuthority` scheme, which needs them too.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import cbor2
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.x509.oid import ExtendedKeyUsageOID

from .._core import jsontext
from .._core.digest import Digest
from .._core.errors import OcisiftError, UsageError
from .formats import COSE_ENVELOPE, JWS_ENVELOPE, MAX_PAYLOAD_BYTES, NOTARY_PAYLOAD
from .keys import MAX_KEY_FILE_BYTES, VerifyingECDSA
from .outcome import Refused

LEVELS = ("strict", "permissive", "audit", "skip")
CHECKS = ("integrity", "authenticity", "authenticTimestamp", "expiry", "revocation")
# What each level does with a failure of each check: enforce it, or log it (notation's table).
_ACTIONS = {
    "strict": dict.fromkeys(CHECKS, "enforce"),
    "permissive": {"integrity": "enforce", "authenticity": "enforce", "authenticTimestamp": "log",
                   "expiry": "log", "revocation": "log"},
    "audit": {"integrity": "enforce", "authenticity": "log", "authenticTimestamp": "log", "expiry": "log",
              "revocation": "log"},
}
_JWS_ALGS: dict[str, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]] = {"PS256": hashes.SHA256, "PS384": hashes.SHA384, "PS512": hashes.SHA512,
             "ES256": hashes.SHA256, "ES384": hashes.SHA384, "ES512": hashes.SHA512}
_COSE_ALGS = {-37: "PS256", -38: "PS384", -39: "PS512", -7: "ES256", -35: "ES384", -36: "ES512"}
_DN_NAMES = {"C": x509.NameOID.COUNTRY_NAME, "ST": x509.NameOID.STATE_OR_PROVINCE_NAME,
             "L": x509.NameOID.LOCALITY_NAME, "O": x509.NameOID.ORGANIZATION_NAME,
             "OU": x509.NameOID.ORGANIZATIONAL_UNIT_NAME, "CN": x509.NameOID.COMMON_NAME}
MAX_POLICY_BYTES = 1024 * 1024
MAX_STORE_CERTS = 1000
MAX_CHAIN = 10


# -- trust policy ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class NotationPolicy:
    name: str
    scopes: tuple[str, ...]
    level: str
    actions: Mapping[str, str]
    stores: tuple[tuple[str, str], ...]  # (type, name)
    identities: tuple[Mapping[str, str] | None, ...]  # None is `*`


@dataclass(frozen=True)
class TrustPolicyDocument:
    path: str
    policies: tuple[NotationPolicy, ...]

    def for_scope(self, scope: str) -> NotationPolicy:
        for policy in self.policies:
            if scope in policy.scopes:
                return policy
        for policy in self.policies:
            if "*" in policy.scopes:
                return policy
        raise Refused(f"no trust policy of {self.path} has {scope} or * among its registryScopes")


def load_trust_policy(path: str) -> TrustPolicyDocument:
    try:
        if os.path.getsize(path) > MAX_POLICY_BYTES:
            raise UsageError(f"{path}: too large for a trust policy")
        with open(path, "rb") as fh:
            doc = jsontext.loads(fh.read(MAX_POLICY_BYTES + 1), max_values=100_000)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such trust policy file") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the trust policy: {exc.strerror or exc}") from None
    except (ValueError, OcisiftError):
        raise UsageError(f"{path}: the trust policy is not JSON") from None
    return parse_trust_policy(doc, path)


def parse_trust_policy(doc: Any, path: str) -> TrustPolicyDocument:
    def bad(message: str) -> UsageError:
        return UsageError(f"{path}: {message}")

    if not isinstance(doc, dict) or doc.get("version") != "1.0":
        raise bad('expected notation\'s trust policy: {"version": "1.0", "trustPolicies": […]}')
    entries = doc.get("trustPolicies")
    if not isinstance(entries, list) or not entries:
        raise bad("trustPolicies must be a non-empty list")
    policies: list[NotationPolicy] = []
    seen_names: set[str] = set()
    seen_scopes: set[str] = set()
    for i, entry in enumerate(entries):
        where = f"trustPolicies[{i}]"
        if not isinstance(entry, dict):
            raise bad(f"{where} is not an object")
        name = entry.get("name")
        if not isinstance(name, str) or not name or name in seen_names:
            raise bad(f"{where}.name must be a unique non-empty string")
        seen_names.add(name)
        scopes = entry.get("registryScopes")
        if not isinstance(scopes, list) or not scopes or not all(isinstance(s, str) and s for s in scopes):
            raise bad(f"{where}.registryScopes must be a non-empty list of repositories or \"*\"")
        if "*" in scopes and len(scopes) > 1:
            raise bad(f"{where}.registryScopes: \"*\" must stand alone")
        for scope in scopes:
            if scope in seen_scopes:
                raise bad(f"{where}.registryScopes: {scope!r} is in two policies")
            seen_scopes.add(scope)
        verification = entry.get("signatureVerification")
        level = verification.get("level") if isinstance(verification, dict) else None
        if level not in LEVELS:
            raise bad(f"{where}.signatureVerification.level must be one of {', '.join(LEVELS)}")
        assert isinstance(verification, dict) and isinstance(level, str)
        actions = dict(_ACTIONS.get(level, {}))
        override = verification.get("override") or {}
        if not isinstance(override, dict):
            raise bad(f"{where}.signatureVerification.override must be an object")
        for check, action in override.items():
            if check not in CHECKS or check == "integrity" or action not in ("enforce", "log", "skip"):
                raise bad(f"{where}: override {check}: {action} is not allowed (integrity is always enforced)")
            actions[check] = action
        stores = entry.get("trustStores", [])
        identities = entry.get("trustedIdentities", [])
        if level == "skip":
            if stores or identities:
                raise bad(f"{where}: a skip policy takes no trustStores or trustedIdentities")
            policies.append(NotationPolicy(name, tuple(scopes), level, actions, (), ()))
            continue
        if not isinstance(stores, list) or not stores or not all(isinstance(s, str) for s in stores):
            raise bad(f"{where}.trustStores must list stores as \"ca:NAME\"")
        parsed_stores = []
        for store in stores:
            kind, sep, store_name = store.partition(":")
            if not sep or kind not in ("ca", "signingAuthority") or not store_name or "/" in store_name \
                    or store_name in (".", ".."):
                raise bad(f"{where}.trustStores: {store!r} is not ca:NAME or signingAuthority:NAME")
            parsed_stores.append((kind, store_name))
        if not isinstance(identities, list) or not identities:
            raise bad(f"{where}.trustedIdentities must list \"*\" or \"x509.subject: DN\" entries")
        parsed_identities: list[Mapping[str, str] | None] = []
        for identity in identities:
            if identity == "*":
                parsed_identities.append(None)
                continue
            prefix, sep, dn = str(identity).partition(":")
            if prefix.strip() != "x509.subject" or not sep:
                raise bad(f"{where}.trustedIdentities: {str(identity)[:200]!r} is not \"x509.subject: DN\"")
            parsed_identities.append(parse_dn(dn, path))
        if None in parsed_identities and len(parsed_identities) > 1:
            raise bad(f"{where}.trustedIdentities: \"*\" must stand alone")
        policies.append(NotationPolicy(name, tuple(scopes), level, actions, tuple(parsed_stores),
                                       tuple(parsed_identities)))
    return TrustPolicyDocument(path, tuple(policies))


def parse_dn(text: str, path: str) -> dict[str, str]:
    """`C=US, ST=WA, O=Acme, CN=signer` (commas inside values escaped as `\\,`)."""
    parts: list[str] = []
    current = ""
    escaped = False
    for char in text:
        if escaped:
            current += char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ",":
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    out: dict[str, str] = {}
    for part in parts:
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in _DN_NAMES or key in out:
            raise UsageError(f"{path}: x509.subject {text.strip()[:200]!r}: each attribute once, of "
                             f"{', '.join(_DN_NAMES)}")
        out[key] = value.strip()
    if not {"C", "ST", "O"} <= out.keys():
        raise UsageError(f"{path}: x509.subject {text.strip()[:200]!r} must give at least C, ST and O")
    return out


# -- trust store ----------------------------------------------------------------------------------------

@dataclass
class TrustStore:
    """The `x509/{ca,signingAuthority}/NAME/` directories under a notation trust store, read when asked."""

    root: str
    _cache: dict[tuple[str, str], list[x509.Certificate]] = field(default_factory=dict)

    def certificates(self, kind: str, name: str) -> list[x509.Certificate]:
        key = (kind, name)
        if key not in self._cache:
            self._cache[key] = self._read(kind, name)
        return self._cache[key]

    def _read(self, kind: str, name: str) -> list[x509.Certificate]:
        folder = os.path.join(self.root, "x509", kind, name)
        if not os.path.isdir(folder) or os.path.islink(folder):
            raise Refused(f"trust store {kind}:{name} is not a directory under {self.root}/x509/{kind}")
        certs: list[x509.Certificate] = []
        for entry in sorted(os.listdir(folder))[:MAX_STORE_CERTS]:
            path = os.path.join(folder, entry)
            if os.path.islink(path) or not os.path.isfile(path):
                continue  # notation refuses links and directories in a trust store too
            if os.path.getsize(path) > MAX_KEY_FILE_BYTES * 16:
                raise Refused(f"{path} is too large for a certificate file")
            with open(path, "rb") as fh:
                certs.extend(_certificates(fh.read(), path))
        if not certs:
            raise Refused(f"trust store {kind}:{name} ({folder}) holds no certificate")
        return certs


def _certificates(data: bytes, path: str) -> list[x509.Certificate]:
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]
    except ValueError:
        raise Refused(f"{path} in the trust store is not a PEM or DER certificate") from None


# -- envelopes ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Envelope:
    algorithm: str
    signed: bytes  # what the signature is over
    signature: bytes
    payload: bytes
    content_type: str | None
    scheme: str | None
    signing_time: datetime | None
    expiry: datetime | None
    chain: tuple[x509.Certificate, ...]


def _b64url(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise Refused(f"JWS {what} is not a string")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise Refused(f"JWS {what} is not base64url") from None


def _chain(ders: Any, what: str) -> tuple[x509.Certificate, ...]:
    if isinstance(ders, bytes | str):
        ders = [ders]
    if not isinstance(ders, list | tuple) or not ders:
        raise Refused(f"{what}: no certificate chain in the envelope")
    if len(ders) > MAX_CHAIN:
        raise Refused(f"{what}: a chain of {len(ders)} certificates (at most {MAX_CHAIN})")
    out = []
    for der in ders:
        try:
            raw = base64.b64decode(der, validate=True) if isinstance(der, str) else der
            out.append(x509.load_der_x509_certificate(raw))
        except (binascii.Error, ValueError, TypeError):
            raise Refused(f"{what}: a certificate of the chain does not parse") from None
    return tuple(out)


def _time(value: Any, what: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise Refused(f"{what} {value[:60]!r} is not an RFC 3339 time") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError):  # 1e300, 10**20, NaN: no time a datetime holds
            raise Refused(f"{what} {str(value)[:40]} is out of the range of times") from None
    raise Refused(f"{what} is not a time")


def parse_jws(raw: bytes) -> Envelope:
    try:
        doc = jsontext.loads(raw, max_values=100_000)
    except (ValueError, OcisiftError):
        raise Refused("JWS envelope is not JSON") from None
    if not isinstance(doc, dict):
        raise Refused("JWS envelope is not a JSON object (the flattened serialisation)")
    protected_b64, payload_b64 = doc.get("protected"), doc.get("payload")
    protected_raw = _b64url(protected_b64, "protected header")
    try:
        protected = jsontext.loads(protected_raw, max_values=10_000)
    except (ValueError, OcisiftError):
        raise Refused("JWS protected header is not JSON") from None
    if not isinstance(protected, dict):
        raise Refused("JWS protected header is not an object")
    header = doc.get("header")
    if not isinstance(header, dict):
        raise Refused("JWS envelope has no unprotected header (with its x5c chain)")
    algorithm = protected.get("alg")
    if not isinstance(algorithm, str) or algorithm not in _JWS_ALGS:  # a list or an object is no name either
        raise Refused(f"JWS algorithm {str(algorithm)[:40]!r} is not one notation signs with")
    _check_critical(protected, protected.get("crit"))
    if not isinstance(protected_b64, str) or not isinstance(payload_b64, str):
        raise Refused("JWS payload is not a string")
    return Envelope(
        algorithm=algorithm, signed=f"{protected_b64}.{payload_b64}".encode("ascii", "replace"),
        signature=_b64url(doc.get("signature"), "signature"), payload=_b64url(payload_b64, "payload"),
        content_type=protected.get("cty") if isinstance(protected.get("cty"), str) else None,
        scheme=_text(protected.get("io.cncf.notary.signingScheme")),
        signing_time=_time(protected.get("io.cncf.notary.signingTime"), "signing time"),
        expiry=_time(protected.get("io.cncf.notary.expiry"), "expiry"),
        chain=_chain(header.get("x5c"), "JWS"))


def parse_cose(raw: bytes) -> Envelope:
    try:
        outer = cbor2.loads(raw)
        value = outer.value if isinstance(outer, cbor2.CBORTag) and outer.tag == 18 else outer
        protected_raw, unprotected, payload, signature = value
        protected = cbor2.loads(protected_raw) if protected_raw else {}
    except Exception:  # cbor2 raises many kinds on hostile bytes; none may escape
        raise Refused("COSE envelope is not a COSE_Sign1 structure") from None
    if not all(isinstance(v, bytes) for v in (protected_raw, payload, signature)) \
            or not isinstance(protected, Mapping) or not isinstance(unprotected, Mapping):
        raise Refused("COSE envelope is not a COSE_Sign1 structure")
    number = protected.get(1)
    algorithm = _COSE_ALGS.get(number) if isinstance(number, int) and not isinstance(number, bool) else None
    if algorithm is None:
        raise Refused(f"COSE algorithm {str(protected.get(1))[:40]} is not one notation signs with")
    _check_critical(protected, protected.get(2))
    signed = cbor2.dumps(["Signature1", protected_raw, b"", payload])
    return Envelope(
        algorithm=algorithm, signed=signed, signature=signature, payload=payload,
        content_type=_text(protected.get(3)), scheme=_text(protected.get("io.cncf.notary.signingScheme")),
        signing_time=_time(protected.get("io.cncf.notary.signingTime"), "signing time"),
        expiry=_time(protected.get("io.cncf.notary.expiry"), "expiry"),
        chain=_chain(unprotected.get(33), "COSE"))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _check_critical(protected: Mapping[Any, Any], critical: Any) -> None:
    """Every critical header must be understood, and notation's scheme must be marked critical."""
    known = {"io.cncf.notary.signingScheme", "io.cncf.notary.expiry", "io.cncf.notary.authenticSigningTime"}
    if not isinstance(critical, list) or "io.cncf.notary.signingScheme" not in critical:
        raise Refused("envelope does not mark io.cncf.notary.signingScheme critical")
    for name in critical:
        if not isinstance(name, str) or name not in known or name not in protected:
            raise Refused(f"envelope has a critical header {str(name)[:80]!r} it lacks or notation does not know")


def parse_envelope(raw: bytes, media_type: str) -> Envelope:
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise Refused(f"envelope of {len(raw)} bytes is over the {MAX_PAYLOAD_BYTES} an envelope may have")
    if media_type == JWS_ENVELOPE:
        return parse_jws(raw)
    if media_type == COSE_ENVELOPE:
        return parse_cose(raw)
    raise Refused(f"envelope media type {media_type[:100]!r} is neither JWS nor COSE")


def _signature_valid(envelope: Envelope) -> bool:
    algorithm = _JWS_ALGS[envelope.algorithm]()
    try:
        key = envelope.chain[0].public_key()  # a key algorithm cryptography does not know is no signature
        if envelope.algorithm.startswith("PS"):
            if not isinstance(key, rsa.RSAPublicKey):
                return False
            key.verify(envelope.signature, envelope.signed,
                       padding.PSS(mgf=padding.MGF1(algorithm), salt_length=algorithm.digest_size), algorithm)
            return True
        if not isinstance(key, ec.EllipticCurvePublicKey):
            return False
        half = len(envelope.signature) // 2
        if half == 0 or len(envelope.signature) % 2:
            return False
        der = utils.encode_dss_signature(int.from_bytes(envelope.signature[:half], "big"),
                                         int.from_bytes(envelope.signature[half:], "big"))
        key.verify(der, envelope.signed, VerifyingECDSA(algorithm))
        return True
    except (InvalidSignature, ValueError, UnsupportedAlgorithm):
        return False


# -- verification ---------------------------------------------------------------------------------------

@dataclass
class NotationResult:
    signer: str
    notes: list[str]


def verify_envelope(raw: bytes, media_type: str, digest: Digest, size: int, scope: str,
                    document: TrustPolicyDocument, store: TrustStore, now: datetime | None = None) -> NotationResult:
    """Check one envelope for the manifest `digest` of `size` bytes in repository `scope`; Refused if it
    does not count. Failures the policy only logs come back as notes."""
    policy = document.for_scope(scope)
    if policy.level == "skip":
        return NotationResult(f"trust policy {policy.name} (skip)", [f"trust policy {policy.name} skips verification"])
    now = now or datetime.now(UTC)
    envelope = parse_envelope(raw, media_type)
    notes: list[str] = []

    def failed(check: str, reason: str) -> None:
        action = policy.actions.get(check, "enforce")
        if action == "enforce":
            raise Refused(reason)
        if action == "log":
            notes.append(f"{reason} ({check} is logged only, by trust policy {policy.name})")

    # integrity: always enforced
    if envelope.content_type != NOTARY_PAYLOAD:
        raise Refused(f"envelope content type is {str(envelope.content_type)[:100]!r}, not {NOTARY_PAYLOAD}")
    if envelope.scheme != "notary.x509":
        raise Refused(f"signing scheme {str(envelope.scheme)[:60]!r} is not notary.x509 (signingAuthority needs "
                      "a timestamp authority, which is not supported)")
    if not _signature_valid(envelope):
        raise Refused(f"{envelope.algorithm} signature does not verify with the envelope's signing certificate")
    _check_payload(envelope.payload, digest, size)
    # authenticity: the chain, to a certificate of the policy's trust stores, and the identity
    leaf = envelope.chain[0]
    try:
        _check_chain(envelope.chain, now)
        trusted = [c for kind, name in policy.stores for c in store.certificates(kind, name)]
        root = envelope.chain[-1]
        if not any(root.public_bytes(serialization.Encoding.DER) == c.public_bytes(serialization.Encoding.DER)
                   for c in trusted):
            stores = ", ".join(f"{k}:{n}" for k, n in policy.stores)
            raise Refused(f"certificate chain ends at {root.subject.rfc4514_string()[:200]}, which is not in trust "
                          f"store {stores}")
        if not any(identity is None or _subject_has(leaf, identity) for identity in policy.identities):
            raise Refused(f"signing certificate {leaf.subject.rfc4514_string()[:200]} is not a trusted identity "
                          f"of trust policy {policy.name}")
    except Refused as exc:
        failed("authenticity", exc.reason)
    # authentic timestamp: without a timestamp authority the chain must be valid now
    for cert in envelope.chain:
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            failed("authenticTimestamp", f"certificate {cert.subject.rfc4514_string()[:200]} is not valid now "
                   f"({cert.not_valid_before_utc:%Y-%m-%d} to {cert.not_valid_after_utc:%Y-%m-%d}) and the "
                   "signature carries no timestamp countersignature")
            break
    if envelope.expiry is not None and envelope.expiry < now:
        failed("expiry", f"signature expired at {envelope.expiry.isoformat()}")
    if envelope.signing_time is not None and envelope.signing_time > now:
        failed("authenticTimestamp", f"signing time {envelope.signing_time.isoformat()} is in the future")
    return NotationResult(f"{leaf.subject.rfc4514_string()[:300]} (trust policy {policy.name}, {policy.level})",
                          notes)


def _check_payload(payload: bytes, digest: Digest, size: int) -> None:
    try:
        doc = jsontext.loads(payload, max_values=10_000)
    except (ValueError, OcisiftError):
        raise Refused("notation payload is not JSON") from None
    target = doc.get("targetArtifact") if isinstance(doc, dict) else None
    if not isinstance(target, dict):
        raise Refused("notation payload has no targetArtifact")
    if target.get("digest") != str(digest):
        raise Refused(f"signature is for {str(target.get('digest'))[:100]}, not {digest} (a signature of other "
                      "content)")
    if target.get("size") != size:
        raise Refused(f"signature's target size {str(target.get('size'))[:20]} is not the manifest's {size}")


def _check_chain(chain: tuple[x509.Certificate, ...], now: datetime) -> None:
    """Each certificate issued by the next (signature, CA constraint); the leaf fit for code signing."""
    for child, issuer in itertools.pairwise(chain):
        try:
            child.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature):
            raise Refused(f"certificate {child.subject.rfc4514_string()[:200]} is not issued by the next one of "
                          "the chain") from None
        if not _is_ca(issuer):
            raise Refused(f"certificate {issuer.subject.rfc4514_string()[:200]} issues a certificate but is no CA")
    last = chain[-1]
    if len(chain) > 1 or last.issuer == last.subject:
        try:
            last.verify_directly_issued_by(last)
        except (ValueError, TypeError, InvalidSignature):
            if len(chain) == 1:
                raise Refused("the single certificate of the chain is not validly self-signed") from None
    leaf = chain[0]
    try:
        usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
        if not usage.digital_signature:
            raise Refused("signing certificate is not for digital signatures (key usage)")
    except x509.ExtensionNotFound:
        pass
    try:
        extended = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        if ExtendedKeyUsageOID.CODE_SIGNING not in extended:
            raise Refused("signing certificate is not for code signing (extended key usage)")
    except x509.ExtensionNotFound:
        pass


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _subject_has(cert: x509.Certificate, wanted: Mapping[str, str]) -> bool:
    for key, value in wanted.items():
        found = [a.value for a in cert.subject.get_attributes_for_oid(_DN_NAMES[key])]
        if value not in found:
            return False
    return True
