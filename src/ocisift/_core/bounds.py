"""The ranges numeric settings take, in one place for the command line and the API.

The command line turns each range into a click type (its usual "Invalid value
for '--concurrency': 0 is not in the range 1<=x<=64"); the API checks the same
range where the value enters (`check`) and raises UsageError. Every integer
has an upper bound, at most what an int64 holds, and every float is finite
and bounded where it becomes a wait: Python refuses waits and socket timeouts
past about 292 years with an OverflowError, and a NaN compares false with
everything, so a NaN cap would never hold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import UsageError

INT64_MAX = (1 << 63) - 1
DAY = 86400.0


@dataclass(frozen=True, slots=True)
class IntBound:
    """Integers from `low` to `high`, both included."""

    name: str
    low: int
    high: int = INT64_MAX

    def check(self, value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise UsageError(f"{self.name} must be an integer, not {type(value).__name__} {value!r}")
        if not self.low <= value <= self.high:
            raise UsageError(f"{self.name} must be from {self.low} to {self.high} (got {_shown(value)})")
        return value


@dataclass(frozen=True, slots=True)
class FloatBound:
    """Finite numbers from `low` (excluded when `low_open`) to `high`."""

    name: str
    low: float
    high: float = math.inf
    low_open: bool = False

    def check(self, value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UsageError(f"{self.name} must be a number, not {type(value).__name__} {value!r}")
        number = float(value) if not isinstance(value, int) or abs(value) < 1 << 1000 else math.inf
        below = number <= self.low if self.low_open else number < self.low
        if not math.isfinite(number) or below or number > self.high:
            bottom = f"over {self.low:g}" if self.low_open else f"from {self.low:g}"
            top = f" to {self.high:g}" if math.isfinite(self.high) else ""
            raise UsageError(f"{self.name} must be a finite number {bottom}{top} (got {_shown(value)})")
        return number


def _shown(value: int | float) -> str:
    """A number for a message: a huge integer by its length, not its 4,000 digits."""
    if isinstance(value, int) and value.bit_length() > 256:
        return f"a {len(str(abs(value)))}-digit number"
    return repr(value)


CONCURRENCY = IntBound("concurrency", 1, 64)
IMAGES_AT_ONCE = IntBound("images_at_once", 1, 64)
SHARDS = IntBound("shards", 1, 65_536)
# The walk recurses per level of index nesting; 256 levels stay well inside Python's recursion limit.
MAX_DEPTH = IntBound("max_depth", 1, 256)
LAYER_INDEX = IntBound("layer_index", 0)
MAX_EXTRACT_BYTES = IntBound("max_bytes", 1)
RATIO_FLOOR = IntBound("ratio_floor", 0)
MAX_ENTRIES = IntBound("max_entries", 1)
MAX_RATIO = FloatBound("max_ratio", 0.0, low_open=True)
TIMEOUT = FloatBound("timeout", 0.0, DAY, low_open=True)
RETRIES = IntBound("retries", 0, 100)
MAX_RETRY_WAIT = FloatBound("max_retry_wait", 0.0, DAY)
CHUNK_SIZE = IntBound("chunk_size", 1)
GRACE_SECONDS = FloatBound("grace_seconds", 0.0)
