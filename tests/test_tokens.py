"""Tokens against a real registry in token mode: cached per scope, renewed before expiry, renewed once on 401.

The registry (CNCF distribution, `auth: token`) trusts a small loopback issuer
of real ES256 JWTs; a proxy in front of it records which token each request
carried, slows blob downloads so a pull outlives short tokens, or revokes a
token the way a registry does when it stops accepting one.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import time

import pytest

import ocisift
from faults import Faults, proxy
from ocisift import LayerSelector
from ocisift._stores.registry.auth import Token, parse_token_response, renewal_time
from registry import run_registry
from tls import make_ca, server_context
from tokens import Issuer

USER, PASSWORD = "ci-user", "s3cret-pass"
LAYERS = 8

pytestmark = pytest.mark.skipif(shutil.which("docker-registry") is None, reason="docker-registry is needed")


def docker_config(folder, host: str):
    folder.mkdir(parents=True, exist_ok=True)
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    (folder / "config.json").write_text(json.dumps({"auths": {host: {"auth": auth}}}))
    return folder


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory):
    work = tmp_path_factory.mktemp("tokens")
    issuer = Issuer({USER: PASSWORD})
    issuer.write_bundle(work / "bundle.pem")
    ca = make_ca(work / "ca")
    server = issuer.serve(tls=server_context(*ca.issue("token-service")))
    previous_ca = os.environ.get("SSL_CERT_FILE")
    os.environ["SSL_CERT_FILE"] = str(ca.cert)  # the client trusts the test CA, as with a private CA
    try:
        realm = f"https://127.0.0.1:{server.server_address[1]}/token"  # a password goes only to HTTPS realms
        with run_registry(work, token={"realm": realm, "service": issuer.service, "issuer": issuer.name,
                                       "bundle": str(work / "bundle.pem")}) as reg:
            files = []
            for i in range(LAYERS):
                path = work / "files" / f"part{i}.bin"
                path.parent.mkdir(exist_ok=True)
                path.write_bytes(os.urandom(256 * 1024))
                files.append(str(path))
            previous = os.environ.get("DOCKER_CONFIG")
            os.environ["DOCKER_CONFIG"] = str(docker_config(work / "direct", reg.host))
            try:
                ocisift.push(f"{reg.host}/acme/parts:v1", files)
            finally:
                if previous is None:
                    del os.environ["DOCKER_CONFIG"]
                else:
                    os.environ["DOCKER_CONFIG"] = previous
            yield reg, issuer, work
    finally:
        server.shutdown()
        server.server_close()
        if previous_ca is None:
            os.environ.pop("SSL_CERT_FILE", None)
        else:
            os.environ["SSL_CERT_FILE"] = previous_ca


@pytest.fixture(autouse=True)
def fresh_sessions():
    """Each test starts as a new process would: no session, no cached token."""
    from ocisift._stores.registry.session import forget_sessions

    forget_sessions()
    yield
    forget_sessions()


def pull_all(host: str, out, concurrency: int = 4) -> ocisift.PullResult:
    return ocisift.pull(f"{host}/acme/parts:v1", str(out), layers=LayerSelector.build(all=True),
                        concurrency=concurrency)


def bearer_uses(faults: Faults, since: float) -> list[tuple[float, str, str, int]]:
    return [row for row in faults.auth_log if row[0] >= since and row[2].startswith("Bearer ")]


def test_renewal_time_is_a_little_before_expiry():
    assert renewal_time(100.0, 2.0) == pytest.approx(101.8)
    assert renewal_time(100.0, 300.0) == pytest.approx(390.0)  # at most ten seconds early
    token = parse_token_response(b'{"access_token": "abc", "expires_in": 120}', "realm", time.monotonic())
    assert token.header == "Bearer abc" and token.fresh
    assert not Token("Bearer x", time.monotonic() - 1).fresh
    defaulted = parse_token_response(b'{"token": "abc"}', "realm", 0.0)
    assert defaulted.renew_at == pytest.approx(54.0)  # Docker's default lifetime: 60 s
    for odd in (b"NaN", b"Infinity", b"-5", b"true", b'"300"'):  # a lifetime that is no lifetime: the default
        body = b'{"token": "abc", "expires_in": ' + odd + b"}"
        assert parse_token_response(body, "realm", 0.0).renew_at == pytest.approx(54.0), odd
    with pytest.raises(ocisift.AuthError):
        parse_token_response(b'{"token": "a\r\nX-Injected: 1"}', "realm", 0.0)


def test_one_token_serves_a_whole_pull(token_registry, tmp_path, monkeypatch):
    reg, issuer, _ = token_registry
    issuer.expires_in = 300
    monkeypatch.setenv("DOCKER_CONFIG", str(docker_config(tmp_path / "cfg", reg.host)))
    before = len(issuer.issued)
    result = pull_all(reg.host, tmp_path / "out")
    assert len(result.files) == LAYERS
    assert len(issuer.issued) - before == 1  # manifest, config and every layer under one cached token


def test_two_second_tokens_are_renewed_while_a_long_pull_runs(token_registry, tmp_path, monkeypatch):
    reg, issuer, _ = token_registry
    issuer.expires_in = 2
    faults = Faults(delay_blobs=0.75)  # eight layers one at a time: the pull takes about six seconds
    with proxy(reg.host, faults) as front:
        monkeypatch.setenv("DOCKER_CONFIG", str(docker_config(tmp_path / "cfg", front)))
        started = time.monotonic()
        before = len(issuer.issued)
        result = pull_all(front, tmp_path / "out", concurrency=1)
        took = time.monotonic() - started
    assert len(result.files) == LAYERS
    issued = dict((token, at) for at, token in issuer.issued[before:])
    assert took > 5 and len(issued) >= 3, (took, len(issued))
    uses = bearer_uses(faults, started)
    assert len(uses) >= LAYERS
    for at, path, authorization, status in uses:
        token = authorization.removeprefix("Bearer ")
        assert token in issued, "every token used was issued during this pull"
        age = at - issued[token]
        # Renewal is due at 1.8 s; a loaded machine may take a while from there to the proxy's clock. A
        # client that did not renew would carry its first token for the whole six seconds.
        assert age <= 2.0 + 1.0, f"{path} carried a token {age:.2f} s old, past its 2 s lifetime"
        assert status in (200, 206), (path, status)


def test_a_401_on_a_cached_token_is_renewed_once(token_registry, tmp_path, monkeypatch):
    reg, issuer, _ = token_registry
    issuer.expires_in = 300
    faults = Faults(revoke_first_token_after=1)  # the first token works once, then is refused
    with proxy(reg.host, faults) as front:
        monkeypatch.setenv("DOCKER_CONFIG", str(docker_config(tmp_path / "cfg", front)))
        started = time.monotonic()
        before = len(issuer.issued)
        result = pull_all(front, tmp_path / "out")
    assert len(result.files) == LAYERS
    assert len(issuer.issued) - before == 2  # the first token, and one renewal
    uses = bearer_uses(faults, started)
    refused = [row for row in uses if row[3] == 401]
    first, second = (token for _, token in issuer.issued[before:])
    # Up to four blobs were in flight with the first token when it was revoked: each is refused once,
    # they share one renewal, and every request after the last refusal carries the new token.
    assert 1 <= len(refused) <= 4 and all(row[2] == f"Bearer {first}" for row in refused)
    after = uses[uses.index(refused[-1]) + 1:]
    assert after and all(row[2] == f"Bearer {second}" and row[3] in (200, 206) for row in after)


def test_a_registry_that_refuses_every_token_ends_in_an_auth_error_without_looping(token_registry, tmp_path,
                                                                                monkeypatch):
    reg, issuer, _ = token_registry
    issuer.expires_in = 300
    faults = Faults(revoke_every_token=True)
    with proxy(reg.host, faults) as front:
        monkeypatch.setenv("DOCKER_CONFIG", str(docker_config(tmp_path / "cfg", front)))
        before = len(issuer.issued)
        with pytest.raises(ocisift.AuthError) as caught:
            ocisift.resolve(f"{front}/acme/parts:v1")
    assert caught.value.exit_code == 6
    assert len(issuer.issued) - before == 1  # a fresh token refused is not renewed again and again
