"""JSON from outside (documents, registries, archives, config files), parsed with every failure a ValueError.

The standard parser recurses per nesting level: `[[[[…` a few thousand deep
raises RecursionError, which would escape every `except ValueError` around a
parse. Here it is the ValueError a malformed document is.

Parsed JSON costs far more memory than its text, in two ways, and both are
bounded before parsing, in C, without parsing:

- Values. `{},` is three bytes and an 88-byte dict; `257,` four bytes and a
  40-byte integer. The values a text can hold are bounded from its
  punctuation: every member has a `:` (a key and a value), every further
  element a `,`, every first element an opening bracket, every string two
  quotes. Each is counted twice but a quote once (a string is two quotes),
  so that each value counted costs at most about 40 bytes parsed. The count
  never underestimates. A text over MAX_VALUES is refused.
- Width. Python holds a string at 1, 2 or 4 bytes a character, by its
  widest: one emoji makes 24 MiB of ASCII a 96 MiB decoded text, and one
  `\\ud83d\\ude00` escape a 96 MiB parsed string. The widest character is
  read from the UTF-8 lead bytes and the escapes, and a text whose length
  times that width exceeds MAX_DECODED_BYTES is refused.

Together they keep the dearest text we know under 160 MiB of peak memory in
all (tests/hostile/test_json_bounds.py), and admit a layout index.json of
110,000 tagged entries: 40 counted values and 210 bytes of ASCII an entry.
"""

from __future__ import annotations

import json
import re
from typing import IO, Any

from .errors import MalformedDocument

MAX_VALUES = 4_500_000
MAX_DECODED_BYTES = 24 * 1024 * 1024

_ASCII = bytes(range(128))
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abAB]")
_WIDE_ESCAPE = re.compile(rb"\\u(?!00)")


class TooManyValues(ValueError):
    """Refused before parsing: the text could hold more values, or more decoded bytes, than the limit."""


def value_bound(data: bytes | str) -> int:
    """Twice the JSON values (keys included) `data` can parse into, at least (see the module's docstring)."""
    if isinstance(data, str):
        counts = [data.count(c) for c in ':,[{"']
    else:
        counts = [data.count(c) for c in (b":", b",", b"[", b"{", b'"')]
    colons, commas, arrays, objects, quotes = counts
    return 2 * (colons + commas + arrays + objects) + quotes + 2  # + 2: the first value, which has none


def char_width(data: bytes) -> int:
    """Bytes per character of the widest string `data` can decode or parse into: 1, 2 or 4.

    Only the non-ASCII bytes are looked at (translate deletes the rest in C). A lead byte 0xF0 or higher
    starts a character past U+FFFF; 0xC4 or higher (short of that), one past U+00FF. Continuation bytes
    (0x80–0xBF) sort below both, so the maximum byte decides. An escape can widen a parsed string where
    the text is narrow (`\\ud83d\\ude00` is ASCII): a surrogate escape counts 4, any past `\\u00ff` 2 (an
    escaped backslash before a `u` may count too: the width is never underestimated).
    """
    width = 1
    if not data.isascii():
        widest = max(data.translate(None, _ASCII))
        width = 4 if widest >= 0xF0 else 2 if widest >= 0xC4 else 1
    if width < 4 and b"\\u" in data:
        if _SURROGATE_ESCAPE.search(data):
            return 4
        if _WIDE_ESCAPE.search(data):
            width = 2
    return width


def loads(data: bytes | str, max_values: int = MAX_VALUES) -> Any:
    if value_bound(data) > max_values:
        raise TooManyValues(f"could hold more than {max_values:,} JSON values, the most ocisift parses")
    if isinstance(data, bytes) and len(data) * char_width(data) > MAX_DECODED_BYTES:
        raise TooManyValues(f"is {len(data):,} bytes with characters {char_width(data)} bytes wide once decoded, "
                            f"over the {MAX_DECODED_BYTES >> 20} MiB ocisift decodes")
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def load(fh: IO[bytes] | IO[str], max_values: int = MAX_VALUES) -> Any:
    return loads(fh.read(), max_values)


def document(raw: bytes, what: str, max_values: int = MAX_VALUES) -> Any:
    """Parse a document or raise MalformedDocument saying which of the two ways it failed."""
    try:
        return loads(raw, max_values)
    except TooManyValues as exc:
        raise MalformedDocument(f"{what} {exc}") from None
    except ValueError as exc:  # UnicodeDecodeError is one
        raise MalformedDocument(f"{what} is not valid JSON: {exc}") from None
