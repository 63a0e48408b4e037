"""What a user asks of signatures: one verification (`VerifySpec`), or one per scope (`TrustPolicy`).

Plain values, checked for shape where they are parsed (the command line, a
sync spec's `verify:` block, a `--verify-policy` file: syncspec.py) and turned
into checks with their keys and roots loaded by `_trust.verifier`. The words
are Flux's OCIRepository `spec.verify` (provider, matchOIDCIdentity) and
cosign's and notation's flags.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Literal

from .errors import UsageError
from .tagregex import TagPattern

Provider = Literal["cosign", "notation"]
PROVIDERS: tuple[Provider, ...] = ("cosign", "notation")


@dataclass(frozen=True, slots=True)
class IdentityMatch:
    """A keyless signer to accept: the certificate's subject (a SAN: e-mail, URI) and its OIDC issuer, each
    exact or a regular expression (RE2, matched anywhere as Go's MatchString; anchor with ^ and $)."""

    subject: str | None = None
    subject_regexp: str | None = None
    issuer: str | None = None
    issuer_regexp: str | None = None

    def __post_init__(self) -> None:
        if (self.subject is None) == (self.subject_regexp is None):
            raise UsageError("a keyless identity needs one of --certificate-identity or "
                             "--certificate-identity-regexp (Flux: matchOIDCIdentity.subject)")
        if (self.issuer is None) == (self.issuer_regexp is None):
            raise UsageError("a keyless identity needs one of --certificate-oidc-issuer or "
                             "--certificate-oidc-issuer-regexp (Flux: matchOIDCIdentity.issuer)")
        for pattern in (self.subject_regexp, self.issuer_regexp):
            if pattern is not None:
                compile_pattern(pattern)

    def matches(self, subjects: list[str], issuer: str | None) -> bool:
        if issuer is None or not _match(issuer, self.issuer, self.issuer_regexp):
            return False
        return any(_match(s, self.subject, self.subject_regexp) for s in subjects)

    def __str__(self) -> str:
        subject = self.subject if self.subject is not None else f"/{self.subject_regexp}/"
        issuer = self.issuer if self.issuer is not None else f"/{self.issuer_regexp}/"
        return f"{subject} from {issuer}"


def compile_pattern(pattern: str) -> TagPattern:
    try:
        return TagPattern(pattern)
    except UsageError as exc:
        raise UsageError(exc.message.replace("tag regex", "identity pattern")) from None


def _match(value: str, exact: str | None, pattern: str | None) -> bool:
    if exact is not None:
        return value == exact
    return pattern is not None and compile_pattern(pattern).found(value)


@dataclass(frozen=True, slots=True)
class VerifySpec:
    """One verification. cosign: `keys` (PEM public keys, any one suffices) and/or keyless `identities`
    with a `trusted_root` (sigstore's trusted_root.json); notation: a `trust_policy` (trustpolicy.json)
    and a `trust_store` directory (holding `x509/ca/NAME/…`). `match_reference` also requires a cosign
    payload to name the repository verified (critical.identity.docker-reference)."""

    provider: Provider = "cosign"
    keys: tuple[str, ...] = ()
    identities: tuple[IdentityMatch, ...] = ()
    trusted_root: str | None = None
    trust_policy: str | None = None
    trust_store: str | None = None
    match_reference: bool = False

    def __post_init__(self) -> None:
        if self.provider not in PROVIDERS:
            raise UsageError(f"unknown verification provider {self.provider!r} (cosign or notation)")
        if self.provider == "cosign":
            if self.trust_policy is not None or self.trust_store is not None:
                raise UsageError("a trust policy and trust store are notation's: give provider notation")
            if not self.keys and not self.identities:
                raise UsageError("cosign verification needs public keys (--key) or a keyless identity "
                                 "(--certificate-identity[-regexp] with --certificate-oidc-issuer[-regexp])")
            if self.identities and self.trusted_root is None:
                raise UsageError("keyless verification is offline here: give sigstore's trusted_root.json "
                                 "(--trusted-root), whose Fulcio CAs, CT logs and Rekor keys it trusts")
            if self.trusted_root is not None and not self.identities:
                raise UsageError("--trusted-root is for keyless verification: give the identity to accept "
                                 "(--certificate-identity[-regexp] and --certificate-oidc-issuer[-regexp])")
        else:
            if self.keys or self.identities or self.trusted_root is not None:
                raise UsageError("keys, identities and trusted roots are cosign's: give provider cosign")
            if self.trust_policy is None or self.trust_store is None:
                raise UsageError("notation verification needs its trust policy (--trust-policy FILE) and its "
                                 "trust store (--trust-store DIR)")


Decision = Literal["verify", "accept", "reject"]


@dataclass(frozen=True, slots=True)
class ScopedVerify:
    """What a policy says for references in `scope` (a glob over `host/repo`, `oci:PATH`, …)."""

    scope: str
    decision: Decision
    verify: tuple[VerifySpec, ...] = ()  # for "verify": any one of them suffices
    line: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class TrustPolicy:
    """Verification per scope, as skopeo's policy.json has per transport scope: the most specific scope that
    matches a reference decides (an exact scope, else the longest glob), else `default`."""

    scopes: tuple[ScopedVerify, ...]
    default: ScopedVerify = ScopedVerify("*", "reject")
    path: str = ""

    def for_scope(self, name: str) -> ScopedVerify:
        exact = [s for s in self.scopes if s.scope == name]
        if exact:
            return exact[0]
        globs = [s for s in self.scopes if fnmatch.fnmatchcase(name, s.scope)]
        return max(globs, key=lambda s: len(s.scope)) if globs else self.default


Trust = VerifySpec | TrustPolicy
