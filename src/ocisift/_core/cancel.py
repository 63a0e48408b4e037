"""Stopping a process's transfers at once (Ctrl-C, SIGTERM, SIGHUP), and the few steps that must not be cut in half.

`cancel()` marks every transfer of the process cancelled and runs the hooks
stores registered (the registry's watchdog shuts the sockets of responses in
flight, which ends a blocked read at once). Every verified read checks the
mark per chunk (`check()`), so workers stop within a chunk even on local
files, and their clean-up (temporary files, staging) runs as they unwind.

`shielded()` wraps what must happen whole or not at all once it has begun:
moving staged files into place, replacing index.json, publishing an archive.
Cancelling inside it is noted, and takes effect when it ends.

`stop_signal()` is the signal that asked (SIGINT unless told otherwise), so
the command line can exit 128 + its number, as a shell reports a process
that signal ended.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .errors import OcisiftError

_cancelled = threading.Event()
_hooks: list[Callable[[], None]] = []
_state = threading.local()
_deferred = threading.Event()
_signal: list[int] = []  # the signal that asked to stop, first one only


class Cancelled(OcisiftError):
    """A transfer stopped because the process was asked to stop."""

    exit_code = 130


def on_cancel(hook: Callable[[], None]) -> None:
    """Run `hook` whenever transfers are cancelled (registered once, at import, by a store module)."""
    if hook not in _hooks:
        _hooks.append(hook)


def note_signal(signum: int) -> None:
    """Remember which signal asked to stop (the first one: the exit code says what ended the command)."""
    if not _signal:
        _signal.append(signum)


def stop_signal() -> int:
    return _signal[0] if _signal else int(signal.SIGINT)


def cancel() -> None:
    _cancelled.set()
    for hook in list(_hooks):
        try:
            hook()
        except Exception:  # a hook that fails must not keep the others from running
            pass


def cancelled() -> bool:
    return _cancelled.is_set()


def check() -> None:
    if _cancelled.is_set():
        raise Cancelled("interrupted")


def sleep(seconds: float) -> None:
    """time.sleep that a cancel ends at once (then raises Cancelled): retries wait this way."""
    if _cancelled.wait(max(seconds, 0.0)):
        raise Cancelled("interrupted")


def reset() -> None:
    """A new command in the same process starts uncancelled."""
    _cancelled.clear()
    _deferred.clear()
    _signal.clear()


def in_shield() -> bool:
    return bool(getattr(_state, "depth", 0))


def defer() -> None:
    """Called by an interrupt that arrives inside a shield: it takes effect when the shield ends."""
    _deferred.set()


@contextmanager
def shielded() -> Iterator[None]:
    _state.depth = getattr(_state, "depth", 0) + 1
    try:
        yield
    finally:
        _state.depth -= 1
    if _state.depth == 0 and _deferred.is_set():
        _deferred.clear()
        cancel()
        raise KeyboardInterrupt
