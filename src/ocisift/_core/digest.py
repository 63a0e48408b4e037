"""Digests and streams that verify themselves while they are read.

Verification happens as bytes flow, so a blob is never held in memory and a
mismatch is known the moment the last byte arrives.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

from . import cancel
from .errors import IntegrityError, UsageError
from .sources import CHUNK, ByteSource

_ALGORITHMS = {"sha256": 64, "sha512": 128}
_DIGEST_RE = re.compile(r"([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)")
_HEX_RE = re.compile(r"[a-f0-9]+")


@dataclass(frozen=True, slots=True, order=True)
class Digest:
    algorithm: str
    hex: str

    @classmethod
    def parse(cls, text: str) -> Digest:
        m = _DIGEST_RE.fullmatch(text) if isinstance(text, str) else None  # `$` would let a trailing newline in
        if not m:
            raise UsageError(f"invalid digest {text!r}: expected ALGORITHM:HEX such as sha256:<64 hex>")
        algorithm, value = m.group(1), m.group(2)
        want = _ALGORITHMS.get(algorithm)
        if want is None:
            raise UsageError(f"unsupported digest algorithm {algorithm!r} (supported: sha256, sha512)")
        if len(value) != want or not _HEX_RE.fullmatch(value):
            raise UsageError(f"invalid {algorithm} digest {text!r}: expected {want} lowercase hex characters")
        return cls(algorithm, value)

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())

    def hasher(self) -> hashlib._Hash:
        return hashlib.new(self.algorithm)

    @property
    def short(self) -> str:
        return self.hex[:12]

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"


def is_digest(text: str) -> bool:
    try:
        Digest.parse(text)
    except UsageError:
        return False
    return True


class VerifyingReader(io.RawIOBase):
    """Wraps a byte stream; raises IntegrityError when size or digest disagree.

    The check fires on the read that reaches the end (or overruns the expected
    size), so callers that drain the stream cannot miss it.
    """

    def __init__(self, raw: ByteSource, digest: Digest, size: int, what: str = "blob") -> None:
        super().__init__()
        self._raw = raw
        self._digest = digest
        self._size = size
        self._hasher = digest.hasher()
        self._seen = 0
        self._what = what
        self._done = False
        self.on_read: Callable[[int], None] | None = None  # progress callback, called with each chunk's size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        if self._done:
            return 0
        cancel.check()  # Ctrl-C stops every transfer within a chunk, local files too
        view = memoryview(buffer).cast("B")
        # Read at most one byte past the declared size to detect overlong bodies.
        room = self._size - self._seen + 1
        readinto = getattr(self._raw, "readinto", None)
        n = readinto(view[: min(len(view), room)]) if readinto is not None else None
        if n is None:
            chunk = self._raw.read(min(len(view), room))
            n = len(chunk)
            view[:n] = chunk
        if n:
            self._hasher.update(view[:n])
            self._seen += n
            if self.on_read is not None:
                self.on_read(n)
            if self._seen > self._size:
                self._fail(f"{self._what} {self._digest} is larger than its descriptor's size {self._size}")
            return n
        self._finish()
        return 0

    def _finish(self) -> None:
        self._done = True
        if self._seen != self._size:
            self._fail(f"{self._what} {self._digest} ended after {self._seen} bytes, descriptor says {self._size}")
        actual = self._hasher.hexdigest()
        if actual != self._digest.hex:
            self._fail(f"{self._what} content does not match digest {self._digest} (got {self._digest.algorithm}:{actual})")

    def _fail(self, message: str) -> None:
        self._done = True
        raise IntegrityError(message)

    @property
    def verifies(self) -> Digest:
        """The digest this stream checks; a writer given it need not hash the bytes again."""
        return self._digest

    def drain(self) -> None:
        """Read to the end so the digest is checked even if the consumer stopped early."""
        while self.read(CHUNK):
            pass

    @property
    def verified(self) -> bool:
        return self._done and self._seen == self._size

    def close(self) -> None:
        try:
            close = getattr(self._raw, "close", None)
            if close is not None:
                close()
        finally:
            super().close()


def verify_bytes(data: bytes, digest: Digest, size: int, what: str = "content") -> bytes:
    if len(data) != size:
        raise IntegrityError(f"{what} {digest} has {len(data)} bytes, descriptor says {size}")
    actual = hashlib.new(digest.algorithm, data).hexdigest()
    if actual != digest.hex:
        raise IntegrityError(f"{what} does not match digest {digest} (got {digest.algorithm}:{actual})")
    return data


def verified(stream: ByteSource, digest: Digest, size: int, what: str = "blob") -> ByteSource:
    """`stream` itself when it already checks `digest` as it is read, else a VerifyingReader around it.

    Every blob is hashed once on its way through: a copy's source already verifies what it yields.
    """
    if getattr(stream, "verifies", None) == digest:
        return stream
    return VerifyingReader(stream, digest, size, what=what)
