"""Docker credential helpers (`docker-credential-NAME get`), asked within bounds of time and size.

The protocol: the server's address on stdin, `{"ServerURL", "Username",
"Secret"}` on stdout and exit 0; or a non-zero exit, with "credentials not
found in native keychain" when the helper has nothing for that server. A
helper is a program ocisift does not control, so it runs in a process group
of its own, its output is read up to MAX_OUTPUT bytes, and it is given the
network timeout to answer: past either it is killed (group and all) and the
lookup fails with exit 6. A stop signal kills it too.
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import signal
import subprocess
import time

from ..._core import cancel
from ..._core.errors import AuthError

PLAIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
MAX_OUTPUT = 1 << 20  # what a helper may print; an answer is a few hundred bytes
MAX_ERROR_OUTPUT = 64 * 1024
NOT_FOUND = "credentials not found"


class HelperError(AuthError):
    """A credential helper that failed, hung, or answered what is not an answer (exit 6)."""


def valid_name(name: str) -> bool:
    """A plain name: `docker-credential-NAME` is then looked up on PATH, never a path of the config's choosing."""
    return bool(PLAIN_NAME.fullmatch(name)) and ".." not in name


def ask(name: str, server: str, timeout: float) -> bytes | None:
    """What `docker-credential-NAME get` printed for `server`, or None when it has nothing for it."""
    program = f"docker-credential-{name}"
    code, out, err = run(program, "get", server.encode("utf-8", "surrogateescape"), timeout)
    if code == 0:
        return out
    said = " ".join((out or err).decode("utf-8", "replace").split())  # one line, whatever it printed
    if code > 0 and (not said or NOT_FOUND in said.lower()):
        return None
    if code < 0:
        raise HelperError(f"credential helper {program} was killed by {_signal_name(-code)}")
    raise HelperError(f"credential helper {program} failed (exit {code})" + (f": {said[:300]}" if said else ""))


def run(program: str, action: str, data: bytes, timeout: float) -> tuple[int, bytes, bytes]:
    """Run `program action` with `data` on stdin; its exit code, stdout and stderr, each bounded."""
    try:
        proc = subprocess.Popen([program, action], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True, close_fds=True)
    except FileNotFoundError:
        raise HelperError(f"credential helper {program} is not on PATH") from None
    except OSError as exc:
        raise HelperError(f"credential helper {program} cannot be run: {exc.strerror or exc}") from None
    try:
        out, err = _communicate(proc, program, data, time.monotonic() + timeout, timeout)
        return proc.returncode, out, err
    finally:
        if proc.returncode is None:
            _kill(proc)
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


def _communicate(proc: subprocess.Popen[bytes], program: str, data: bytes, deadline: float,
                 timeout: float) -> tuple[bytes, bytes]:
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    with contextlib.suppress(BrokenPipeError, OSError):  # a helper may exit without reading
        proc.stdin.write(data)  # an address: far less than a pipe holds, so this does not block
    with contextlib.suppress(OSError):
        proc.stdin.close()
    out, err = bytearray(), bytearray()
    limits = {proc.stdout.fileno(): (out, MAX_OUTPUT), proc.stderr.fileno(): (err, MAX_ERROR_OUTPUT)}
    with selectors.DefaultSelector() as selector:
        for fd in limits:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            cancel.check()
            left = deadline - time.monotonic()
            if left <= 0:
                raise HelperError(f"credential helper {program} did not answer within {timeout:g} s (--timeout)")
            for key, _ in selector.select(min(left, 0.1)):  # short waits: a stop is seen within 0.1 s
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fd)
                    continue
                buffer, limit = limits[key.fd]
                buffer += chunk
                if len(buffer) > limit:
                    raise HelperError(f"credential helper {program} printed more than {limit:,} bytes")
    while proc.poll() is None:  # its output is closed; it should be exiting
        cancel.check()
        if time.monotonic() > deadline:
            raise HelperError(f"credential helper {program} did not exit within {timeout:g} s (--timeout)")
        time.sleep(0.01)
    return bytes(out), bytes(err)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # its own group: what it started goes too
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
