"""Real networks: TLS from a test CA made by openssl, proxies (squid, tinyproxy), and the --debug trace.

Every server is real (distribution's docker-registry serving TLS, squid, tinyproxy), on loopback with
free ports, started and stopped by context managers that stop them however a test ends.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import ocisift
from ocisift._core.options import RegistryOptions
from ocisift._demo import build_sample_layout
from ocisift._stores.registry.proxies import bypassed, parse_proxy, proxy_for
from ocisift._stores.registry.trace import redact_header, redact_url
from proxies import run_squid, run_tinyproxy
from registry import run_registry
from tls import make_ca

NAME = "registry.internal"  # only squid's hosts_file knows it
SANS = ("IP:127.0.0.1", "DNS:localhost", f"DNS:{NAME}")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pki")
    ca = make_ca(folder)
    return ca, ca.issue("registry", sans=SANS)


@pytest.fixture(scope="module")
def tls_registry(tmp_path_factory, pki):
    """A TLS registry holding the sample's module (7.2), pushed through --ca-file."""
    ca, (cert, key) = pki
    work = tmp_path_factory.mktemp("tls-registry")
    layout = str(work / "layout")
    build_sample_layout(layout)
    with run_registry(work, tls=(cert, key)) as reg:
        ocisift.copy(f"oci:{layout}:7.2", f"{reg.host}/acme/module:7.2", registry=RegistryOptions(ca_file=str(ca.cert)))
        yield reg


def _certs_d(root: Path, host: str, ca_cert: Path, client: tuple[Path, Path] | None = None) -> Path:
    folder = root / host
    folder.mkdir(parents=True)
    (folder / "ca.crt").write_bytes(ca_cert.read_bytes())
    if client is not None:
        (folder / "client.cert").write_bytes(client[0].read_bytes())
        (folder / "client.key").write_bytes(client[1].read_bytes())
    return root


@pytest.fixture
def no_system_trust(tmp_path, monkeypatch):
    """Trust nothing by default (an empty SSL_CERT_FILE), and look in no certs.d but the test's own."""
    empty = tmp_path / "empty.pem"
    empty.write_text("")
    monkeypatch.setenv("SSL_CERT_FILE", str(empty))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path / "no-such-dir"))
    monkeypatch.setenv("OCISIFT_CERTS_DIRS", str(tmp_path / "no-certs-d"))
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


# -- TLS ---------------------------------------------------------------------------------------------


def test_an_unknown_authority_is_named_with_the_ways_to_fix_it(tls_registry, cli, no_system_trust):
    result = cli("resolve", f"{tls_registry.host}/acme/module:7.2", "--https")
    assert result.code == 1, result.err
    message = result.err
    assert "signed by an authority ocisift does not trust" in message
    assert f"certs.d/{tls_registry.host}/ca.crt" in message or f"/{tls_registry.host}/ca.crt" in message
    assert "--ca-file" in message and "SSL_CERT_FILE" in message and "--insecure" in message
    assert "internal error" not in message


def test_trust_from_ca_file_ssl_cert_file_and_certs_d(tls_registry, pki, cli, tmp_path, monkeypatch, no_system_trust):
    ca, _ = pki
    ref = f"{tls_registry.host}/acme/module:7.2"
    digest = ocisift.resolve(ref, registry=RegistryOptions(ca_file=str(ca.cert))).descriptor.digest
    assert cli("resolve", ref, "--https", "--ca-file", str(ca.cert)).code == 0
    # certs.d/HOST:PORT/ca.crt found through --certs-dir, and through the environment variable.
    root = _certs_d(tmp_path / "certs.d", tls_registry.host, ca.cert)
    via_flag = cli("resolve", ref, "--https", "--certs-dir", str(root), "--format", "json")
    assert via_flag.code == 0, via_flag.err
    assert via_flag.json()["digest"] == str(digest)
    monkeypatch.setenv("OCISIFT_CERTS_DIRS", f"{tmp_path / 'elsewhere'}{os.pathsep}{root}")
    assert cli("resolve", ref, "--https").code == 0
    # SSL_CERT_FILE is the system's trust (OpenSSL's default paths) as every OpenSSL program reads it.
    monkeypatch.setenv("OCISIFT_CERTS_DIRS", str(tmp_path / "no-certs-d"))
    monkeypatch.setenv("SSL_CERT_FILE", str(ca.cert))
    assert cli("resolve", ref, "--https").code == 0
    # --ca-file replaces the system's trust (as curl's --cacert does): another CA alone does not verify.
    other = make_ca(tmp_path / "other-ca", "another-ca")
    refused = cli("resolve", ref, "--https", "--ca-file", str(other.cert))
    assert refused.code == 1 and f"only --ca-file {other.cert}" in refused.err


def test_insecure_skips_verification(tls_registry, cli, no_system_trust):
    result = cli("resolve", f"{tls_registry.host}/acme/module:7.2", "--https", "--insecure")
    assert result.code == 0, result.err


def test_expired_and_wrong_name_certificates_say_so(tmp_path, pki, cli, no_system_trust):
    ca, _ = pki
    for issue, expected in ((lambda: ca.issue_expired("expired", sans=SANS), "has expired"),
                            (lambda: ca.issue_wrong_name("wrong"), "is for another name")):
        cert, key = issue()
        work = tmp_path / expected.replace(" ", "-")
        with run_registry(work, tls=(cert, key)) as reg:
            result = cli("resolve", f"{reg.host}/acme/module:7.2", "--https", "--ca-file", str(ca.cert))
        assert result.code == 1, result.err
        assert f"TLS to {reg.host} failed: its certificate {expected}" in result.err
        assert "--insecure" in result.err


def test_mutual_tls_with_a_client_certificate_from_certs_d(tmp_path, pki, cli, no_system_trust):
    ca, (cert, key) = pki
    client = ca.issue_client("ocisift-client")
    with run_registry(tmp_path / "mtls", tls=(cert, key), client_ca=ca.cert, probe_client=client) as reg:
        without = cli("tags", f"{reg.host}/acme/module", "--https", "--ca-file", str(ca.cert))
        assert without.code == 1 and "internal error" not in without.err
        root = _certs_d(tmp_path / "certs.d", reg.host, ca.cert, client)
        layout = tmp_path / "layout"
        build_sample_layout(str(layout))
        pushed = cli("copy", f"oci:{layout}:7.2", f"{reg.host}/acme/module:7.2", "--https", "--certs-dir", str(root))
        assert pushed.code == 0, pushed.err
        listed = cli("tags", f"{reg.host}/acme/module", "--https", "--certs-dir", str(root), "--format", "json")
        assert listed.code == 0 and listed.json()["tags"] == ["7.2"], listed.err


def test_a_client_certificate_without_its_key_is_a_clear_error(tmp_path, cli, no_system_trust):
    folder = tmp_path / "certs.d" / "127.0.0.1:5999"
    folder.mkdir(parents=True)
    (folder / "client.cert").write_text("x")
    result = cli("tags", "127.0.0.1:5999/acme/module", "--https", "--certs-dir", str(tmp_path / "certs.d"))
    assert result.code == 1 and "without its key" in result.err and "client.key" in result.err


# -- proxies ----------------------------------------------------------------------------------------


def test_no_proxy_reads_as_curl_and_go_read_it():
    assert bypassed("*", "anything.example", 443)
    assert bypassed("example.com", "example.com", 443) and bypassed("example.com", "a.b.example.com", 443)
    assert bypassed(".example.com", "a.example.com", 443) and bypassed("*.example.com", "a.example.com", 443)
    assert not bypassed("example.com", "notexample.com", 443)
    assert bypassed("10.0.0.0/8, 192.168.1.5", "10.20.30.40", 5000) and bypassed("10.0.0.0/8 192.168.1.5", "192.168.1.5", 1)
    assert not bypassed("10.0.0.0/8", "11.0.0.1", 443) and not bypassed("10.0.0.0/8", "ten.example", 443)
    assert bypassed("fd00::/8", "[fd12::1]", 443) and not bypassed("fd00::/8", "[fe80::1]", 443)
    assert bypassed("registry.internal:5000", "registry.internal", 5000)
    assert not bypassed("registry.internal:5000", "registry.internal", 443)
    assert bypassed("REGISTRY.Internal", "registry.internal.", 443)
    env = {"HTTPS_PROXY": "http://u:p%40ss@proxy:3128", "http_proxy": "proxy2:8080", "NO_PROXY": ".corp"}
    assert proxy_for("https", "ghcr.io", 443, env) == parse_proxy("http://u:p%40ss@proxy:3128")
    assert parse_proxy("http://u:p%40ss@proxy:3128").basic_auth == "u:p@ss"
    assert proxy_for("http", "ghcr.io", 80, env).url == "http://proxy2:8080"  # a bare host:port is HTTP
    assert proxy_for("https", "r.corp", 443, env) is None
    assert proxy_for("https", "127.0.0.1", 5000, env) is None and proxy_for("https", "localhost", 5000, env) is None
    assert proxy_for("https", "ghcr.io", 443, {"all_proxy": "http://p:1"}).url == "http://p:1"
    assert proxy_for("https", "ghcr.io", 443, {"https_proxy": "http://lower:1", "HTTPS_PROXY": "http://upper:1"}).url \
        == "http://lower:1"
    with pytest.raises(ocisift.UsageError):
        parse_proxy("socks5://proxy:1080")


def test_https_through_squid_to_a_name_only_the_proxy_resolves(tmp_path, tls_registry, pki, cli, monkeypatch,
                                                               no_system_trust):
    ca, _ = pki
    port = tls_registry.host.rsplit(":", 1)[1]
    with run_squid(tmp_path / "squid", hosts={NAME: "127.0.0.1"}) as squid:
        monkeypatch.setenv("HTTPS_PROXY", squid.url)
        result = cli("pull", f"{NAME}:{port}/acme/module:7.2", "--ca-file", str(ca.cert), "-o", str(tmp_path / "out"),
                     "--mode", "extract-all", "--layer-media-type", "application/vnd.timoni.content.*",
                     "--format", "json")
        assert result.code == 0, result.err
        assert result.json()["files"], result.out
        log = squid.wait_for_log(f"CONNECT {NAME}:{port}")
        assert "TCP_TUNNEL/200" in log
        # NO_PROXY sends it direct, where the name does not resolve: a clear "unreachable", no proxy used.
        monkeypatch.setenv("NO_PROXY", NAME)
        direct = cli("resolve", f"{NAME}:{port}/acme/module:7.2", "--ca-file", str(ca.cert))
        assert direct.code == 1 and "unreachable" in direct.err, direct.err


def test_plain_http_through_squid(tmp_path, cli, monkeypatch, no_system_trust):
    layout = tmp_path / "layout"
    build_sample_layout(str(layout))
    with run_registry(tmp_path / "plain") as reg, run_squid(tmp_path / "squid", hosts={NAME: "127.0.0.1"}) as squid:
        port = reg.host.rsplit(":", 1)[1]
        monkeypatch.setenv("http_proxy", squid.url)
        pushed = cli("copy", f"oci:{layout}:7.2", f"{NAME}:{port}/acme/module:7.2", "--plain-http")
        assert pushed.code == 0, pushed.err
        listed = cli("tags", f"{NAME}:{port}/acme/module", "--plain-http", "--format", "json")
        assert listed.json()["tags"] == ["7.2"]
        log = squid.wait_for_log(f"http://{NAME}:{port}/v2/acme/module/tags/list")
        assert f"PUT http://{NAME}:{port}/v2/acme/module/manifests/" in log


def test_proxy_credentials_in_the_url_through_a_chain(tmp_path, tls_registry, pki, cli, monkeypatch, no_system_trust):
    """tinyproxy demands credentials and forwards to squid, which alone resolves the registry's name."""
    ca, _ = pki
    port = tls_registry.host.rsplit(":", 1)[1]
    ref = f"{NAME}:{port}/acme/module:7.2"
    with run_squid(tmp_path / "squid", hosts={NAME: "127.0.0.1"}) as squid, \
            run_tinyproxy(tmp_path / "tiny", basic_auth=("proxyuser", "proxy-s3cret"),
                          upstream=f"127.0.0.1:{squid.port}") as tiny:
        monkeypatch.setenv("HTTPS_PROXY", tiny.url)
        refused = cli("resolve", ref, "--ca-file", str(ca.cert))
        assert refused.code == 6, refused.err
        assert "wants credentials" in refused.err and "http://USER:PASSWORD@HOST:PORT" in refused.err
        monkeypatch.setenv("HTTPS_PROXY", tiny.url_with_credentials)
        result = cli("resolve", ref, "--ca-file", str(ca.cert), "--format", "json")
        assert result.code == 0, result.err
        assert squid.wait_for_log(f"CONNECT {NAME}:{port}")


# -- --debug ----------------------------------------------------------------------------------------


def test_header_and_url_redaction():
    assert redact_header("Authorization", "Bearer abc.def") == "Bearer <redacted>"
    assert redact_header("authorization", "Basic dXNlcjpwdw==") == "Basic <redacted>"
    assert redact_header("Proxy-Authorization", "Basic x") == "Basic <redacted>"
    assert redact_header("Set-Cookie", "session=1") == "<redacted>"
    assert redact_header("Content-Type", "application/json") == "application/json"
    assert redact_url("https://u:pw@h/x?access_token=abc&scope=repository:a:pull") == \
        "https://<redacted>@h/x?access_token=<redacted>&scope=repository%3Aa%3Apull"
    assert "X-Amz-Signature=<redacted>" in redact_url("https://s3/b?X-Amz-Signature=ff&X-Amz-Date=1")
    assert redact_header("Location", "/v2/a/blobs/uploads/u?_state=SECRET") == "/v2/a/blobs/uploads/u?_state=<redacted>"


def test_debug_traces_every_request_and_shows_no_secret(tmp_path):
    """A token registry behind Basic credentials: the trace has method, URL, status, headers and time, and
    neither the password, nor its Basic form, nor any token the token service issued."""
    from tokens import run_token_registry  # the test token service (HTTPS, its own CA) and a registry

    password = "debug-s3cret-pw"
    with run_token_registry(tmp_path, ("alice", password)) as (reg, issuer, ca_file):
        config = tmp_path / "docker"
        config.mkdir()
        basic = base64.b64encode(f"alice:{password}".encode()).decode()
        (config / "config.json").write_text(json.dumps({"auths": {reg.host: {"auth": basic}}}))
        layout = tmp_path / "layout"
        build_sample_layout(str(layout))
        env = {**os.environ, "DOCKER_CONFIG": str(config), "SSL_CERT_FILE": str(ca_file)}
        src = str(Path(__file__).resolve().parents[1] / "src")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
        run = subprocess.run([sys.executable, "-m", "ocisift", "--debug", "copy", f"oci:{layout}:7.2",
                              f"{reg.host}/acme/module:7.2"], capture_output=True, text=True, env=env, timeout=120)
        assert run.returncode == 0, run.stderr
        trace = run.stderr
        assert issuer.issued, "the registry made ocisift fetch tokens"
        for secret in (password, basic, *(token for _, token in issuer.issued)):
            assert secret not in trace and secret not in run.stdout
        assert "Authorization: Bearer <redacted>" in trace and "Authorization: Basic <redacted>" in trace
        assert f"> PUT http://{reg.host}/v2/acme/module/manifests/" in trace
        assert f"< 201 PUT http://{reg.host}/v2/acme/module/manifests/" in trace
        assert "< 401 " in trace and "Www-Authenticate: Bearer" in trace  # response headers are shown
        assert " s)" in trace and "debug +" in trace  # each response's time, and the time since the start
