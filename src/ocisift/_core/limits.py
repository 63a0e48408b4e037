"""Caps on what decompression may produce (unpacking layers, converting them for a docker archive), in a
module of their own so they can be named cheaply."""

from __future__ import annotations

from dataclasses import dataclass

from .bounds import MAX_ENTRIES, MAX_EXTRACT_BYTES, MAX_RATIO, RATIO_FLOOR

GiB = 1 << 30
MiB = 1 << 20


@dataclass(frozen=True, slots=True)
class ExtractLimits:
    """Caps against decompression bombs; all configurable (`--max-extract-size`, `--max-ratio`).

    `max_bytes` is for everything one command unpacks; the ratio is per stream, checked past `ratio_floor`.
    """

    max_bytes: int = 16 * GiB
    max_ratio: float = 250.0
    ratio_floor: int = 32 * MiB
    max_entries: int = 1_000_000

    def __post_init__(self) -> None:
        MAX_EXTRACT_BYTES.check(self.max_bytes)
        MAX_RATIO.check(self.max_ratio)
        RATIO_FLOOR.check(self.ratio_floor)
        MAX_ENTRIES.check(self.max_entries)
