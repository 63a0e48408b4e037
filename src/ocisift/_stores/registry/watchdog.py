"""Time bounds a socket timeout cannot give: a whole response, and a minimum rate for a long body.

A socket timeout bounds each wait for bytes; a server that sends one byte a
second never trips it. So one watchdog thread per process looks at every
response in flight: headers and small bodies must arrive whole within the
timeout, a blob body must bring at least MIN_BYTES every two timeouts. When a
bound passes, the watchdog shuts the socket down, which ends the blocked read
at once, and marks the watch expired so the reader reports a timeout (exit 1)
instead of a broken transfer to resume.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from ..._core import cancel
from ..._core.errors import TransferTimeout

TICK = 0.2
MIN_BYTES = 64 * 1024  # per window of two timeouts: about 1 KiB/s at the default 30 s

_local = threading.local()


class Watch:
    def __init__(self, sock: Any, deadline: float | None, window: float | None) -> None:
        self.sock = sock
        self.deadline = deadline
        self.window = window
        self.window_start = time.monotonic()
        self.window_bytes = 0
        self.expired = False
        self.finished = False  # the response is read (Watchdog.done): never expired from now on

    def progress(self, n: int) -> None:
        self.window_bytes += n

    def _check(self, now: float) -> bool:
        if self.deadline is not None and now > self.deadline:
            return True
        if self.window is not None and now - self.window_start >= self.window:
            if self.window_bytes < MIN_BYTES:
                return True
            self.window_start, self.window_bytes = now, 0
        return False

    def _expire(self) -> None:
        self.expired = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except (OSError, AttributeError):
            pass


class Watchdog:
    def __init__(self) -> None:
        self._watches: set[Watch] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def watch(self, sock: Any, *, whole: float | None = None, window: float | None = None) -> Watch:
        w = Watch(sock, time.monotonic() + whole if whole is not None else None, window)
        with self._lock:
            self._watches.add(w)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="ocisift-watchdog", daemon=True)
                self._thread.start()
        return w

    def done(self, w: Watch) -> None:
        """The response is read. Takes no lock: a stream the garbage collector finalizes is closed (and calls
        this) in whatever thread allocated at that moment, the watchdog's own while it holds its lock among
        them; taking the lock there deadlocked every request after it. The watch is dropped on the next tick."""
        w.finished = True

    def expire_all(self) -> None:
        """End every watched response now (transfers are cancelled): their blocked reads return at once."""
        with self._lock:
            due = [w for w in self._watches if not w.finished]
            self._watches.clear()
        for w in due:
            w._expire()

    def _run(self) -> None:
        while True:
            time.sleep(TICK)
            now = time.monotonic()
            with self._lock:
                live = {w for w in self._watches if not w.finished}
                due = [w for w in live if w._check(now)]
                self._watches = live.difference(due)
            for w in due:
                if not w.finished:
                    w._expire()


WATCHDOG = Watchdog()
cancel.on_cancel(WATCHDOG.expire_all)


def socket_of(resp: urllib3.BaseHTTPResponse) -> Any:
    """The socket a response body arrives on, for the watchdog to shut.

    Usually the connection's. A response that ends its connection (HTTP/1.0, `Connection: close`) has
    been handed the socket by http.client, which already cleared `connection.sock`: it is then only
    reachable through the response's own file object, and without it a stalled read could not be cut.
    """
    connection = getattr(resp, "connection", None) or getattr(resp, "_connection", None)
    sock = getattr(connection, "sock", None)
    if sock is not None:
        return sock
    raw = getattr(getattr(getattr(resp, "_fp", None), "fp", None), "raw", None)  # http.client's SocketIO
    return getattr(raw, "_sock", None)


def headers_timed_out() -> bool:
    """Did this thread's last request lose its socket to the watchdog while waiting for headers?"""
    expired = bool(getattr(_local, "expired", False))
    _local.expired = False
    return expired


class _Watched:
    """A connection whose wait for a response's headers is bounded as a whole."""

    whole_timeout: float = 30.0

    def getresponse(self) -> Any:
        w = WATCHDOG.watch(getattr(self, "sock", None), whole=self.whole_timeout)
        _local.expired = False
        try:
            resp = super().getresponse()  # type: ignore[misc]
        finally:
            WATCHDOG.done(w)
            _local.expired = w.expired
        if w.expired:  # headers that came whole only because the socket was shut: no answer to trust
            raise TransferTimeout(f"no whole answer within {self.whole_timeout:g} s (--timeout)")
        return resp


def watched_pools(timeout: float) -> dict[str, type[HTTPConnectionPool]]:
    """Connection pool classes whose connections bound the wait for headers to `timeout` in all."""
    http_conn = type("WatchedHTTPConnection", (_Watched, HTTPConnection), {"whole_timeout": timeout})
    https_conn = type("WatchedHTTPSConnection", (_Watched, HTTPSConnection), {"whole_timeout": timeout})
    http_pool = type("WatchedHTTPConnectionPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn})
    https_pool = type("WatchedHTTPSConnectionPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn})
    return {"http": http_pool, "https": https_pool}
