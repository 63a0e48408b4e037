"""What trust checks return, and what an algorithm asks of a check: plain values, without the cryptography.

pull, copy and sync take a `TrustCheck` (the gate `_graph/verify.py` builds)
and never import the signature formats, so a pull without verification pays
nothing for them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .._core.digest import Digest
from .._core.models import Descriptor, Document
from .._stores.base import Reader


@dataclass(frozen=True, slots=True)
class SignatureAttempt:
    """One signature tried: where it is, what kind, and who signed it or why it does not count."""

    kind: str  # "cosign", "sigstore bundle", "notation"
    reference: str  # the signature manifest, pinned
    layer: int | None
    verified: bool
    detail: str  # the signer when verified, else the reason
    subject: str = ""  # the digest it was tried for
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "reference": self.reference, "layer": self.layer,
                               "subject": self.subject, "verified": self.verified}
        out["signer" if self.verified else "reason"] = self.detail
        if self.notes:
            out["notes"] = list(self.notes)
        return out

    def line(self) -> str:
        where = f"{self.reference}" + (f" layer {self.layer}" if self.layer is not None else "")
        return f"{self.kind} {where}: {'verified, ' if self.verified else ''}{self.detail}"


@dataclass
class Verification:
    """The outcome for one reference: the digest checked, and every signature tried."""

    reference: str
    descriptor: Descriptor | None
    policy: str
    attempts: list[SignatureAttempt] = field(default_factory=list)
    accepted: str | None = None  # trusted without a signature (a policy scope that accepts, notation's skip)

    @property
    def digest(self) -> Digest | None:
        return self.descriptor.digest if self.descriptor else None

    @property
    def verified(self) -> SignatureAttempt | None:
        return next((a for a in self.attempts if a.verified), None)

    @property
    def trusted(self) -> bool:
        return self.accepted is not None or self.verified is not None

    def to_json(self) -> dict[str, Any]:
        good = self.verified
        return {"reference": self.reference, "digest": str(self.digest) if self.digest else None,
                "policy": self.policy, "trusted": self.trusted, "accepted": self.accepted,
                "verifiedBy": good.to_json() if good else None,
                "signatures": [a.to_json() for a in self.attempts]}

    def summary(self) -> str:
        good = self.verified
        if good is not None:
            return f"{good.subject}: {good.kind} signature {good.reference}, by {good.detail}"
        return f"{self.reference} accepted without verification: {self.accepted}"



class TrustCheck(Protocol):
    accepted: str | None  # why a policy lets the content through unsigned (no signature is then looked for)

    def check(self, store: Reader, candidates: Sequence[Descriptor], *,
              load: Callable[[Descriptor], Document] | None = None, reference: str | None = None) -> Verification:
        """The Verification of the first candidate a signature vouches for; NotTrustedError (exit 7) else."""
        ...
