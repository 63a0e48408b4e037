"""JSON that is cheap to send and dear to parse: `{},` is three bytes of text and a 72-byte dict.

Every JSON text from outside is refused before parsing when its punctuation says it could hold more than
MAX_VALUES values (ocisift._core.jsontext). These cases put the dearest shapes we know into a layout's
index.json, an unknown field that every reader parses and none keeps, once just under the bound (the
reader must succeed within the memory limit) and once just over it (exit 5, before any parse: fast
and small), through `ocisift tags`, which reads nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ocisift._core.jsontext import MAX_DECODED_BYTES, MAX_VALUES, char_width, value_bound

# Each shape: one item of a JSON array, and how many values the bound counts for it (its comma included).
SHAPES: dict[str, Callable[[int], str]] = {
    "empty objects": lambda i: "{}",
    "empty arrays": lambda i: "[]",
    "objects of one member": lambda i: '{"a":{}}',
    "distinct short strings": lambda i: f'"{i:x}"',
    "two-byte strings": lambda i: '"' + chr(0x100 + i % 0xD000) + chr(0x100 + i // 0xD000) + '"',
    "four-byte strings": lambda i: '"' + chr(0x10000 + i % 0xF0000) + chr(0x10000 + i // 0xF0000) + '"',
    "distinct large integers": lambda i: str(10**12 + i),
    "twenty-digit integers": lambda i: str(10**19 + i),
    "floats": lambda i: f"{i}.5",
    "short floats": lambda i: "1.5",
    "short uncached integers": lambda i: str(257 + i % 700),
}


def _items(shape: Callable[[int], str], values: int, room: int) -> Iterator[str]:
    """Items of `shape` while the text stays within `values` counted values and `room` decoded bytes."""
    used = size = width = 0
    i = 0
    while True:
        item = shape(i)
        cost = value_bound(item)  # its punctuation, and the comma before it where the bound counts the first value
        encoded = item.encode() + b","
        wider = max(width, char_width(encoded))
        if used + cost > values or (size + len(encoded)) * wider > room:
            return
        used, size, width = used + cost, size + len(encoded), wider
        yield item
        i += 1


def _write_layout(root: Path, shape: Callable[[int], str], over: bool) -> tuple[str, int]:
    """A layout with no manifests whose index.json carries `"x": [shape…]` up to the first bound it meets
    (values or decoded bytes), or past the values bound; returns the reference and the values counted."""
    (root / "blobs" / "sha256").mkdir(parents=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    head, tail = '{"schemaVersion":2,"manifests":[],"x":[', "]}"
    fixed = value_bound(head + tail)
    with open(root / "index.json", "w", encoding="utf-8") as fh:
        fh.write(head)
        fh.write(",".join(_items(shape, MAX_VALUES - fixed, MAX_DECODED_BYTES - 1024)))
        if over:
            fh.write(",{}" * 2)
        fh.write(tail)
    raw = (root / "index.json").read_bytes()
    bound = value_bound(raw)
    assert bound > MAX_VALUES if over else bound <= MAX_VALUES, bound
    # Filled: within a few items of one bound or the other.
    assert over or bound > MAX_VALUES - 25 or len(raw) * char_width(raw) > MAX_DECODED_BYTES - 1200, (bound, len(raw))
    return f"oci:{root}", bound


@pytest.mark.parametrize("name", list(SHAPES))
def test_the_dearest_json_under_the_bound_is_read_within_the_limits(arena, name):
    ref, values = _write_layout(arena.tmp / "layout", SHAPES[name], over=False)
    result = arena.check(arena.run(["tags", ref, "--format", "json"]), 0)
    assert result.json()["tags"] == [], f"{values:,} values: {result.describe()}"


@pytest.mark.parametrize("name", ["empty objects", "distinct short strings"])
def test_json_over_the_bound_is_exit_5_before_parsing(arena, name):
    ref, _ = _write_layout(arena.tmp / "layout", SHAPES[name], over=True)
    result = arena.check(arena.run(["tags", ref, "--format", "json"]), 5)
    assert "JSON values" in result.message and "index.json" in result.message, result.describe()
    assert result.seconds < 5 and result.rss_mib < 100, result.describe()


# One string as long as a layout's index.json may be: the text itself is the cost (its bytes, the decoded
# text, the parsed string), and one wide character makes all of it wide. name: (filler, last, width).
LONG_STRINGS: dict[str, tuple[str, str, int]] = {
    "ASCII": ("a", "a", 1),
    "Latin-1 (two UTF-8 bytes, one byte decoded)": ("\u00e9", "\u00e9", 1),
    "ASCII and one U+0100": ("a", "\u0100", 2),
    "ASCII and one emoji": ("a", "\U0001F600", 4),
    "ASCII and one escaped emoji (text narrow, string wide)": ("a", "\\ud83d\\ude00", 4),
}


@pytest.mark.parametrize("name", list(LONG_STRINGS))
@pytest.mark.parametrize("over", [False, True])
def test_one_string_as_long_as_index_json_may_be(arena, name, over):
    filler, last, width = LONG_STRINGS[name]
    root = arena.tmp / "layout"
    (root / "blobs" / "sha256").mkdir(parents=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    head, tail = b'{"schemaVersion":2,"manifests":[],"x":"', last.encode() + b'"}'
    length = MAX_DECODED_BYTES // width + (width if over else 0)  # bytes of the whole file
    unit = filler.encode()
    room = length - len(head) - len(tail)
    with open(root / "index.json", "wb") as fh:
        fh.write(head)
        block = unit * (65536 // len(unit))
        for _ in range(room // len(block)):
            fh.write(block)
        fh.write(unit * ((room % len(block)) // len(unit)))
        fh.write(b"a" * ((room % len(block)) % len(unit)))
        fh.write(tail)
    assert (root / "index.json").stat().st_size == length
    result = arena.check(arena.run(["tags", f"oci:{root}", "--format", "json"]), 5 if over else 0)
    if over:
        assert "index.json" in result.message, result.describe()
        assert ("larger than" if width == 1 else "bytes wide") in result.message, result.describe()
        assert result.seconds < 5 and result.rss_mib < 100, result.describe()
