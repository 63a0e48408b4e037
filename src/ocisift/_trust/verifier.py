"""From what a user asked (a VerifySpec) to the checks, with keys, roots and policies loaded once.

A `Verifier` answers, for one signature at a time, whether it vouches for a
digest: who signed it, or `Refused` with the reason. It does not know where
signatures live; `_graph/verify.py` finds them in a store and hands each over.
"""

from __future__ import annotations

import base64
import binascii
import functools
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple

from cryptography.exceptions import UnsupportedAlgorithm

from .._core.digest import Digest
from .._core.trustspec import IdentityMatch, VerifySpec
from .formats import COSIGN_CERTIFICATE_ANNOTATION, COSIGN_SIGNATURE_ANNOTATION, MAX_ANNOTATION_CHARS
from .keys import NamedKey, load_public_key, verify_signature
from .outcome import Refused
from .simplesigning import check_payload

if TYPE_CHECKING:  # bundles, notation (x509, CBOR) and keyless (the sigstore library) are imported when met
    from .keyless import KeylessTrust
    from .notation import TrustPolicyDocument, TrustStore


class Vouched(NamedTuple):  # a named tuple, as keys.NamedKey says why
    """A signature that verified: by whom, what it signed, and what its policy only logged."""

    signer: str
    what: str = ""
    notes: tuple[str, ...] = ()


class Verifier:
    """The checks of one VerifySpec, for references in repository `repository` (its trust scope `scope`)."""

    def __init__(self, spec: VerifySpec, scope: str, repository: str | None = None) -> None:
        self.spec = spec
        self.scope = scope
        self.repository = repository if spec.match_reference else None
        self.keys: tuple[NamedKey, ...] = tuple(load_public_key(path) for path in spec.keys)
        self._policy: TrustPolicyDocument | None = None
        self._store: TrustStore | None = None
        if spec.provider == "notation":
            from .notation import TrustStore, load_trust_policy

            assert spec.trust_policy is not None and spec.trust_store is not None
            self._policy = load_trust_policy(spec.trust_policy)
            self._store = TrustStore(spec.trust_store)
        if spec.identities:
            self._keyless()  # a bad trusted root is a usage error now, not a refusal per signature

    @property
    def cosign(self) -> bool:
        return self.spec.provider == "cosign"

    @property
    def notation(self) -> bool:
        return self.spec.provider == "notation"

    def describe(self) -> str:
        if self.notation:
            return f"notation trust policy {self.spec.trust_policy} with trust store {self.spec.trust_store}"
        parts = [f"key {k.name}" for k in self.keys]
        parts += [f"keyless {i}" for i in self.spec.identities]
        return "cosign " + " or ".join(parts)

    def _keyless(self) -> KeylessTrust:
        assert self.spec.trusted_root is not None
        try:
            stat = os.stat(self.spec.trusted_root)
            changed = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        except OSError:
            changed = (0, 0, 0)  # KeylessTrust says what is wrong with it
        return _keyless_trust(self.spec.trusted_root, self.spec.identities, changed)

    def simple_signing(self, payload: bytes, annotations: Mapping[str, str], digest: Digest) -> Vouched:
        """A legacy `.sig` layer: its payload bytes and the layer's annotations."""
        if not self.cosign:
            raise Refused("a cosign signature, and notation verification was asked for")
        encoded = annotations.get(COSIGN_SIGNATURE_ANNOTATION)
        if encoded is None:
            raise Refused(f"layer has no {COSIGN_SIGNATURE_ANNOTATION} annotation")
        if len(encoded) > MAX_ANNOTATION_CHARS:
            raise Refused(f"signature annotation of {len(encoded)} characters is too long")
        try:
            signature = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise Refused(f"the {COSIGN_SIGNATURE_ANNOTATION} annotation is not base64") from None
        check_payload(payload, digest, self.repository)
        for key in self.keys:
            if verify_signature(key.key, signature, payload):
                return Vouched(f"key {key.name} ({key.algorithm})", "simple-signing payload")
        if not self.keys and COSIGN_CERTIFICATE_ANNOTATION in annotations:
            raise Refused("a keyless signature in the legacy .sig form (certificate annotation): ocisift verifies "
                          "keyless signatures as sigstore bundles (cosign sign --new-bundle-format)")
        if not self.keys:
            raise Refused("a key-based signature, and only keyless identities were given")
        names = ", ".join(f"{k.name} ({k.algorithm})" for k in self.keys)
        raise Refused(f"signature does not verify with {names}")

    def bundle(self, raw: bytes, digest: Digest) -> Vouched:
        """A sigstore bundle of a referrer (cosign's new bundle format)."""
        if not self.cosign:
            raise Refused("a sigstore bundle, and notation verification was asked for")
        from .bundle import check_with_keys, parse_bundle  # only a bundle referrer needs it (start-up of a .sig pull)

        parsed = parse_bundle(raw)
        if parsed.keyless:
            if not self.spec.identities:
                raise Refused("bundle is signed keyless (a certificate), and only keys were given")
            signer, what = self._keyless().check(parsed, digest, self.repository)
            return Vouched(f"keyless {signer}", what)
        if not self.keys:
            raise Refused("bundle is signed with a key, and only keyless identities were given")
        key, what = check_with_keys(parsed, digest, self.keys, self.repository)
        return Vouched(f"key {key.name} ({key.algorithm})", what)

    def envelope(self, raw: bytes, media_type: str, digest: Digest, size: int) -> Vouched:
        """A notation signature envelope (JWS or COSE) of a referrer."""
        if not self.notation or self._policy is None or self._store is None:
            raise Refused("a notation signature, and cosign verification was asked for")
        from .notation import verify_envelope

        try:
            result = verify_envelope(raw, media_type, digest, size, self.scope, self._policy, self._store)
        except (ValueError, TypeError, OverflowError, UnsupportedAlgorithm) as exc:
            # cryptography parses a certificate's extensions and names only when they are read, so a crafted
            # one raises from wherever it is first looked at: that envelope is refused (the next is tried),
            # never trusted and never an internal error.
            raise Refused(f"envelope could not be checked: {str(exc)[:200] or type(exc).__name__}") from None
        return Vouched(result.signer, "notation payload", tuple(result.notes))


@functools.cache
def _keyless_trust(trusted_root: str, identities: tuple[IdentityMatch, ...], changed: tuple[int, int, int]
                   ) -> KeylessTrust:
    """One per trusted root (as it is now) and identities in a process: parsed once for a whole sync."""
    from .keyless import KeylessTrust  # the sigstore library: most of a second to import, so only when asked

    return KeylessTrust(trusted_root, identities)
