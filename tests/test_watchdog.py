"""The watchdog that bounds whole responses: `done` must be callable from anywhere, a garbage collector's
finalizer included, which runs in whatever thread allocates, the watchdog's own while it holds its lock."""

from __future__ import annotations

import threading
import time

from ocisift._stores.registry.watchdog import TICK, Watchdog


class FakeSocket:
    def __init__(self) -> None:
        self.shut = 0

    def shutdown(self, how: int) -> None:
        self.shut += 1


def test_done_takes_no_lock_so_a_finalizer_cannot_deadlock_the_watchdog():
    dog = Watchdog()
    w = dog.watch(FakeSocket(), whole=60)
    finished = threading.Event()
    with dog._lock:  # as the watchdog's thread holds it while it looks at the watches

        def finalizer() -> None:
            dog.done(w)
            finished.set()

        t = threading.Thread(target=finalizer, daemon=True)
        t.start()
        assert finished.wait(5), "done() waited for the watchdog's lock"
    assert w.finished


def test_a_finished_watch_is_dropped_and_never_expired_an_open_one_is():
    dog = Watchdog()
    read, stalled = FakeSocket(), FakeSocket()
    finished = dog.watch(read, whole=0.0)
    dog.done(finished)
    open_one = dog.watch(stalled, whole=0.0)
    deadline = time.monotonic() + 10
    while not open_one.expired and time.monotonic() < deadline:
        time.sleep(TICK / 2)
    time.sleep(TICK * 2)
    assert open_one.expired and stalled.shut == 1
    assert not finished.expired and read.shut == 0
    with dog._lock:
        assert dog._watches == set()
    dog.expire_all()
    assert read.shut == 0
