"""What `sign` returns: a plain value, importable without the cryptography that made it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .._core.models import Descriptor


@dataclass(frozen=True, slots=True)
class Signed:
    """A signature written: of which digest, in which form, as which manifest (and tag, for the legacy form)."""

    subject: Descriptor
    form: str  # "legacy" or "bundle"
    descriptor: Descriptor
    reference: str
    tag: str | None

    def to_json(self) -> dict[str, Any]:
        return {"subject": str(self.subject.digest), "form": self.form, "signature": self.descriptor.to_json(),
                "reference": self.reference, "tag": self.tag}
