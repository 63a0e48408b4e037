"""A real CNCF distribution registry (Debian's docker-registry) on a free loopback port.

Plain HTTP by default; with `tls` it serves HTTPS with a test CA's certificate, and with
`client_ca` it also demands a client certificate signed by that CA (mutual TLS).
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Registry:
    host: str
    log: Path
    scheme: str = "http"  # "https" when started with tls

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    @property
    def port(self) -> int:
        return int(self.host.rsplit(":", 1)[1])

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_log(self, needle: str, timeout: float = 5.0) -> str:
        """The registry's log once it contains `needle`: it writes from its own goroutines, a moment after."""
        deadline = time.monotonic() + timeout
        while needle not in (text := self.log_text()):
            if time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} not in the registry's log within {timeout}s:\n{text[-4000:]}")
            time.sleep(0.05)
        return text


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """Terminate a server the tests started, and kill it if it does not go within ten seconds."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def run_registry(workdir: Path, timeout: float = 20.0, htpasswd: tuple[str, str | bytes] | None = None,
                 token: dict[str, str] | None = None, tls: tuple[Path, Path] | None = None,
                 client_ca: Path | None = None, probe_client: tuple[Path, Path] | None = None,
                 deletes: bool = True, urls_allow: tuple[str, ...] = ()) -> Iterator[Registry]:
    """Start the registry, wait (up to `timeout`) until /v2/ answers, yield it, and always stop it.

    tls: (certificate, key) to serve HTTPS. client_ca: a CA certificate; the registry then requires
    client certificates it signed (distribution's http.tls.clientcas), so the readiness probe has to
    present one: probe_client, a (certificate, key) that CA issued. The probe does not verify the
    server, since all it asks is whether the registry is up; tests verify it themselves.
    urls_allow: distribution's validation.manifests.urls.allow (it refuses any descriptor URL without one).
    """
    if client_ca is not None and (tls is None or probe_client is None):
        raise ValueError("client_ca needs tls and a probe_client certificate the registry will accept")
    binary = shutil.which("docker-registry") or shutil.which("registry")
    if binary is None:
        raise RuntimeError("docker-registry is not installed")
    port = free_port()
    (workdir / "data").mkdir(parents=True, exist_ok=True)
    config = workdir / "config.yml"
    config.write_text(f"""version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: {workdir / 'data'}
  delete:
    enabled: {'true' if deletes else 'false'}
http:
  addr: 127.0.0.1:{port}
""")
    if urls_allow:
        config.write_text(config.read_text() + "validation:\n  manifests:\n    urls:\n      allow:\n"
                          + "".join(f"        - '{pattern}'\n" for pattern in urls_allow))
    if tls is not None:
        cert, key = tls
        section = f"""  tls:
    certificate: {cert}
    key: {key}
"""
        if client_ca is not None:
            section += f"""    clientcas:
      - {client_ca}
"""
        config.write_text(config.read_text() + section)
    scheme = "http" if tls is None else "https"
    probe_context = None
    if tls is not None:
        probe_context = ssl._create_unverified_context()
        if probe_client is not None:
            probe_context.load_cert_chain(str(probe_client[0]), str(probe_client[1]))
    if htpasswd is not None:
        import bcrypt

        user, password = htpasswd
        secret = password if isinstance(password, bytes) else password.encode()  # bytes: any, UTF-8 or not
        hashed = bcrypt.hashpw(secret, bcrypt.gensalt(rounds=6)).decode()
        (workdir / "htpasswd").write_text(f"{user}:{hashed}\n")
        config.write_text(config.read_text() + f"""auth:
  htpasswd:
    realm: test-realm
    path: {workdir / 'htpasswd'}
""")
    if token is not None:
        config.write_text(config.read_text() + f"""auth:
  token:
    realm: {token['realm']}
    service: {token['service']}
    issuer: {token['issuer']}
    rootcertbundle: {token['bundle']}
""")
    log = workdir / "registry.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([binary, "serve", str(config)], stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"registry exited early:\n{log.read_text()}")
            try:
                with urllib.request.urlopen(f"{scheme}://127.0.0.1:{port}/v2/", timeout=1,
                                            context=probe_context) as resp:
                    if resp.status == 200:
                        break
            except urllib.error.HTTPError as exc:
                if exc.code == 401:  # up, and asking for credentials
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"registry did not start in time:\n{log.read_text(errors='replace')[-4000:]}")
            time.sleep(0.1)
        yield Registry(f"127.0.0.1:{port}", log, scheme)
    finally:
        stop_process(proc)
