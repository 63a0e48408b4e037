"""The stream plumbing under pull and copy: same bytes out, errors kept, threads ended, memory bounded."""

from __future__ import annotations

import io
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocisift._core.digest import Digest, VerifyingReader
from ocisift._core.errors import IntegrityError
from ocisift._core.streams import ReadAhead, copy_stream


class Trickle(io.RawIOBase):
    """A source that hands out at most `step` bytes per read and counts its reads."""

    def __init__(self, data: bytes, step: int) -> None:
        super().__init__()
        self.inner = io.BytesIO(data)
        self.step = step
        self.reads = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        self.reads += 1
        return self.inner.readinto(memoryview(buffer)[: self.step])


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=5000), step=st.integers(1, 700), chunk=st.integers(1, 900),
       depth=st.integers(1, 4), ask=st.integers(1, 1100))
def test_read_ahead_gives_back_exactly_the_source(data, step, chunk, depth, ask):
    out = bytearray()
    with ReadAhead(Trickle(data, step), depth=depth, chunk=chunk) as ahead:
        copy_stream(ahead, out.extend, chunk=ask)
        assert ahead.readinto(bytearray(10)) == 0  # and stays at the end
    assert bytes(out) == data


def test_copy_stream_counts_what_it_moved():
    out = io.BytesIO()
    assert copy_stream(Trickle(b"x" * 3000, 333), out.write, chunk=256) == 3000
    assert out.getvalue() == b"x" * 3000


def test_a_digest_mismatch_in_the_reader_thread_surfaces_in_the_caller():
    data = b"layer bytes " * 1000
    wrong = Digest.of(b"something else")
    with ReadAhead(VerifyingReader(io.BytesIO(data), wrong, len(data)), chunk=1024) as ahead:
        with pytest.raises(IntegrityError, match="does not match"):
            copy_stream(ahead, lambda _: None)
        with pytest.raises(IntegrityError):  # and on every later read: drain() cannot swallow it
            ahead.drain()


def test_a_short_source_is_caught_through_read_ahead():
    data = b"abc" * 100
    source = VerifyingReader(io.BytesIO(data[:-1]), Digest.of(data), len(data))
    with ReadAhead(source) as ahead, pytest.raises(IntegrityError, match="ended after"):
        ahead.drain()


def test_memory_is_bounded_by_depth_when_the_caller_is_slow():
    source = Trickle(b"z" * (1 << 20), 1024)
    with ReadAhead(source, depth=3, chunk=1024) as ahead:
        deadline = time.monotonic() + 5
        while source.reads < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)  # give the reader thread every chance to run further ahead
        assert source.reads == 3  # three buffers filled, then it waits for one to come back
        ahead.readinto(bytearray(1024))
        deadline = time.monotonic() + 5
        while source.reads < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert source.reads == 4


def test_closing_early_ends_the_reader_thread():
    before = {t.ident for t in threading.enumerate()}
    ahead = ReadAhead(Trickle(b"q" * (1 << 20), 4096), depth=2, chunk=4096)
    ahead.readinto(bytearray(100))
    ahead.close()
    assert ahead.closed
    left = [t for t in threading.enumerate() if t.ident not in before and t.name == "ocisift-read-ahead"]
    assert left == []


def test_read_ahead_passes_on_what_its_source_verifies():
    # A layout writer given a stream that verifies itself does not hash it again.
    data = b"blob" * 100
    digest = Digest.of(data)
    with ReadAhead(VerifyingReader(io.BytesIO(data), digest, len(data))) as ahead:
        assert ahead.verifies == digest
    with ReadAhead(io.BytesIO(data)) as plain:
        assert plain.verifies is None
