"""JSON from outside (documents, registries, archives, config files), parsed with every failure a ValueError.

The standard parser recurses per nesting level: `[[[[…` a few thousand deep
raises RecursionError, which would escape every `except ValueError` around a
parse. Here it is the ValueError a malformed document is.
"""

from __future__ import annotations

import json
from typing import IO, Any


def loads(data: bytes | str) -> Any:
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def load(fh: IO[bytes] | IO[str]) -> Any:
    return loads(fh.read())
