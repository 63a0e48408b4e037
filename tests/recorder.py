"""A loopback stand-in for a registry that keeps the exact bytes of every request it receives.

It answers every request 401: without Authorization with a challenge (Basic, or Bearer with a token
realm on its own origin, so credentials may go there), with Authorization as a refusal. Its token
realm answers whatever the test sets. A request is recorded as the raw bytes of its head, before any
parser could tidy them up, so a test can see exactly which header lines a client sent: an injected
line, a Python repr or a stray byte is there to be found, not normalised away.
"""

from __future__ import annotations

import base64
import contextlib
import re
import socket
import socketserver
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field

MAX_HEAD = 1 << 20
# The header names ocisift's requests carry; anything else in a recorded head is an injection.
SENT_HEADERS = {"host", "accept", "accept-encoding", "user-agent", "authorization", "content-type",
                "content-length", "connection", "range", "transfer-encoding"}
_NAME = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


@dataclass
class Request:
    head: bytes  # the request line and header lines, as received, without the blank line
    body: bytes

    @property
    def line(self) -> str:
        return self.head.split(b"\r\n", 1)[0].decode("latin-1")

    @property
    def path(self) -> str:
        parts = self.line.split(" ")
        return parts[1] if len(parts) > 1 else ""

    def headers(self) -> list[tuple[bytes, bytes]]:
        out = []
        for raw in self.head.split(b"\r\n")[1:]:
            name, colon, value = raw.partition(b":")
            out.append((name, value.strip(b" \t")) if colon else (raw, b""))
        return out

    def authorizations(self) -> list[bytes]:
        return [v for n, v in self.headers() if n.lower() == b"authorization"]

    def problems(self) -> list[str]:
        """What no well-formed request of ocisift's holds: a bare CR or LF, a line that is no header,
        a header ocisift does not send, a second Authorization, a Python repr."""
        found = []
        if re.search(rb"\r(?!\n)|(?<!\r)\n", self.head):
            found.append("a bare CR or LF in the head")
        for name, _ in self.headers():
            if not _NAME.fullmatch(name):
                found.append(f"a line that is no header: {name[:80]!r}")
            elif name.decode().lower() not in SENT_HEADERS:
                found.append(f"a header ocisift does not send: {name[:80]!r}")
        if len(self.authorizations()) > 1:
            found.append("more than one Authorization")
        for value in self.authorizations():
            if re.search(rb"\[\s*'|b'|b\"|\{'|\bNone\b|\bTrue\b", value + self._decoded_basic(value)):
                found.append(f"a Python repr in Authorization: {value[:80]!r}")
        return found

    @staticmethod
    def _decoded_basic(value: bytes) -> bytes:
        if value.startswith(b"Basic "):
            try:
                return base64.b64decode(value[6:], validate=True)
            except ValueError:
                return b""
        return b""


@dataclass
class Recorder:
    """What the server does, and what it was sent."""

    scheme: str = "basic"  # "basic" or "bearer"
    token_reply: bytes = b'{"token": "from-the-recorder"}'
    token_status: int = 200
    accepts: set[bytes] = field(default_factory=set)  # Authorization values answered 200 (a login that works)
    requests: list[Request] = field(default_factory=list)
    host: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def challenge(self) -> str:
        if self.scheme == "bearer":
            return f'Bearer realm="http://{self.host}/token",service="recorder"'
        return 'Basic realm="recorder"'

    def authorized(self) -> list[Request]:
        """Requests to the registry (not its token realm) that carried Authorization."""
        return [r for r in self.requests if r.authorizations() and not r.path.startswith("/token")]

    def token_requests(self) -> list[Request]:
        return [r for r in self.requests if r.path.startswith("/token")]

    def sent(self) -> set[bytes]:
        """Every Authorization value the registry's own paths received."""
        return {v for r in self.authorized() for v in r.authorizations()}

    def problems(self) -> list[str]:
        return [f"{r.line[:100]}: {p}" for r in self.requests for p in r.problems()]

    def token_form(self) -> list[dict[str, list[str]]]:
        """The form bodies POSTed to the token realm (the identity-token grant), parsed."""
        return [urllib.parse.parse_qs(r.body.decode("ascii"), keep_blank_values=True)
                for r in self.token_requests() if r.line.startswith("POST")]

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()


def _read_request(sock: socket.socket) -> Request | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
        if len(data) > MAX_HEAD:
            return Request(data[:MAX_HEAD], b"")
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            length = int(value.strip())
    while len(rest) < min(length, MAX_HEAD):
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return Request(head, rest[:length])


@contextlib.contextmanager
def recording(recorder: Recorder | None = None) -> Iterator[Recorder]:
    """The recorder on a free loopback port (HOST:PORT in `recorder.host`) for one `with` block."""
    rec = recorder or Recorder()

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.settimeout(10)
            try:
                req = _read_request(self.request)
            except OSError:
                return
            if req is None:
                return
            with rec.lock:
                rec.requests.append(req)
            if req.path.startswith("/token") and rec.scheme == "bearer":
                body = rec.token_reply
                status = f"{rec.token_status} {'OK' if rec.token_status == 200 else 'Refused'}"
                head = (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                        "Connection: close\r\n\r\n").encode()
            elif set(req.authorizations()) & rec.accepts:
                body = b"{}"
                head = (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                        "Docker-Distribution-API-Version: registry/2.0\r\nConnection: close\r\n\r\n").encode()
            else:
                body = b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
                head = (f"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: {rec.challenge()}\r\n"
                        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                        "Connection: close\r\n\r\n").encode()
            with contextlib.suppress(OSError):
                self.request.sendall(head + body)

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    server = Server(("127.0.0.1", 0), Handler)
    rec.host = f"127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()


def basic(user: bytes, password: bytes) -> bytes:
    """The Authorization value Basic authentication makes of these exact bytes."""
    return b"Basic " + base64.b64encode(user + b":" + password)
