"""The network fixtures do what TLS and proxy tests will rely on, shown with real traffic.

A registry over HTTPS is trusted with the test CA and with nothing else; the bad certificates fail
with the verify codes a client reports (expired 10, wrong DNS name 62, wrong IP 64); mutual TLS
turns away clients without a certificate from its CA; squid carries plain HTTP and CONNECT to a
registry name only squid can resolve; tinyproxy demands proxy credentials and carries requests
that have them. Only the standard library and urllib3 talk to the servers, every call with a
timeout, so a fixture that lies cannot hide behind ocisift's own code.
"""

from __future__ import annotations

import http.client
import shutil
import socket
import ssl
import time
from pathlib import Path

import pytest
import urllib3

from proxies import run_squid, run_tinyproxy
from registry import run_registry
from tls import CA, client_context, make_ca

TIMEOUT = urllib3.Timeout(connect=5.0, read=10.0)
NAME = "registry.internal"  # resolvable only through squid's hosts_file

needs_registry = pytest.mark.skipif(shutil.which("docker-registry") is None and shutil.which("registry") is None,
                                    reason="docker-registry is needed")
needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed")
needs_squid = pytest.mark.skipif(shutil.which("squid") is None and not Path("/usr/sbin/squid").exists(),
                                 reason="squid is needed")
needs_tinyproxy = pytest.mark.skipif(shutil.which("tinyproxy") is None, reason="tinyproxy is needed")

pytestmark = [needs_registry, needs_openssl]


@pytest.fixture(scope="module")
def ca(tmp_path_factory) -> CA:
    return make_ca(tmp_path_factory.mktemp("ca"))


def handshake(port: int, context: ssl.SSLContext, server_hostname: str) -> None:
    """A TLS handshake with 127.0.0.1:port, checking the server as `server_hostname`; raises if refused."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname=server_hostname):
        pass


def get_v2(port: int, context: ssl.SSLContext) -> int:
    """GET /v2/ over HTTPS with this context; the status (200 for an open registry)."""
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=5)
    try:
        conn.request("GET", "/v2/")
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def fetch(pool: urllib3.PoolManager, url: str) -> tuple[int, str]:
    """GET url through the pool: (status, Docker-Distribution-Api-Version).

    Only plain values come back: a urllib3 response kept alive also keeps a CONNECT tunnel's
    socket open, even after pool.clear(), and squid logs a CONNECT only once its tunnel closes.
    """
    response = pool.request("GET", url)
    return response.status, response.headers.get("Docker-Distribution-Api-Version", "")


def test_tls_registry_is_trusted_with_the_test_ca_only(tmp_path, ca):
    with run_registry(tmp_path, tls=ca.issue("registry")) as reg:
        assert reg.scheme == "https"
        assert reg.url == f"https://{reg.host}"
        pool = urllib3.PoolManager(ssl_context=client_context(ca.cert), timeout=TIMEOUT, retries=False)
        assert fetch(pool, f"{reg.url}/v2/") == (200, "registry/2.0")
        with pytest.raises(ssl.SSLCertVerificationError) as refused:
            handshake(reg.port, ssl.create_default_context(), "127.0.0.1")
        assert refused.value.verify_code == 20  # unable to get local issuer certificate: the CA is unknown


def test_plain_registry_is_unchanged(tmp_path):
    with run_registry(tmp_path) as reg:
        assert reg.scheme == "http"
        assert fetch(urllib3.PoolManager(timeout=TIMEOUT, retries=False), f"{reg.url}/v2/") == (200, "registry/2.0")


def test_expired_certificate_fails_with_code_10(tmp_path, ca):
    with run_registry(tmp_path, tls=ca.issue_expired("expired")) as reg:
        with pytest.raises(ssl.SSLCertVerificationError) as refused:
            handshake(reg.port, client_context(ca.cert), "127.0.0.1")
        assert refused.value.verify_code == 10, refused.value.verify_message  # certificate has expired


@pytest.mark.parametrize(("hostname", "code"), [("localhost", 62), ("127.0.0.1", 64)])
def test_certificate_for_another_name_fails_as_a_mismatch(tmp_path, ca, hostname, code):
    """62 is a DNS name mismatch; dialled by IP address, OpenSSL reports the IP mismatch, 64."""
    with run_registry(tmp_path, tls=ca.issue_wrong_name("wrong-name")) as reg:
        with pytest.raises(ssl.SSLCertVerificationError) as refused:
            handshake(reg.port, client_context(ca.cert), hostname)
        assert refused.value.verify_code == code, refused.value.verify_message
        # the same certificate is fine for the name it was issued for
        handshake(reg.port, client_context(ca.cert), "other.example")


def test_mutual_tls_registry_wants_a_client_certificate_from_its_ca(tmp_path, ca):
    client = ca.issue_client("client")
    stranger = make_ca(tmp_path / "other-ca").issue_client("stranger")
    with run_registry(tmp_path / "reg", tls=ca.issue("mtls-registry"), client_ca=ca.cert, probe_client=client) as reg:
        assert get_v2(reg.port, client_context(ca.cert, client)) == 200
        for without in (client_context(ca.cert), client_context(ca.cert, stranger)):
            # TLS 1.3: the client's handshake finishes before the server judges its certificate,
            # so the refusal (an alert, or the connection dropped) comes with the first read.
            with pytest.raises((ssl.SSLError, ConnectionError)):
                get_v2(reg.port, without)
        # distribution logs why it refused each handshake
        reg.wait_for_log("tls: client didn't provide a certificate")
        reg.wait_for_log("tls: failed to verify client certificate: x509: certificate signed by unknown authority")


def test_mutual_tls_needs_a_probe_certificate(tmp_path, ca):
    with pytest.raises(ValueError, match="probe_client"), \
            run_registry(tmp_path, tls=ca.issue("unprobed"), client_ca=ca.cert):
        pass


@needs_squid
def test_squid_carries_http_and_connect_to_a_name_only_it_resolves(tmp_path, ca):
    with run_registry(tmp_path / "plain") as plain, \
            run_registry(tmp_path / "tls", tls=ca.issue("named", sans=(f"DNS:{NAME}",))) as secure, \
            run_squid(tmp_path / "squid", hosts={NAME: "127.0.0.1"}) as squid:
        assert squid.url == f"http://127.0.0.1:{squid.port}"
        proxy = urllib3.ProxyManager(squid.url, ssl_context=client_context(ca.cert), timeout=TIMEOUT, retries=False)
        try:
            assert fetch(proxy, f"http://{NAME}:{plain.port}/v2/") == (200, "registry/2.0")
            # CONNECT, then TLS inside the tunnel, checked against the name
            assert fetch(proxy, f"https://{NAME}:{secure.port}/v2/") == (200, "registry/2.0")
        finally:
            proxy.clear()  # closes the tunnel, which is when squid logs the CONNECT
        log = squid.wait_for_log(f"CONNECT {NAME}:{secure.port}")
        assert "TCP_MISS/200" in log and f"GET http://{NAME}:{plain.port}/v2/" in log
        assert "TCP_TUNNEL/200" in log
        assert "/v2/" in plain.log_text() and "/v2/" in secure.log_text()
    assert f"CONNECT {NAME}:{secure.port}" in squid.access_log_text()  # still readable once squid has stopped


@needs_squid
def test_squid_fails_names_outside_its_hosts_file_in_seconds(tmp_path):
    """No DNS server answers on 127.0.0.1, so squid gives up on other names after its short dns_timeout."""
    with run_squid(tmp_path, hosts={NAME: "127.0.0.1"}) as squid:
        started = time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", squid.port, timeout=15)
        try:
            conn.request("GET", "http://unknown.internal/v2/")
            response = conn.getresponse()
            response.read()
        finally:
            conn.close()
        assert time.monotonic() - started < 10
        assert response.status in (502, 503)
        assert response.headers["X-Squid-Error"]  # squid's own error page (ERR_READ_ERROR: no DNS server)


@needs_tinyproxy
def test_tinyproxy_demands_credentials_and_carries_requests_with_them(tmp_path, ca):
    user, password = "proxy-user", "proxy-pass"
    with run_registry(tmp_path / "plain") as plain, \
            run_registry(tmp_path / "tls", tls=ca.issue("tiny-registry")) as secure, \
            run_tinyproxy(tmp_path / "tinyproxy", basic_auth=(user, password)) as tiny:
        assert tiny.url_with_credentials == f"http://{user}:{password}@127.0.0.1:{tiny.port}"
        anonymous = urllib3.ProxyManager(tiny.url, ssl_context=client_context(ca.cert), timeout=TIMEOUT,
                                         retries=False)
        assert fetch(anonymous, f"http://{plain.host}/v2/")[0] == 407
        with pytest.raises(urllib3.exceptions.ProxyError, match="407"):
            anonymous.request("GET", f"{secure.url}/v2/")
        anonymous.clear()

        authorized = urllib3.ProxyManager(tiny.url, ssl_context=client_context(ca.cert), timeout=TIMEOUT,
                                          retries=False,
                                          proxy_headers=urllib3.make_headers(proxy_basic_auth=f"{user}:{password}"))
        try:
            assert fetch(authorized, f"http://{plain.host}/v2/") == (200, "registry/2.0")
            assert fetch(authorized, f"{secure.url}/v2/") == (200, "registry/2.0")
        finally:
            authorized.clear()
        log = tiny.wait_for_log(f"CONNECT {secure.host} ")
        assert f"GET http://{plain.host}/v2/" in log
