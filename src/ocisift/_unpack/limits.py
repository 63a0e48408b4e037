"""The extraction caps, named where unpacking code and the command line have always found them (they live in
`_core.limits`, so stores that decompress obey them too)."""

from __future__ import annotations

from .._core.limits import ExtractLimits as ExtractLimits
from .._core.limits import GiB as GiB
from .._core.limits import MiB as MiB
