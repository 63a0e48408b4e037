"""Credentials, basic auth against a real registry, and no Authorization across a redirect."""

from __future__ import annotations

import base64
import http.server
import json
import os
import shutil
import subprocess
import urllib.request
from pathlib import Path
from typing import ClassVar

import pytest

import ocisift
from ocisift._demo import build_sample_layout
from ocisift._stores.registry.auth import parse_challenge
from ocisift._stores.registry.credentials import Credentials, lookup_credentials
from registry import run_registry

USER, PASSWORD = "ci-user", "s3cret-pass"


def test_parse_challenge():
    c = parse_challenge('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"')
    assert c.scheme == "bearer"
    assert c.params == {"realm": "https://auth.example/token", "service": "registry.example",
                        "scope": "repository:a/b:pull"}
    assert parse_challenge('Basic realm="x"').scheme == "basic"
    assert parse_challenge("") is None


def test_docker_config_auths_and_helpers(tmp_path, monkeypatch):
    config = tmp_path / "config.json"
    token = base64.b64encode(b"alice:pw").decode()
    helper = tmp_path / "bin" / "docker-credential-fake"
    helper.parent.mkdir()
    helper.write_text('#!/bin/sh\nread host\nif [ "$host" = "helped.example" ]; then\n'
                      '  echo \'{"Username":"bob","Secret":"hunter2"}\'\nelse exit 1; fi\n')
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{helper.parent}{os.pathsep}{os.environ['PATH']}")
    config.write_text(json.dumps({"auths": {"reg.example": {"auth": token}},
                                  "credHelpers": {"helped.example": "fake"}}))
    assert lookup_credentials("reg.example", str(config)) == Credentials("alice", "pw")
    assert lookup_credentials("helped.example", str(config)) == Credentials("bob", "hunter2")
    assert lookup_credentials("other.example", str(config)) is None
    config.write_text(json.dumps({"credsStore": "fake"}))
    assert lookup_credentials("helped.example", str(config)) == Credentials("bob", "hunter2")
    assert lookup_credentials("nobody.example", str(config)) is None


needs_registry = pytest.mark.skipif(shutil.which("docker-registry") is None or shutil.which("skopeo") is None,
                                    reason="docker-registry and skopeo are needed")


@pytest.fixture(scope="module")
def basic_registry(tmp_path_factory):
    work = tmp_path_factory.mktemp("basic")
    layout = str(work / "layout")
    build_sample_layout(layout)
    with run_registry(work, htpasswd=(USER, PASSWORD)) as reg:
        subprocess.run(["skopeo", "copy", "--dest-tls-verify=false", f"--dest-creds={USER}:{PASSWORD}",
                        f"oci:{layout}:7.2", f"docker://{reg.host}/acme/module:7.2"],
                       check=True, capture_output=True, timeout=120)
        yield reg


def docker_config(tmp_path: Path, host: str, user: str, password: str) -> Path:
    d = tmp_path / "docker"
    d.mkdir(exist_ok=True)
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    (d / "config.json").write_text(json.dumps({"auths": {host: {"auth": auth}}}))
    return d


@needs_registry
def test_basic_auth_against_a_real_registry(basic_registry, tmp_path, monkeypatch, cli):
    ref = f"{basic_registry.host}/acme/module:7.2"
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "empty"))
    res = cli("resolve", ref, "--format", "json")
    assert res.code == 6 and "none found" in res.json()["error"]["message"]
    monkeypatch.setenv("DOCKER_CONFIG", str(docker_config(tmp_path, basic_registry.host, USER, "wrong")))
    assert cli("resolve", ref).code == 6
    monkeypatch.setenv("DOCKER_CONFIG", str(docker_config(tmp_path, basic_registry.host, USER, PASSWORD)))
    ocisift.pull(ref, str(tmp_path / "m"), mode="extract-all")
    assert (tmp_path / "m" / "cue.mod" / "module.cue").is_file()


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Stands in for blob storage on another host: records headers, serves the blob from the registry."""

    seen: ClassVar[list[dict[str, str]]] = []
    upstream = ""

    def do_GET(self):
        type(self).seen.append(dict(self.headers))
        digest = self.path.rsplit("/", 1)[-1]
        req = urllib.request.Request(f"{self.upstream}/blobs/{digest}")
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode())
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = resp.read()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@needs_registry
def test_authorization_is_not_sent_to_another_host_on_redirect(basic_registry, tmp_path, monkeypatch):
    from faults import Faults, proxy, serving

    recorder = type("Recorder", (_Recorder,), {"seen": [], "upstream": f"http://{basic_registry.host}/v2/acme/module"})
    with serving(recorder) as storage:
        # Same machine, another host name: urllib3 must treat it as a different host.
        faults = Faults(redirect_blobs_to=storage.replace("127.0.0.1", "localhost"))
        with proxy(basic_registry.host, faults) as front:
            monkeypatch.setenv("DOCKER_CONFIG", str(docker_config(tmp_path, front, USER, PASSWORD)))
            ocisift.pull(f"{front}/acme/module:7.2", str(tmp_path / "m"), mode="extract-all")
    assert (tmp_path / "m" / "timoni.cue").is_file()
    assert len(recorder.seen) == 2  # both layers came through the redirect
    assert all(key.lower() != "authorization" for h in recorder.seen for key in h)
    # The registry behind the front door refuses anonymous reads, so the pull's success shows the
    # credentials did reach it; storage, on another host, saw none.
    assert any(m == "GET" and "/manifests/" in p for m, p, _ in faults.requests)


@needs_registry
def test_bearer_token_flow_against_a_real_registry(tmp_path_factory, monkeypatch, cli):
    from tls import make_ca, server_context
    from tokens import Issuer

    work = tmp_path_factory.mktemp("token")
    issuer = Issuer({USER: PASSWORD})
    issuer.write_bundle(work / "bundle.pem")
    ca = make_ca(work / "ca")
    server = issuer.serve(tls=server_context(*ca.issue("token-service")))
    monkeypatch.setenv("SSL_CERT_FILE", str(ca.cert))  # the client trusts the test CA, as with a private CA
    try:
        realm = f"https://127.0.0.1:{server.server_address[1]}/token"  # a password goes only to HTTPS realms
        layout = str(work / "layout")
        build_sample_layout(layout)
        with run_registry(work, token={"realm": realm, "service": issuer.service, "issuer": issuer.name,
                                       "bundle": str(work / "bundle.pem")}) as reg:
            monkeypatch.setenv("DOCKER_CONFIG", str(docker_config(work, reg.host, USER, PASSWORD)))
            result = ocisift.copy(f"oci:{layout}:7.2", f"{reg.host}/acme/module:7.2")
            scopes = {r.get("scope") for r in issuer.requests}
            assert "repository:acme/module:pull,push" in scopes
            assert all(r["service"] == issuer.service for r in issuer.requests)
            assert ocisift.resolve(f"{reg.host}/acme/module:7.2").descriptor.digest == result.root.digest
            ocisift.pull(f"{reg.host}/acme/module:7.2", str(work / "out"), mode="extract-all")
            assert (work / "out" / "timoni.cue").is_file()
            assert "repository:acme/module:pull" in {r.get("scope") for r in issuer.requests}
            # Without credentials the issuer grants nothing and the registry refuses: exit 6.
            monkeypatch.setenv("DOCKER_CONFIG", str(work / "nothing"))
            assert cli("resolve", f"{reg.host}/acme/module:7.2").code == 6
    finally:
        server.shutdown()
        server.server_close()


@needs_registry
def test_login_logout_and_password_stdin(basic_registry, tmp_path, monkeypatch, cli):
    import io

    config_dir = tmp_path / "cfg"
    monkeypatch.setenv("DOCKER_CONFIG", str(config_dir))
    host = basic_registry.host
    monkeypatch.setattr("sys.stdin", io.StringIO("wrong\n"))
    res = cli("login", host, "-u", USER, "--password-stdin")
    assert res.code == 6 and not (config_dir / "config.json").exists()
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert cli("login", host, "-u", USER, "--password-stdin").code == 0
    stored = json.loads((config_dir / "config.json").read_text())
    assert base64.b64decode(stored["auths"][host]["auth"]).decode() == f"{USER}:{PASSWORD}"
    assert (config_dir / "config.json").stat().st_mode & 0o777 == 0o600
    assert cli("resolve", f"{host}/acme/module:7.2").code == 0
    assert cli("logout", host).code == 0
    assert cli("resolve", f"{host}/acme/module:7.2").code == 6
    assert cli("logout", host).code == 6
    # Explicit credentials on the command line, no config at all.
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    res = cli("resolve", f"{host}/acme/module:7.2", "-u", USER, "--password-stdin", "--format", "json")
    assert res.code == 0 and res.json()["digest"].startswith("sha256:")


def test_https_is_the_default_away_from_loopback():
    from ocisift._core.options import RegistryOptions
    from ocisift._core.reference import parse_image_name
    from ocisift._stores.registry.session import is_loopback
    from ocisift._stores.registry.store import RegistryStore

    assert is_loopback("127.0.0.1:5000") and is_loopback("localhost:5000") and is_loopback("[::1]:5000")
    assert not is_loopback("registry.example:5000")
    assert RegistryStore(parse_image_name("registry.example/a/b")).repo.url("x").startswith("https://")
    assert RegistryStore(parse_image_name("localhost:5000/a/b")).repo.url("x").startswith("http://")
    assert RegistryStore(parse_image_name("localhost:5000/a/b"),
                         RegistryOptions(plain_http=False)).repo.url("x").startswith("https://")
    assert RegistryStore(parse_image_name("alpine")).repo.url("tags/list") == \
        "https://registry-1.docker.io/v2/library/alpine/tags/list"
