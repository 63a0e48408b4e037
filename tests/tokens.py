"""A small token issuer for the registry's `auth: token` mode: real ES256 JWTs with an x5c chain."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import http.server
import json
import ssl
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from registry import Registry, run_registry
from tls import make_ca, server_context


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Issuer:
    users: dict[str, str]
    service: str = "ocisift-test-registry"
    name: str = "ocisift-test-issuer"
    requests: list[dict[str, str]] = field(default_factory=list)
    expires_in: int | None = None  # told to the client; None leaves it out (Docker's default: 60 s)
    issued: list[tuple[float, str]] = field(default_factory=list)  # (time.monotonic() when issued, token)
    reply: bytes | None = None  # when set, the whole body of every answer (a hostile token service's)

    def __post_init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.name)])
        now = dt.datetime.now(dt.UTC)
        self.cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
                     .sign(self.key, hashes.SHA256()))

    def write_bundle(self, path: Path) -> None:
        path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def token(self, subject: str, scope: str | None) -> str:
        access = []
        if scope:
            kind, name, actions = scope.split(":", 2)
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "ES256",
                  "x5c": [base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()]}
        claims = {"iss": self.name, "sub": subject, "aud": self.service, "exp": now + 300, "nbf": now - 10,
                  "iat": now, "jti": str(now), "access": access}
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def serve(self, tls: ssl.SSLContext | None = None) -> http.server.ThreadingHTTPServer:
        """On a free loopback port; over HTTPS with `tls` (a password goes to a token service only that way)."""
        issuer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
                issuer.requests.append({**query, "authorization": self.headers.get("Authorization", "")})
                auth = self.headers.get("Authorization", "")
                subject = ""
                if auth.startswith("Basic "):
                    user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
                    if issuer.users.get(user) != password:
                        self.send_response(401)
                        self.end_headers()
                        return
                    subject = user
                if issuer.reply is not None:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(issuer.reply)))
                    self.end_headers()
                    self.wfile.write(issuer.reply)
                    return
                scope = query.get("scope") if subject else None  # anonymous callers get no access
                token = issuer.token(subject, scope)
                issuer.issued.append((time.monotonic(), token))
                answer: dict[str, object] = {"token": token}
                if issuer.expires_in is not None:
                    answer["expires_in"] = issuer.expires_in
                body = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):  # a client that hung up mid-answer is no error here
                pass

        server = Server(("127.0.0.1", 0), Handler)
        if tls is not None:
            server.socket = tls.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server


@contextlib.contextmanager
def run_token_registry(work: Path, user: tuple[str, str]) -> Iterator[tuple[Registry, Issuer, Path]]:
    """A registry in `auth: token` mode and its token service on HTTPS (a test CA made by openssl, whose
    certificate is yielded for the client to trust); both stopped however the block ends."""
    issuer = Issuer({user[0]: user[1]})
    issuer.write_bundle(work / "bundle.pem")
    ca = make_ca(work / "ca")
    server = issuer.serve(tls=server_context(*ca.issue("token-service")))
    try:
        realm = f"https://127.0.0.1:{server.server_address[1]}/token"
        with run_registry(work, token={"realm": realm, "service": issuer.service, "issuer": issuer.name,
                                       "bundle": str(work / "bundle.pem")}) as reg:
            yield reg, issuer, ca.cert
    finally:
        server.shutdown()
        server.server_close()
