"""The bounds checked before any JSON is parsed never underestimate (jsontext's value count and width)."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocisift._core import jsontext
from ocisift._core.errors import MalformedDocument

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    max_leaves=40,
)


def _values(obj: Any) -> int:
    """Each value twice (keys too), as the bound counts them at the least."""
    if isinstance(obj, dict):
        return 2 + sum(_values(k) + _values(v) for k, v in obj.items())
    if isinstance(obj, list):
        return 2 + sum(_values(v) for v in obj)
    return 2


def _widest(obj: Any) -> int:
    """Bytes per character of the widest string in a parsed value (keys included)."""
    if isinstance(obj, dict):
        return max([1, *(max(_widest(k), _widest(v)) for k, v in obj.items())])
    if isinstance(obj, list):
        return max([1, *(_widest(v) for v in obj)])
    if isinstance(obj, str) and obj:
        top = max(map(ord, obj))
        return 4 if top > 0xFFFF else 2 if top > 0xFF else 1
    return 1


@settings(max_examples=300, deadline=None)
@given(json_values, st.booleans())
def test_the_bounds_never_underestimate(value, ascii_only):
    text = json.dumps(value, ensure_ascii=ascii_only)  # escapes, or the characters themselves
    raw = text.encode()
    assert jsontext.value_bound(raw) >= _values(value)
    assert jsontext.value_bound(text) == jsontext.value_bound(raw)
    decoded = raw.decode()
    assert jsontext.char_width(raw) >= max(_widest(value), _widest(decoded))
    assert sys.getsizeof(decoded) <= 80 + len(raw) * jsontext.char_width(raw)  # 80: the largest header


@pytest.mark.parametrize(("text", "width"), [
    (b'"abc"', 1), ('"\u00e9"'.encode(), 1), ('"\u0100"'.encode(), 2), ('"\uffff"'.encode(), 2),
    ('"\U0001F600"'.encode(), 4), (b'"\\u00ff"', 1), (b'"\\u0100"', 2), (b'"\\ud83d\\ude00"', 4),
])
def test_char_width_reads_lead_bytes_and_escapes(text, width):
    assert jsontext.char_width(text) == width
    assert jsontext.loads(text) == json.loads(text)


def test_over_either_bound_is_refused_before_parsing():
    with pytest.raises(jsontext.TooManyValues, match="JSON values"):
        jsontext.loads(b"[" + b"0," * jsontext.MAX_VALUES + b"0]")
    wide = b'"' + b"a" * (jsontext.MAX_DECODED_BYTES // 4) + "\U0001F600".encode() + b'"'
    with pytest.raises(jsontext.TooManyValues, match="4 bytes wide"):
        jsontext.loads(wide)
    with pytest.raises(MalformedDocument, match=r"^index\.json could hold more than"):
        jsontext.document(b"[" + b"{}," * jsontext.MAX_VALUES + b"{}]", "index.json")
    with pytest.raises(MalformedDocument, match=r"^x is not valid JSON"):
        jsontext.document(b"[1,", "x")
    with pytest.raises(MalformedDocument, match="nested too deeply"):
        jsontext.document(b"[" * 100_000, "x")
