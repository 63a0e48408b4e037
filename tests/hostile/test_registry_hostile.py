"""A registry that misbehaves on purpose, on 127.0.0.1, with an accomplice on 127.0.0.2.

Every request either server receives is recorded with its Authorization
header, so the tests can show that credentials go only to the registry's own
origin (scheme, host, port): never to a redirect target, a pagination Link or
an upload Location elsewhere, and a password never to a plain-HTTP token
service elsewhere. The other cases are the ways a registry can lie or stall:
a Docker-Content-Digest that disagrees with the bytes, a manifest longer than
its descriptor, bodies that drip, bodies too large to hold, endless pages.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

import ocisift
from ocisift import RegistryOptions, Selector

USER, PASSWORD = "hostile-user", "hostile-pass"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
LAYER = b"layer bytes " * 100
CONFIG = b"{}"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


MANIFEST = json.dumps({
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "artifactType": "application/vnd.acme.thing",
    "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": _digest(CONFIG), "size": len(CONFIG)},
    "layers": [{"mediaType": "application/octet-stream", "digest": _digest(LAYER), "size": len(LAYER),
                "annotations": {"org.opencontainers.image.title": "thing.bin"}}],
}, separators=(",", ":")).encode()
INDEX = json.dumps({
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
    "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": _digest(MANIFEST),
                   "size": len(MANIFEST) - 10,  # the index says less than the manifest is
                   "platform": {"os": "linux", "architecture": "amd64"}}],
}, separators=(",", ":")).encode()


@dataclass
class Seen:
    requests: list[tuple[str, str, str, str]] = field(default_factory=list)  # (host, method, path, Authorization)

    def at(self, host: str) -> list[tuple[str, str, str, str]]:
        return [r for r in self.requests if r[0] == host]


@dataclass
class World:
    registry: str  # 127.0.0.1:PORT
    elsewhere: str  # 127.0.0.2:PORT
    seen: Seen
    mode: dict[str, object]


def _serve(bind: str, handler: type[http.server.BaseHTTPRequestHandler]) -> http.server.ThreadingHTTPServer:
    server = http.server.ThreadingHTTPServer((bind, 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def world() -> Iterator[World]:
    seen = Seen()
    mode: dict[str, object] = {}
    hosts: dict[str, str] = {}

    class Base(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        me = ""

        def log_message(self, *args: object) -> None:
            pass

        def setup(self) -> None:
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms per response

        def _record(self, method: str) -> None:
            seen.requests.append((self.me, method, self.path, self.headers.get("Authorization", "")))

        def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _body(self) -> bytes:
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""

    class Elsewhere(Base):
        """The accomplice: whatever a redirect, Link or Location sends it, it serves, and records."""

        me = "elsewhere"

        def do_GET(self) -> None:
            self._record("GET")
            if self.path.startswith("/v2/r/tags/list"):
                self._send(200, json.dumps({"name": "r", "tags": ["b"]}).encode(), {"Content-Type": "application/json"})
            elif self.path.startswith("/blobs/"):
                self._send(200, LAYER if self.path.endswith(_digest(LAYER)) else CONFIG)
            elif self.path.startswith("/token"):
                self._send(200, json.dumps({"token": "anonymous-token"}).encode(), {"Content-Type": "application/json"})
            else:
                self._send(404)

        def do_PUT(self) -> None:
            self._record("PUT")
            self._body()
            self._send(201)

    class Registry(Base):
        me = "registry"

        def _authorized(self) -> bool:
            auth = self.headers.get("Authorization", "")
            if mode.get("bearer_realm_elsewhere"):
                if auth.startswith("Bearer ") and auth != "Bearer anonymous-token":
                    return True
                self._send(401, headers={"WWW-Authenticate": f'Bearer realm="http://{hosts["elsewhere"]}/token",'
                                                              'service="hostile"'})
                return False
            if auth == BASIC:
                return True
            self._send(401, headers={"WWW-Authenticate": 'Basic realm="hostile"'})
            return False

        def do_HEAD(self) -> None:
            self._record("HEAD")
            if self._authorized():
                self._send(404)  # nothing is here: uploads happen

        def do_GET(self) -> None:
            self._record("GET")
            if self.path == "/v2/" or not self._authorized():
                if self.path == "/v2/":
                    self._send(200)
                return
            p = self.path
            if p.startswith("/v2/r/tags/list"):
                if mode.get("endless_pages"):
                    n = int(p.rsplit("=", 1)[-1]) if "last=" in p else 0
                    self._send(200, json.dumps({"tags": [f"t{n}"]}).encode(),
                               {"Link": f'</v2/r/tags/list?last={n + 1}>; rel="next"'})
                elif mode.get("huge_tag_page"):
                    self._send(200, b'{"tags":["' + b"x" * (5 << 20) + b'"]}')
                else:
                    self._send(200, json.dumps({"name": "r", "tags": ["a"]}).encode(),
                               {"Link": f'<http://{hosts["elsewhere"]}/v2/r/tags/list?last=a>; rel="next"'})
            elif p.startswith("/v2/r/manifests/"):
                body = INDEX if p.endswith("/index") else MANIFEST
                media = json.loads(body)["mediaType"]
                claimed = _digest(b"something else") if mode.get("wrong_digest_header") else _digest(body)
                if mode.get("drip_body"):
                    self.send_response(200)
                    self.send_header("Content-Type", media)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    for byte in body:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(0.5)
                    return
                if mode.get("drip_headers"):
                    self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                    for _ in range(200):
                        self.wfile.write(b"X")
                        self.wfile.flush()
                        time.sleep(0.5)
                    return
                self._send(200, body, {"Content-Type": media, "Docker-Content-Digest": claimed})
            elif p.startswith("/v2/r/blobs/"):
                digest = p.rsplit("/", 1)[-1]
                if mode.get("trickle_blob"):
                    data = LAYER if digest == _digest(LAYER) else CONFIG
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    for i in range(len(data)):
                        self.wfile.write(data[i:i + 1])
                        self.wfile.flush()
                        time.sleep(0.05)
                    return
                self._send(307, headers={"Location": f"http://{hosts['elsewhere']}/blobs/{digest}"})
            else:
                self._send(404)

        def do_POST(self) -> None:
            self._record("POST")
            if self._authorized():
                self._body()
                self._send(202, headers={"Location": f"http://{hosts['elsewhere']}/upload/1"})

        def do_PUT(self) -> None:
            self._record("PUT")
            if self._authorized():
                self._body()
                self._send(201)

    servers = [_serve("127.0.0.1", Registry), _serve("127.0.0.2", Elsewhere)]
    hosts["registry"] = f"127.0.0.1:{servers[0].server_address[1]}"
    hosts["elsewhere"] = f"127.0.0.2:{servers[1].server_address[1]}"
    try:
        yield World(hosts["registry"], hosts["elsewhere"], seen, mode)
    finally:
        for s in servers:
            s.shutdown()
            s.server_close()


@pytest.fixture(autouse=True)
def fresh_sessions(monkeypatch, tmp_path):
    from ocisift._stores.registry.session import forget_sessions

    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker-config"))
    forget_sessions()
    yield
    forget_sessions()


def creds(timeout: float = 5.0) -> RegistryOptions:
    return RegistryOptions(username=USER, password=PASSWORD, timeout=timeout)


def test_credentials_go_only_to_the_registrys_own_origin(world, tmp_path):
    # A Link to another host: followed for the page, without the password.
    assert ocisift.tags(f"{world.registry}/r", registry=creds()) == ["a", "b"]
    # A blob redirect to another host: followed, without the password.
    pulled = ocisift.pull(f"{world.registry}/r:v1", str(tmp_path / "out"), registry=creds())
    assert (tmp_path / "out" / "thing.bin").read_bytes() == LAYER and pulled.files == ("thing.bin",)
    # An upload Location on another host: the blob goes there, the password does not.
    (tmp_path / "up.txt").write_text("upload me")
    ocisift.push(f"{world.registry}/r:up", [str(tmp_path / "up.txt")], registry=creds())
    elsewhere = world.seen.at("elsewhere")
    assert {m for _, m, _, _ in elsewhere} == {"GET", "PUT"} and len(elsewhere) >= 4
    assert all(auth == "" for _, _, _, auth in elsewhere), elsewhere
    assert any(auth == BASIC for _, _, _, auth in world.seen.at("registry"))  # it did authenticate at home


def test_a_password_is_never_sent_to_a_plain_http_token_service_elsewhere(world, cli, tmp_path, monkeypatch):
    world.mode["bearer_realm_elsewhere"] = True
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(PASSWORD + "\n"))
    res = cli("resolve", f"{world.registry}/r:v1", "-u", USER, "--password-stdin", "--format", "json")
    assert res.code == 6
    assert "not sent" in res.json()["error"]["message"]
    tokens = [r for r in world.seen.at("elsewhere") if r[2].startswith("/token")]
    assert tokens and all(auth == "" for _, _, _, auth in tokens)  # asked anonymously, never with the password


def test_a_digest_header_that_disagrees_with_the_bytes_is_exit_5(world, tmp_path):
    world.mode["wrong_digest_header"] = True
    with pytest.raises(ocisift.IntegrityError):
        ocisift.pull(f"{world.registry}/r:v1", str(tmp_path / "out"), registry=creds())
    assert not (tmp_path / "out").exists()


def test_a_manifest_longer_than_its_descriptor_is_exit_5(world, tmp_path):
    with pytest.raises(ocisift.IntegrityError, match=r"descriptor says|has .* bytes"):
        ocisift.pull(f"{world.registry}/r:index", str(tmp_path / "out"), Selector.build(platform="linux/amd64"),
                     registry=creds())
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("fault, words", [
    ("drip_body", "did not arrive whole within"),
    ("drip_headers", "did not answer"),
    ("trickle_blob", "trickled"),
])
def test_a_server_that_drips_ends_in_a_timeout_not_a_hang(world, tmp_path, fault, words):
    world.mode[fault] = True
    started = time.monotonic()
    with pytest.raises(ocisift.OcisiftError, match=words) as caught:
        ocisift.pull(f"{world.registry}/r:v1", str(tmp_path / "out"), registry=creds(timeout=1.0))
    assert caught.value.exit_code == 1
    assert time.monotonic() - started < 15
    assert not (tmp_path / "out").exists()


def test_bodies_too_large_to_hold_and_endless_pages_are_clear_errors(world):
    world.mode["huge_tag_page"] = True
    with pytest.raises(ocisift.OcisiftError, match=r"over the .*-byte limit"):
        ocisift.tags(f"{world.registry}/r", registry=creds())
    world.mode.clear()
    world.mode["endless_pages"] = True
    started = time.monotonic()
    with pytest.raises(ocisift.OcisiftError, match="exceeded 1000 pages"):
        ocisift.tags(f"{world.registry}/r", registry=creds())
    assert time.monotonic() - started < 30
