"""A real CNCF distribution registry (Debian's docker-registry) on a free loopback port."""

from __future__ import annotations

import contextlib
import shutil
import socket
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

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def run_registry(workdir: Path, timeout: float = 20.0, htpasswd: tuple[str, str] | None = None,
                 token: dict[str, str] | None = None) -> Iterator[Registry]:
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
    enabled: true
http:
  addr: 127.0.0.1:{port}
""")
    if htpasswd is not None:
        import bcrypt

        user, password = htpasswd
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=6)).decode()
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
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1) as resp:
                    if resp.status == 200:
                        break
            except urllib.error.HTTPError as exc:
                if exc.code == 401:  # up, and asking for credentials
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("registry did not start in time")
            time.sleep(0.1)
        yield Registry(f"127.0.0.1:{port}", log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
