"""Numbers a server or a user writes are read with bounds: no ValueError escapes as "internal error"."""

from __future__ import annotations

import pytest

from ocisift._core.errors import OcisiftError
from ocisift._core.versions import TagFilter
from ocisift._stores.registry.session import header_number


@pytest.mark.parametrize(("text", "expected"), [
    ("0", 0), (" 1234 ", 1234), ("9" * 19, int("9" * 19)),
    ("9" * 5000, None),  # int() would raise: over 4,300 digits
    ("²", None), ("١٢", None),  # digits to str.isdigit, not to int
    ("-1", None), ("1e3", None), ("", None), (None, None),
])
def test_header_numbers_are_ascii_decimal_and_bounded(text, expected):
    assert header_number(text) == expected


def test_a_docker_archive_position_in_other_digits_is_no_position(tmp_path, cli):
    archive = tmp_path / "x.tar"
    archive.write_bytes(b"")
    res = cli("resolve", f"docker-archive:{archive}@²")
    assert res.code in (2, 3) and "internal error" not in res.err


def test_a_range_with_a_5000_digit_number_is_a_usage_error():
    with pytest.raises(OcisiftError) as caught:
        TagFilter.build(">=" + "9" * 5000, None)
    assert caught.value.exit_code == 2
