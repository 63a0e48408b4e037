"""Trust: find the signatures of a digest in any store and have each checked, until one vouches for it.

Signatures are found through what every store offers, never by its kind:

1. cosign's legacy tag `sha256-<hex>.sig` (`Reader.resolve`): a manifest whose
   layers are simple-signing payloads, each signed in an annotation. Tried
   first, because a signed image then costs two reads (the manifest, one
   payload) before the first signature verifies.
2. The referrers of the digest (`ReferrerLister`: a registry's referrers API
   or its fallback tag, a layout's index.json entries with that subject):
   sigstore bundles (cosign's new bundle format) and notation envelopes.

Every signature is bounded before it is read (formats.py): at most
MAX_SIGNATURES of each place, each blob at most MAX_PAYLOAD_BYTES by its
descriptor before a byte is fetched, and held to that size while it streams.
A signature that is malformed, oversized, of other content or of an unknown
signer is recorded with why, and the next is tried; only when none vouches is
the content not trusted (exit 7), with every signature tried in the message.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from .._core.errors import IntegrityError, NotFoundError, NotTrustedError, UsageError
from .._core.models import Descriptor, Index, Manifest
from .._core.reference import LayoutReference, Reference, RegistryReference, Target
from .._core.trustspec import Trust, TrustPolicy
from .._stores.base import Reader, ReferrerLister
from .._trust.formats import (
    COSIGN_SIMPLESIGNING,
    MAX_PAYLOAD_BYTES,
    MAX_SIGNATURES,
    NOTARY_ENVELOPES,
    NOTARY_SIGNATURE,
    SIGSTORE_BUNDLE_TYPES,
    signature_tag,
)
from .._trust.outcome import Refused
from .._trust.verifier import Verifier, Vouched
from .trustresults import SignatureAttempt, Verification
from .walk import Loader, document_loader

MAX_SHOWN = 20  # signatures listed in a not-trusted message (all of them are in --format json)


def find_and_check(store: Reader, subject: Descriptor, verifiers: Sequence[Verifier], *,
                   load: Loader | None = None) -> list[SignatureAttempt]:
    """Every signature tried for `subject`, in order, stopping at the first that verifies."""
    load = load or document_loader(store)
    attempts: list[SignatureAttempt] = []
    cosign = [v for v in verifiers if v.cosign]
    notation = [v for v in verifiers if v.notation]
    if cosign and _legacy(store, subject, cosign, load, attempts):
        return attempts
    if isinstance(store, ReferrerLister) and (cosign or notation):
        _referrers(store, subject, cosign, notation, load, attempts)
    return attempts


def _first(verifiers: Sequence[Verifier], check: Callable[..., Vouched], *args: Any) -> Vouched:
    """The first verifier's word that the signature vouches; Refused with every verifier's reason else."""
    reasons: list[str] = []
    for verifier in verifiers:
        try:
            return check(verifier, *args)
        except Refused as exc:
            reasons.append(exc.reason)
    raise Refused("; ".join(dict.fromkeys(reasons)))


def _legacy(store: Reader, subject: Descriptor, verifiers: Sequence[Verifier], load: Loader,
            attempts: list[SignatureAttempt]) -> bool:
    tag = signature_tag(subject.digest)
    try:
        found = store.resolve(Target(tag=tag))
    except NotFoundError:
        return False
    for desc in _distinct(found)[:MAX_SIGNATURES]:
        where = store.pinned(desc)

        def record(verified: bool, detail: str, layer: int | None = None, notes: tuple[str, ...] = (),
                   where: str = where) -> None:
            attempts.append(SignatureAttempt("cosign", where, layer, verified, detail, str(subject.digest), notes))

        try:
            doc = load(desc)
        except (IntegrityError, NotFoundError) as exc:
            record(False, f"the {tag} tag names what cannot be read as a signature manifest: {exc.message}")
            continue
        if isinstance(doc, Index):
            record(False, f"the {tag} tag names an index, not a signature manifest")
            continue
        for position, layer in enumerate(doc.layers[:MAX_SIGNATURES]):
            if layer.media_type != COSIGN_SIMPLESIGNING:
                record(False, f"layer is {layer.media_type[:100]}, not a simple-signing payload", position)
                continue
            try:
                payload = _read_bounded(store, layer, "payload")
                vouched = _first(verifiers, Verifier.simple_signing, payload, layer.annotations, subject.digest)
            except Refused as exc:
                record(False, exc.reason, position)
                continue
            record(True, vouched.signer, position, vouched.notes)
            return True
        if len(doc.layers) > MAX_SIGNATURES:
            record(False, f"{len(doc.layers) - MAX_SIGNATURES} more layers not tried (at most {MAX_SIGNATURES})")
    return False


def _referrers(store: ReferrerLister, subject: Descriptor, cosign: Sequence[Verifier],
               notation: Sequence[Verifier], load: Loader, attempts: list[SignatureAttempt]) -> None:
    assert isinstance(store, Reader)
    listed = store.referrers(subject)
    bundles = [r for r in listed if r.artifact_type in SIGSTORE_BUNDLE_TYPES] if cosign else []
    envelopes = [r for r in listed if r.artifact_type == NOTARY_SIGNATURE] if notation else []
    for kind, found, layer_types, verifiers in (("sigstore bundle", bundles, SIGSTORE_BUNDLE_TYPES, cosign),
                                                ("notation", envelopes, NOTARY_ENVELOPES, notation)):
        for desc in _distinct(found)[:MAX_SIGNATURES]:
            where = store.pinned(desc)
            try:
                doc = load(desc)
                layer = _signature_layer(doc, subject, layer_types)
                raw = _read_bounded(store, layer, kind)
                if kind == "notation":
                    vouched = _first(verifiers, Verifier.envelope, raw, layer.media_type, subject.digest, subject.size)
                else:
                    vouched = _first(verifiers, Verifier.bundle, raw, subject.digest)
            except Refused as exc:
                attempts.append(SignatureAttempt(kind, where, 0, False, exc.reason, str(subject.digest)))
                continue
            except (IntegrityError, NotFoundError) as exc:
                attempts.append(SignatureAttempt(kind, where, None, False, exc.message, str(subject.digest)))
                continue
            attempts.append(SignatureAttempt(kind, where, 0, True, vouched.signer, str(subject.digest),
                                             vouched.notes))
            return
        if len(found) > MAX_SIGNATURES:
            attempts.append(SignatureAttempt(kind, store.location, None, False,
                                             f"{len(found) - MAX_SIGNATURES} more referrers not tried",
                                             str(subject.digest)))


def _signature_layer(doc: Manifest | Index, subject: Descriptor, types: Sequence[str]) -> Descriptor:
    if isinstance(doc, Index):
        raise Refused("referrer is an index, not a signature manifest")
    if doc.subject is None or doc.subject.digest != subject.digest:
        named = doc.subject.digest if doc.subject else "no subject"
        raise Refused(f"referrer's subject is {named}, not {subject.digest}")
    for layer in doc.layers[:MAX_SIGNATURES]:
        if layer.media_type in types:
            return layer
    raise Refused(f"referrer has no layer of type {' or '.join(types)}")


def _read_bounded(store: Reader, layer: Descriptor, what: str) -> bytes:
    """A signature blob, refused by its descriptor's size before a byte is read; held to it while read."""
    if layer.size > MAX_PAYLOAD_BYTES:
        raise Refused(f"{what} of {layer.size} bytes is over the {MAX_PAYLOAD_BYTES} ocisift reads of one; "
                      "not read")
    try:
        with store.fetch(layer) as reader:
            data = reader.read()
            reader.drain()
    except (IntegrityError, NotFoundError) as exc:
        raise Refused(f"{what} cannot be read whole: {exc.message}") from None
    return data


def _distinct(found: Sequence[Descriptor]) -> list[Descriptor]:
    return list({d.digest: d for d in found}.values())


class TrustGate:
    """What one reference must pass: its verifiers (any one suffices), or a policy's accept or reject."""

    def __init__(self, verifiers: Sequence[Verifier], *, policy: str, reference: str,
                 accepted: str | None = None, rejected: str | None = None) -> None:
        self.verifiers = tuple(verifiers)
        self.policy = policy
        self.reference = reference
        self.accepted = accepted
        self.rejected = rejected

    def check(self, store: Reader, candidates: Sequence[Descriptor], *, load: Loader | None = None,
              reference: str | None = None) -> Verification:
        """The first of `candidates` (the root a reference names, then the manifest selected under it) that a
        signature vouches for; NotTrustedError (exit 7) listing every signature tried when none does."""
        shown = reference or self.reference
        verification = Verification(shown, candidates[0] if candidates else None, self.policy)
        if self.rejected is not None:
            raise NotTrustedError(f"{shown} is not trusted: {self.rejected}")
        if self.accepted is not None:
            verification.accepted = self.accepted
            return verification
        load = load or document_loader(store)
        for candidate in _distinct(candidates):
            verification.attempts.extend(find_and_check(store, candidate, self.verifiers, load=load))
            if verification.verified is not None:
                verification.descriptor = candidate
                return verification
        raise not_trusted(verification, candidates)


def not_trusted(verification: Verification, candidates: Sequence[Descriptor]) -> NotTrustedError:
    digests = " or ".join(str(c.digest) for c in _distinct(candidates))
    if not verification.attempts:
        message = (f"{verification.reference} is not trusted: no signature of {digests} was found (looked for "
                   f"{verification.policy}: the {signature_tag(candidates[0].digest) if candidates else '.sig'} "
                   "tag and the referrers)")
    else:
        lines = [a.line() for a in verification.attempts[:MAX_SHOWN]]
        more = len(verification.attempts) - MAX_SHOWN
        if more > 0:
            lines.append(f"… and {more} more (--format json lists them all)")
        message = (f"{verification.reference} is not trusted: no signature of {digests} verified with "
                   f"{verification.policy}; tried:\n" + "\n".join(f"  {line}" for line in lines))
    error = NotTrustedError(message, candidates=[a.to_json() for a in verification.attempts])
    error.verification = verification
    return error


def trust_scope(ref: Reference) -> str:
    """The name a policy's scopes are matched against: `host/repo` for a registry (Docker-normalised), else
    `oci:/ABS/PATH` (with `/NAME` for a full name inside a layout), `oci-archive:/ABS/FILE`, …"""
    if isinstance(ref, RegistryReference):
        return ref.image.name
    path = os.path.abspath(ref.path)
    if isinstance(ref, LayoutReference):
        return f"{ref.scheme}:{path}" + (f"/{ref.image.name}" if ref.image is not None else "")
    return f"{ref.kind}:{path}"


def signed_name(ref: Reference) -> str:
    """What a payload ocisift signs names as its docker-reference: the repository, else the store's scope."""
    return _repository(ref) or trust_scope(ref)


def _repository(ref: Reference) -> str | None:
    """The repository a cosign payload names (critical.identity.docker-reference), where a reference has one."""
    if isinstance(ref, RegistryReference):
        return ref.image.name
    if isinstance(ref, LayoutReference) and ref.image is not None:
        return ref.image.name
    return None


def accepts_unsigned(ref: Reference, trust: Trust) -> bool:
    """Whether `trust` lets what `ref` names through unsigned: a policy whose scope for it says `accept`."""
    return isinstance(trust, TrustPolicy) and trust.for_scope(trust_scope(ref)).decision == "accept"


def gate_for(ref: Reference, trust: Trust) -> TrustGate:
    """The checks `trust` asks of what `ref` names: its own VerifySpec, or what a policy says for its scope."""
    scope = trust_scope(ref)
    if isinstance(trust, TrustPolicy):
        scoped = trust.for_scope(scope)
        where = f"trust policy {trust.path}, scope {scoped.scope}"
        if scoped.decision == "reject":
            return TrustGate((), policy=where, reference=str(ref), rejected=f"{where} rejects {scope}")
        if scoped.decision == "accept":
            return TrustGate((), policy=where, reference=str(ref), accepted=f"{where} accepts {scope} unsigned")
        specs = scoped.verify
    else:
        where = ""
        specs = (trust,)
    repository = _repository(ref)
    if repository is None and any(s.match_reference for s in specs):
        raise UsageError(f"--match-reference compares the signed repository name, and {ref} has none "
                         "(give a registry reference, or a full name inside a layout: oci:DIR/NAME:TAG)")
    verifiers = [Verifier(spec, scope, repository) for spec in specs]
    described = " or ".join(v.describe() for v in verifiers)
    return TrustGate(verifiers, policy=f"{described}" + (f" ({where})" if where else ""), reference=str(ref))
