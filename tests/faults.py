"""A loopback proxy in front of the real registry that misbehaves on purpose."""

from __future__ import annotations

import contextlib
import gzip
import http.server
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class Faults:
    cut_blobs_once: bool = False          # first GET of each blob: full Content-Length, half the body, close
    busy_once: int = 0                    # first GET of each manifest and blob: this status (429, 503) with Retry-After: 1
    cut_every_time: bool = False          # every blob GET is cut: the data cannot be had
    stall_blobs_once: float = 0.0         # first GET of each blob: half the body, then silence for this long
    short_length_once: bool = False       # first GET of each blob: declare (and send) 100 bytes too few
    wrong_bytes: bool = False             # every blob GET: one byte flipped
    gzip_blobs: bool = False              # every blob GET: sent gzip-compressed with Content-Encoding: gzip
    paginate_tags: int | None = None      # serve the real tag list in pages with Link headers (distribution v3 style)
    redirect_blobs_to: str | None = None  # blob GETs answer 307 to http://HOST/storage/<digest>
    delay_blobs: float = 0.0              # every blob GET waits this long before it is forwarded
    range_from_zero: bool = False         # every ranged blob GET: 206 with the whole blob from byte 0
    revoke_first_token_after: int | None = None  # the first bearer token seen: 401 after this many uses
    revoke_every_token: bool = False      # every request carrying a bearer token: 401
    wrong_bytes_in: str | None = None     # GETs of the blob with this digest only: one byte flipped
    trickle_blobs: float = 0.0            # every blob body: 64 KiB, then this long a pause, and so on
    blob_gets_in_flight: int = 0          # blob GETs being answered now, and the most at once so far
    max_blob_gets_in_flight: int = 0
    trickled: int = 0                     # blob body bytes trickle_blobs has sent so far
    head_length: bool = False             # HEAD answers declare the registry's Content-Length (else 0)
    keep_alive: bool = False              # answer in HTTP/1.1 and keep connections open (else HTTP/1.0: close)
    auth_log: list[tuple[float, str, str, int]] = field(default_factory=list)  # (monotonic, path, Authorization, status)
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # (method, path, Range)
    seen: Counter = field(default_factory=Counter)
    tokens_seen: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _challenge_of(upstream: str) -> str:
    """The registry's own WWW-Authenticate challenge, as an unauthenticated request gets it."""
    try:
        urllib.request.urlopen(f"http://{upstream}/v2/", timeout=10).close()
    except urllib.error.HTTPError as exc:
        return exc.headers.get("WWW-Authenticate", "")
    return ""


def start_proxy(upstream: str, faults: Faults) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        def _forward(self, method: str) -> None:
            counted = method == "GET" and "/blobs/" in self.path
            if counted:
                with faults.lock:
                    faults.blob_gets_in_flight += 1
                    faults.max_blob_gets_in_flight = max(faults.max_blob_gets_in_flight, faults.blob_gets_in_flight)
            try:
                self._answer(method)
            finally:
                if counted:
                    with faults.lock:
                        faults.blob_gets_in_flight -= 1

        def _answer(self, method: str) -> None:
            faults.requests.append((method, self.path, self.headers.get("Range", "")))
            key = (method, self.path)
            faults.seen[key] += 1
            first = faults.seen[key] == 1
            if method == "GET" and ("/manifests/" in self.path or "/blobs/" in self.path) and faults.busy_once and first:
                self.send_response(faults.busy_once)
                self.send_header("Retry-After", "1")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if method == "GET" and "/blobs/" in self.path and faults.redirect_blobs_to:
                self.send_response(307)
                self.send_header("Location", f"http://{faults.redirect_blobs_to}/storage/{self.path.rsplit('/', 1)[-1]}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if method == "GET" and "/tags/list" in self.path and faults.paginate_tags:
                self._paged_tags()
                return
            if method == "GET" and "/blobs/" in self.path and faults.delay_blobs:
                time.sleep(faults.delay_blobs)
            authorization = self.headers.get("Authorization", "")
            revoking = faults.revoke_first_token_after is not None or faults.revoke_every_token
            if revoking and authorization.startswith("Bearer "):
                faults.tokens_seen.setdefault(authorization, 0)
                first = next(iter(faults.tokens_seen))
                faults.tokens_seen[authorization] += 1
                limit = faults.revoke_first_token_after or 0
                if faults.revoke_every_token or (authorization == first and faults.tokens_seen[first] > limit):
                    challenge = _challenge_of(upstream)
                    faults.auth_log.append((time.monotonic(), self.path, authorization, 401))
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", challenge)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
            req = urllib.request.Request(f"http://{upstream}{self.path}", method=method)
            forwarded = ("Accept", "Authorization", "Content-Type") if faults.range_from_zero else (
                "Accept", "Authorization", "Range", "Content-Type")
            for h in forwarded:
                if self.headers.get(h):
                    req.add_header(h, self.headers[h])
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:
                    status, headers, body = resp.status, resp.headers, resp.read()
            except urllib.error.HTTPError as exc:
                status, headers, body = exc.code, exc.headers, exc.read()
            faults.auth_log.append((time.monotonic(), self.path, self.headers.get("Authorization", ""), status))
            cut = (method == "GET" and "/blobs/" in self.path and len(body) > 1
                   and ((faults.cut_blobs_once and first and status == 200)
                        or (faults.cut_every_time and status in (200, 206))))
            blob_get = method == "GET" and "/blobs/" in self.path and status in (200, 206) and len(body) > 200
            if blob_get and (faults.wrong_bytes or (faults.wrong_bytes_in and self.path.endswith(faults.wrong_bytes_in))):
                body = body[:-1] + bytes([body[-1] ^ 0xFF])
            declared = len(body)
            if method == "HEAD" and faults.head_length and headers.get("Content-Length"):
                declared = int(headers["Content-Length"])
            if blob_get and faults.short_length_once and first:
                declared = len(body) - 100
                body = body[:declared]
            stall = blob_get and faults.stall_blobs_once > 0 and first
            if blob_get and faults.range_from_zero and self.headers.get("Range"):
                status = 206
                self.send_response(status)
                self.send_header("Content-Range", f"bytes 0-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(status)
            if blob_get and faults.gzip_blobs:
                body = gzip.compress(body, mtime=0)
                declared = len(body)
                self.send_header("Content-Encoding", "gzip")
            for h in ("Content-Type", "Docker-Content-Digest", "Content-Range", "WWW-Authenticate", "Location"):
                if headers.get(h):
                    self.send_header(h, headers[h])
            self.send_header("Content-Length", str(declared))
            self.end_headers()
            if method != "HEAD":
                if stall:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    time.sleep(faults.stall_blobs_once)
                    self.close_connection = True
                    return
                if blob_get and faults.trickle_blobs and not cut:
                    for at in range(0, len(body), 64 * 1024):
                        self.wfile.write(body[at : at + 64 * 1024])
                        self.wfile.flush()
                        with faults.lock:
                            faults.trickled += len(body[at : at + 64 * 1024])
                        time.sleep(faults.trickle_blobs)
                    return
                self.wfile.write(body[: len(body) // 2] if cut else body)
            if cut:
                self.close_connection = True

        def _paged_tags(self) -> None:
            import json
            import urllib.parse

            path, _, query = self.path.partition("?")
            params = dict(urllib.parse.parse_qsl(query))
            with urllib.request.urlopen(f"http://{upstream}{path}", timeout=10) as resp:
                body = json.loads(resp.read())
            tags = sorted(body.get("tags") or [])
            after = [t for t in tags if t > params["last"]] if "last" in params else tags
            page = after[: faults.paginate_tags]
            out = json.dumps({"name": body["name"], "tags": page}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            if len(after) > len(page):
                self.send_header("Link", f'<{path}?n={faults.paginate_tags}&last={page[-1]}>; rel="next"')
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def do_GET(self):
            self._forward("GET")

        def do_HEAD(self):
            self._forward("HEAD")

        def log_message(self, *args):
            pass

    if faults.keep_alive:
        Handler.protocol_version = "HTTP/1.1"
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@contextlib.contextmanager
def serving(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """A loopback HTTP server for one `with` block; yields HOST:PORT and always stops it."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def proxy(upstream: str, faults: Faults) -> Iterator[str]:
    """The misbehaving proxy in front of `upstream` for one `with` block; yields its HOST:PORT."""
    server = start_proxy(upstream, faults)
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
