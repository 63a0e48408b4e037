"""Counting the requests made for one piece of work (a tag of a sync), whichever threads make them.

A sync runs several images at once, and one tag's blobs move in a pool of
threads, so a counter per session or per thread would mix tags up. The meter
is a context variable instead: the work sets one, the registry session counts
each request it sends into the meter of the context it runs in, and a thread
started for the work runs in a copy of that context (`in_this_context`), so
its requests count where they belong.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


class RequestMeter:
    """Requests sent, by registry host."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_host: dict[str, int] = {}

    def count(self, host: str) -> None:
        with self._lock:
            self.by_host[host] = self.by_host.get(host, 0) + 1

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.by_host.values())


_current: contextvars.ContextVar[RequestMeter | None] = contextvars.ContextVar("ocisift_request_meter", default=None)


@contextmanager
def metering() -> Iterator[RequestMeter]:
    """A fresh meter for the block: the requests made inside it (and in threads it starts) count in it."""
    meter = RequestMeter()
    token = _current.set(meter)
    try:
        yield meter
    finally:
        _current.reset(token)


def count_request(host: str) -> None:
    """One request sent to `host`, counted in the current meter, if there is one."""
    meter = _current.get()
    if meter is not None:
        meter.count(host)


def in_this_context(fn: Callable[P, R]) -> Callable[P, R]:
    """`fn`, to run in another thread within a copy of the calling thread's context (its meter included).

    A copy per call: one context cannot be entered by two threads at once.
    """
    context = contextvars.copy_context()

    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return context.run(fn, *args, **kwargs)

    return run
