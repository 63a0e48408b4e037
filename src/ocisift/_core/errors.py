"""Errors that carry the exit code the SPEC promises, so the CLI never guesses."""

from __future__ import annotations

from typing import Any


class OcisiftError(Exception):
    """Base of every error ocisift raises on purpose (exit code 1)."""

    exit_code = 1
    kind = "error"

    def __init__(self, message: str, *, candidates: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.candidates = candidates or []

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.exit_code, "kind": self.kind, "message": self.message}
        if self.candidates:
            body["candidates"] = self.candidates
        return {"error": body}


class UsageError(OcisiftError):
    """Bad arguments or a reference that does not parse (exit 2)."""

    exit_code = 2
    kind = "usage"


class ReferenceError_(UsageError):
    """A reference outside the accepted grammar."""

    kind = "reference"


class NotFoundError(OcisiftError):
    """Nothing matched: tag, digest, selector or layer (exit 3)."""

    exit_code = 3
    kind = "not-found"


class AmbiguousError(OcisiftError):
    """Several things matched and the user must pin one (exit 4)."""

    exit_code = 4
    kind = "ambiguous"


class IntegrityError(OcisiftError):
    """Bytes that do not match their descriptor, or content refused as unsafe (exit 5)."""

    exit_code = 5
    kind = "integrity"


class IncompleteTransfer(IntegrityError):
    """The bytes could not be had whole: a transfer kept breaking past its resumes (exit 5)."""

    kind = "incomplete"


class UnsafeContentError(IntegrityError):
    """An archive that tries to escape, bomb or plant devices (exit 5)."""

    kind = "unsafe-content"


class MalformedDocument(IntegrityError):
    """A manifest, index, config or index.json that is not what it claims to be (exit 5)."""

    kind = "malformed"


class UnsupportedError(UsageError):
    """A store asked for something it cannot do: tag an archive opened for reading, mount into a layout (exit 2)."""

    kind = "unsupported"


class TransferTimeout(OcisiftError):
    """A server too slow to wait for: a response not whole within --timeout, or a body that trickles (exit 1)."""

    kind = "timeout"


class ConflictError(OcisiftError):
    """Two artifact layers write one path, or the destination disagrees with the pull (exit 1)."""

    kind = "conflict"


class MetadataError(OcisiftError):
    """A rootfs entry's extended attribute could not be set, and --require-xattrs asked for all (exit 1)."""

    kind = "metadata"


class AuthError(OcisiftError):
    """Authentication or permission refused (exit 6)."""

    exit_code = 6
    kind = "auth"


class NotTrustedError(OcisiftError):
    """No signature of the content verified against the policy asked for (exit 7); the message lists every
    signature tried and why each failed."""

    exit_code = 7
    kind = "not-trusted"
    verification: Any = None  # the Verification: every signature tried, for callers of the API
