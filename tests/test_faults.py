"""Faults between ocisift and a real registry: resume where the data can be had, fail cleanly where not."""

from __future__ import annotations

import http.server
import os
import re
import shutil
import subprocess
import time
from collections import Counter

import pytest

import ocisift
from conftest import artifact, entry, write_index
from faults import Faults, proxy
from ocisift._core.errors import IntegrityError
from registry import run_registry

pytestmark = pytest.mark.skipif(shutil.which("docker-registry") is None or shutil.which("skopeo") is None,
                                reason="docker-registry and skopeo are needed")


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    from ocisift._stores.layout import LayoutStore

    work = tmp_path_factory.mktemp("faults")
    layout = LayoutStore.create(str(work / "layout"))
    big = os.urandom(3 << 20)
    desc = artifact(layout, layers=[(big, "application/octet-stream", {"org.opencontainers.image.title": "big.bin"})])
    write_index(layout, [entry(desc, org__opencontainers__image__ref__name="v1")])
    with run_registry(work) as reg:
        subprocess.run(["skopeo", "copy", "--dest-tls-verify=false", f"oci:{layout.path}:v1",
                        f"docker://{reg.host}/acme/big:v1"], check=True, capture_output=True, timeout=120)
        reg.big = big  # type: ignore[attr-defined]
        yield reg


@pytest.mark.parametrize("faults, timeout", [
    (Faults(cut_blobs_once=True), None),          # half the body, then the connection closes
    (Faults(stall_blobs_once=3.0), 1.0),          # half the body, then silence past the read timeout
    (Faults(short_length_once=True), None),       # a Content-Length 100 bytes short
], ids=["cut", "stall", "short-length"])
def test_broken_transfer_resumes_with_range(upstream, tmp_path, faults, timeout):
    from ocisift._core.options import RegistryOptions

    with proxy(upstream.host, faults) as host:
        started = time.monotonic()
        options = RegistryOptions(timeout=timeout) if timeout else None
        ocisift.pull(f"{host}/acme/big:v1", str(tmp_path / "out"), registry=options)
        assert (tmp_path / "out" / "big.bin").read_bytes() == upstream.big
        assert time.monotonic() - started < 30  # resumed, not hung until some outer limit
        ranges = [r for m, p, r in faults.requests if "/blobs/" in p and r]
        assert ranges and ranges[0].startswith("bytes=") and ranges[0] != "bytes=0-"


@pytest.mark.parametrize("status", [429, 503])
def test_busy_registry_is_retried_after_retry_after(upstream, tmp_path, status):
    faults = Faults(busy_once=status)
    with proxy(upstream.host, faults) as host:
        started = time.monotonic()
        result = ocisift.pull(f"{host}/acme/big:v1", str(tmp_path / "out"))
        waited = time.monotonic() - started
        assert (tmp_path / "out" / "big.bin").read_bytes() == upstream.big
        # Retry-After: 1 was honoured twice: once for the manifest, once for the blob
        assert waited >= 1.8, waited
        for kind in ("/manifests/", "/blobs/"):
            gets = Counter(p for m, p, r in faults.requests if m == "GET" and kind in p)
            assert gets and all(n == 2 for n in gets.values()), (kind, gets)
        assert result.resolved.descriptor.digest == ocisift.resolve(f"{upstream.host}/acme/big:v1").descriptor.digest


def test_transfer_that_always_breaks_fails_cleanly(upstream, tmp_path, cli):
    faults = Faults(cut_every_time=True)
    with proxy(upstream.host, faults) as host:
        res = cli("pull", f"{host}/acme/big:v1", "-o", str(tmp_path / "out"), "--format", "json")
        assert res.code == 5, res.out
        assert "giving up" in res.json()["error"]["message"]
        assert not (tmp_path / "out").exists()
        with pytest.raises(IntegrityError):
            ocisift.pull(f"{host}/acme/big:v1", str(tmp_path / "out2"))


def test_copy_within_a_registry_mounts_instead_of_downloading(upstream):
    before = len(upstream.log.read_text(errors="replace"))
    result = ocisift.copy(f"{upstream.host}/acme/big:v1", f"{upstream.host}/acme/mounted:v1")
    log = upstream.log.read_text(errors="replace")[before:]
    assert len(result.mounted) == 2, result  # config and layer mounted
    assert result.copied == [str(result.root.digest)]  # only the manifest itself was written
    assert re.search(r'"POST /v2/acme/mounted/blobs/uploads/\?mount=sha256:[0-9a-f]{64}&from=acme/big HTTP/1\.1" 201', log)
    assert not re.search(r'"GET /v2/acme/big/blobs/', log)
    assert ocisift.resolve(f"{upstream.host}/acme/mounted:v1").descriptor.digest == result.root.digest


def test_chunked_upload(upstream, tmp_path):
    from ocisift._core.options import RegistryOptions

    ocisift.copy(f"{upstream.host}/acme/big:v1", f"oci:{tmp_path}/local:v1")
    before = len(upstream.log.read_text(errors="replace"))
    result = ocisift.copy(f"oci:{tmp_path}/local:v1", f"{upstream.host}/acme/chunked:v1",
                          registry=RegistryOptions(chunk_size=1 << 20))
    log = upstream.log.read_text(errors="replace")[before:]
    assert len(re.findall(r'"PATCH /v2/acme/chunked/blobs/uploads/', log)) == 3  # 3 MiB in 1 MiB chunks
    ocisift.pull(f"{upstream.host}/acme/chunked:v1", str(tmp_path / "out"))
    assert (tmp_path / "out" / "big.bin").read_bytes() == upstream.big
    assert result.root.digest == ocisift.resolve(f"{upstream.host}/acme/big:v1").descriptor.digest


def test_content_encoding_is_decoded_before_verifying(upstream, tmp_path):
    # Blobs are read straight from the socket unless the body carries a Content-Encoding.
    faults = Faults(gzip_blobs=True)
    with proxy(upstream.host, faults) as host:
        ocisift.pull(f"{host}/acme/big:v1", str(tmp_path / "out"))
        assert (tmp_path / "out" / "big.bin").read_bytes() == upstream.big
        result = ocisift.copy(f"{host}/acme/big:v1", f"oci:{tmp_path}/mirror:v1")
        assert result.copied
    assert any("/blobs/" in p for m, p, r in faults.requests if m == "GET")
    assert ocisift.resolve(f"oci:{tmp_path}/mirror:v1").descriptor.digest == result.root.digest


def test_wrong_bytes_exit_5_and_leave_nothing(upstream, tmp_path, cli):
    faults = Faults(wrong_bytes=True)
    with proxy(upstream.host, faults) as host:
        res = cli("pull", f"{host}/acme/big:v1", "-o", str(tmp_path / "out"), "--format", "json")
        assert res.code == 5 and "digest" in res.json()["error"]["message"]
        assert not (tmp_path / "out").exists()
        with pytest.raises(IntegrityError):
            ocisift.copy(f"{host}/acme/big:v1", f"oci:{tmp_path}/mirror:v1")
        assert not [p for p in (tmp_path / "mirror" / "blobs" / "sha256").iterdir() if p.stat().st_size > 1 << 20]


def test_a_resume_answered_from_byte_zero_is_skipped_forward(upstream, tmp_path):
    faults = Faults(cut_blobs_once=True, range_from_zero=True)  # cut, then a 206 that starts over
    with proxy(upstream.host, faults) as host:
        ocisift.pull(f"{host}/acme/big:v1", str(tmp_path / "out"))
    assert (tmp_path / "out" / "big.bin").read_bytes() == upstream.big
    assert any(r for m, p, r in faults.requests if "/blobs/" in p)


class _Hostile(http.server.BaseHTTPRequestHandler):
    """A registry that misbehaves in one chosen way; `mode` is set per test."""

    mode = ""

    def do_GET(self):
        if self.mode == "short-tag-page" and "/tags/list" in self.path:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b'{"name": "r", "tags": [')
            self.close_connection = True
            return
        if self.mode == "bad-link" and "/tags/list" in self.path:
            body = b'{"name": "r", "tags": ["a"]}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Link", '<http://[x/v2/r/tags/list?last=a>; rel="next"')
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if self.mode == "long-retry-after":
            self.send_response(503)
            self.send_header("Retry-After", "120")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("mode, words", [
    ("short-tag-page", "broke while reading"),
    ("bad-link", "not an http(s) URL"),
    ("long-retry-after", "Retry-After"),
])
def test_a_hostile_registry_gets_a_clear_error_not_an_internal_one(cli, mode, words):
    from faults import serving

    handler = type("Handler", (_Hostile,), {"mode": mode})
    with serving(handler) as host:
        started = time.monotonic()
        res = cli("tags", f"{host}/r", "--format", "json")
    assert res.code == 1, res.out
    message = res.json()["error"]["message"]
    assert words in message and "internal error" not in message, message
    assert time.monotonic() - started < 10  # the 120 s Retry-After was not slept


def test_a_failed_copy_says_what_to_do_next(upstream, tmp_path, cli):
    faults = Faults(cut_every_time=True)
    with proxy(upstream.host, faults) as host:
        res = cli("copy", f"{host}/acme/big:v1", f"oci-archive:{tmp_path}/bundle.tar:v1", "--format", "json")
    assert res.code == 5
    message = res.json()["error"]["message"]
    assert "giving up" in message and "run the same copy again" in message
    assert not list(tmp_path.iterdir())  # the archive was never created, and no staging is left
    ok = cli("copy", f"{upstream.host}/acme/big:v1", f"oci:{tmp_path}/mirror:v1")
    assert ok.code == 0 and "moved)" in ok.out and "MiB" in ok.out
