"""Metered decompression: every gzip and zstd stream ocisift unpacks goes through here.

Unpacking a layer and converting one for a docker archive (whose diff_ids are the digests of the
uncompressed tars) both read through `decompressed()`, so the bomb caps (`--max-extract-size`,
`--max-ratio`) hold wherever bytes are inflated, and a stream that does not decode (corrupt, truncated, not
what it says) is exit 5 with a message saying so, never a zlib or zstd error escaping as an internal one.

zstd's stream reader takes a stream cut short for a complete one, without a word, and hands back what it
had; the frames are therefore followed as their bytes pass (`ZstdFrames`, from the headers alone), and a
stream that ends inside a frame is refused.
"""

from __future__ import annotations

import io
import zlib
from typing import TYPE_CHECKING

from .errors import IntegrityError, OcisiftError, UnsafeContentError
from .limits import ExtractLimits
from .sources import CHUNK, Readable

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

ZSTD_MAX_WINDOW = 1 << 27  # 128 MiB: what a decompressor may be asked to hold, as zstd's own CLI allows
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def sniff(head: bytes) -> str:
    """'gzip', 'zstd', 'none' (a tar: `ustar` at 257) or 'unknown', from a stream's first bytes."""
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:4] == _ZSTD_MAGIC:
        return "zstd"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "none"
    return "unknown"


class ZstdFrames:
    """The frame structure of a zstd stream (RFC 8878), followed from its headers as the bytes pass.

    Only frame and block headers are parsed; block contents are skipped by their sizes, so this costs a few
    steps per 128 KiB block. `complete` says whether the bytes so far end exactly after a whole frame.
    """

    def __init__(self) -> None:
        self._state = "magic"
        self._need = 4
        self._head = bytearray()
        self._skip = 0
        self._after = "magic"
        self._checksum = False
        self.frames = 0
        self.broken = False

    @property
    def complete(self) -> bool:
        return not self.broken and self.frames > 0 and self._state == "magic" and not self._head and not self._skip

    def feed(self, data: memoryview) -> None:
        pos, end = 0, len(data)
        while pos < end and not self.broken:
            if self._skip:
                step = min(self._skip, end - pos)
                self._skip -= step
                pos += step
                if not self._skip:
                    self._enter(self._after)
                continue
            take = min(self._need - len(self._head), end - pos)
            self._head += data[pos:pos + take]
            pos += take
            if len(self._head) == self._need:
                head = bytes(self._head)
                self._head.clear()
                self._parse(head)

    def _enter(self, state: str) -> None:
        self._state = state
        self._need = {"magic": 4, "descriptor": 1, "block": 3, "skippable": 4}[state]

    def _then(self, skip: int, state: str) -> None:
        """Pass over `skip` bytes, then read what `state` reads."""
        if skip:
            self._skip, self._after = skip, state
        else:
            self._enter(state)

    def _parse(self, head: bytes) -> None:
        if self._state == "magic":
            if head == _ZSTD_MAGIC:
                self._enter("descriptor")
            elif head[0] & 0xF0 == 0x50 and head[1:] == b"\x2a\x4d\x18":  # a skippable frame
                self._enter("skippable")
            else:
                self.broken = True
        elif self._state == "descriptor":
            d = head[0]
            single = bool(d & 0x20)
            self._checksum = bool(d & 0x04)
            content_size = (1 if single else 0, 2, 4, 8)[d >> 6]
            rest = (0 if single else 1) + (0, 1, 2, 4)[d & 0x03] + content_size
            if d & 0x08:  # the reserved bit must be 0
                self.broken = True
                return
            self._then(rest, "block")
        elif self._state == "block":
            header = int.from_bytes(head, "little")
            kind, size = (header >> 1) & 0x03, header >> 3
            if kind == 3:  # reserved block type
                self.broken = True
                return
            payload = 1 if kind == 1 else size
            if header & 1:  # the last block of its frame
                self.frames += 1
                self._then(payload + (4 if self._checksum else 0), "magic")
            else:
                self._then(payload, "block")
        elif self._state == "skippable":
            self.frames += 1
            self._then(int.from_bytes(head, "little"), "magic")


class Meter(io.RawIOBase):
    """Counts bytes through a stream; on a decompressed stream, enforces the bomb caps and turns the
    decoder's errors into ocisift's (`what` names the stream, `compression` the format)."""

    def __init__(self, inner: Readable, limits: ExtractLimits | None = None, source: Meter | None = None,
                 budget: list[int] | None = None, *, compression: str = "none", what: str = "stream",
                 frames: ZstdFrames | None = None) -> None:
        super().__init__()
        self.inner = inner
        self.count = 0
        self.limits = limits
        self.source = source
        self.budget = budget
        self.compression = compression
        self.what = what
        self.frames = frames

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        try:
            n = self.inner.readinto(buffer) or 0
        except OcisiftError:
            raise
        except (EOFError, OSError, ValueError, zlib.error) as exc:
            raise self._undecodable(exc) from None
        except Exception as exc:  # zstandard.ZstdError derives from nothing more precise
            import zstandard

            if not isinstance(exc, zstandard.ZstdError):
                raise
            raise self._undecodable(exc) from None
        if n:
            self.count += n
            if self.limits is not None:
                self.check(n)
        elif self.frames is not None and not self.frames.complete:
            raise IntegrityError(f"{self.what} is not a complete zstd stream: it ends inside a frame "
                                 f"(truncated, or not zstd past its first bytes)")
        return n

    def _undecodable(self, exc: BaseException) -> IntegrityError:
        if self.compression == "none":
            return IntegrityError(f"{self.what} could not be read: {exc}")
        return IntegrityError(f"{self.what} is not valid {self.compression} data ({exc}); it is corrupt or "
                              "truncated")

    def check(self, n: int) -> None:
        """Charge `n` unpacked bytes against the size cap and the ratio cap."""
        limits = self.limits
        assert limits is not None
        if self.budget is not None:
            self.budget[0] -= n
            if self.budget[0] < 0:
                raise UnsafeContentError(
                    f"{self.what}: unpacking exceeds {limits.max_bytes} bytes (raise it with --max-extract-size)"
                )
        if self.source is not None and self.count > limits.ratio_floor:
            if self.count > limits.max_ratio * max(self.source.count, 1):
                raise UnsafeContentError(
                    f"{self.what}: decompression ratio over {limits.max_ratio:g}:1 looks like a bomb "
                    "(raise it with --max-ratio)"
                )


class _Counted(Meter):
    """The compressed side: counted, and followed as zstd frames from the first byte (a caller peeks at
    the magic before it knows the format; what is not zstd stops the following at once)."""

    def readinto(self, buffer: WriteableBuffer) -> int:
        n = self.inner.readinto(buffer) or 0
        self.count += n
        if n and self.frames is not None and not self.frames.broken:
            self.frames.feed(memoryview(buffer).cast("B")[:n])
        return n


def counted(raw: Readable) -> tuple[Meter, io.BufferedReader]:
    """The compressed bytes of a stream, counted (what the ratio is measured against), buffered so the
    caller can peek at the magic bytes before choosing a decompressor."""
    compressed = _Counted(raw, frames=ZstdFrames())
    return compressed, io.BufferedReader(compressed, CHUNK)


def decompressed(compressed: Meter, buffered: io.BufferedReader, compression: str, limits: ExtractLimits,
                 budget: list[int] | None, what: str) -> Meter:
    """The unpacked bytes of `buffered` ('gzip', 'zstd' or 'none'), metered against `limits` and `budget`
    (a one-item list shared by everything one command unpacks)."""
    frames = None
    if compression == "gzip":
        from zlib_ng import gzip_ng

        stream: Readable = gzip_ng.GzipNGFile(fileobj=buffered, mode="rb")  # type: ignore[no-untyped-call]
    elif compression == "zstd":
        import zstandard

        frames = compressed.frames
        stream = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW).stream_reader(
            buffered, read_size=CHUNK, read_across_frames=True
        )
    else:
        stream = buffered
    return Meter(stream, limits, compressed, budget, compression=compression, what=what, frames=frames)
