"""Non-distributable blobs (descriptors with `urls`): a copy never silently leaves a destination without a blob.

By default Docker's rule: the descriptor is kept, the blob is not copied, and the copy says so (text and
JSON). `--include-nondistributable` copies the blob: from the source when it holds it, else from its
URLs, over HTTPS only. The URL is a real TLS registry's blob URL (distribution serves
`/v2/NAME/blobs/DIGEST` to anyone on an open registry, as a CDN serves a foreign layer), its CA made by
openssl; the destination is a real distribution registry, which accepts a non-distributable layer with
URLs without holding it once its operator allows such URLs (its ocischema handler checks them against
validation.manifests.urls.allow instead of looking for the blob), and a layout.
"""

from __future__ import annotations

import json
import shutil
import urllib.request

import pytest

import ocisift
from ocisift._core import mediatypes as mt
from ocisift._core.digest import Digest
from ocisift._core.options import RegistryOptions
from ocisift._demo import make_tar
from ocisift._stores.layout import LayoutStore
from registry import run_registry
from tls import make_ca

pytestmark = pytest.mark.skipif(shutil.which("docker-registry") is None, reason="docker-registry is needed")

FOREIGN = make_tar({"license.txt": b"not ours to give away\n"})


@pytest.fixture(scope="module")
def cdn(tmp_path_factory):
    """A TLS registry holding the foreign blob, and the options that trust its CA."""
    work = tmp_path_factory.mktemp("cdn")
    ca = make_ca(work / "ca")
    cert, key = ca.issue("cdn")
    with run_registry(work / "reg", tls=(cert, key)) as reg:
        # Trust for this server alone (certs.d/HOST:PORT/ca.crt): the plain-HTTP destination stays plain.
        trusted = work / "certs.d" / reg.host
        trusted.mkdir(parents=True)
        shutil.copy(ca.cert, trusted / "ca.crt")
        options = RegistryOptions(certs_dirs=(str(work / "certs.d"),))
        seed = LayoutStore.create(str(work / "seed"))
        layer = seed.push_bytes(FOREIGN, mt.OCI_LAYER_GZIP)
        config = seed.push_bytes(b"{}", mt.OCI_EMPTY)
        body = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "config": config.to_json(),
                "layers": [layer.to_json()]}
        seed.tag(seed.push_bytes(json.dumps(body).encode(), mt.OCI_MANIFEST), "1")
        ocisift.copy(f"oci:{work / 'seed'}:1", f"{reg.host}/vendor/base:1", registry=options)
        reg.options = options  # type: ignore[attr-defined]
        reg.blob_url = f"https://{reg.host}/v2/vendor/base/blobs/{layer.digest}"  # type: ignore[attr-defined]
        yield reg


@pytest.fixture(scope="module")
def destination(tmp_path_factory):
    """distribution refuses every descriptor URL unless its operator allows them (validation.manifests.urls)."""
    with run_registry(tmp_path_factory.mktemp("dest"), urls_allow=("^https?://",)) as reg:
        yield reg


def _source(tmp_path, urls: list[str], *, with_blob: bool = False) -> str:
    """An image whose one layer is non-distributable: its descriptor names where the blob is."""
    store = LayoutStore.create(str(tmp_path / "src"))
    config = store.push_bytes(b'{"architecture":"amd64","os":"linux"}', mt.OCI_CONFIG)
    digest = Digest.of(FOREIGN)
    if with_blob:
        store.push_bytes(FOREIGN, mt.OCI_LAYER_NONDIST_GZIP)
    layer = {"mediaType": mt.OCI_LAYER_NONDIST_GZIP, "digest": str(digest), "size": len(FOREIGN), "urls": urls}
    body = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "config": config.to_json(), "layers": [layer]}
    store.tag(store.push_bytes(json.dumps(body).encode(), mt.OCI_MANIFEST), "1")
    return f"oci:{tmp_path / 'src'}:1"


def _has_blob(registry, repo: str, digest: Digest) -> bool:
    request = urllib.request.Request(f"http://{registry.host}/v2/{repo}/blobs/{digest}", method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status == 200
    except urllib.error.HTTPError as exc:
        assert exc.code == 404
        return False


def test_by_default_the_descriptor_is_kept_the_blob_left_and_the_copy_says_so(cdn, destination, tmp_path, cli):
    source = _source(tmp_path, [cdn.blob_url])
    run = cli("copy", source, f"{destination.host}/acme/foreign:1")
    assert run.code == 0, run.err
    digest = Digest.of(FOREIGN)
    assert f"left at its URLs: {digest}" in run.out
    assert "1 non-distributable blob(s) not copied" in run.err and "--include-nondistributable" in run.err
    assert not _has_blob(destination, "acme/foreign", digest)
    copied = json.loads(ocisift.manifest(f"{destination.host}/acme/foreign:1"))
    assert copied["layers"][0]["urls"] == [cdn.blob_url]  # the descriptor kept, byte for byte
    assert f"GET /v2/vendor/base/blobs/{digest}" not in cdn.log_text()  # nothing fetched
    run = cli("copy", source, f"oci:{tmp_path / 'layout'}:1", "--format", "json")
    assert run.json()["external"] == [str(digest)] and run.json()["notes"]


def test_asked_for_it_is_fetched_from_its_https_url(cdn, destination, tmp_path):
    source = _source(tmp_path, ["http://127.0.0.1:9/nowhere", cdn.blob_url])
    result = ocisift.copy(source, f"{destination.host}/acme/carried:1", include_nondistributable=True,
                          registry=cdn.options)
    digest = Digest.of(FOREIGN)
    assert str(digest) in result.copied and result.external == [] and result.notes == []
    assert _has_blob(destination, "acme/carried", digest)
    assert f"GET /v2/vendor/base/blobs/{digest}" in cdn.wait_for_log(f"/v2/vendor/base/blobs/{digest}")


def test_asked_for_it_is_taken_from_the_source_when_the_source_has_it(cdn, destination, tmp_path):
    before = cdn.log_text().count("/v2/vendor/base/blobs/")
    source = _source(tmp_path, [cdn.blob_url], with_blob=True)
    result = ocisift.copy(source, f"oci:{tmp_path / 'out'}:1", include_nondistributable=True)
    assert str(Digest.of(FOREIGN)) in result.copied
    assert (tmp_path / "out" / "blobs" / "sha256" / Digest.of(FOREIGN).hex).read_bytes() == FOREIGN
    assert cdn.log_text().count("/v2/vendor/base/blobs/") == before


def test_never_over_plain_http(tmp_path, cli):
    source = _source(tmp_path, ["http://127.0.0.1:9/license.tar.gz"])
    run = cli("copy", source, f"oci:{tmp_path / 'out'}:1", "--include-nondistributable")
    assert run.code == 5 and "plain HTTP" in run.err
    assert json.loads((tmp_path / "out" / "index.json").read_text())["manifests"] == []  # nothing published


def test_a_blob_its_url_serves_wrong_is_refused(cdn, tmp_path):
    other = cdn.blob_url.rsplit("/", 1)[0] + "/" + str(Digest.of(b"{}"))  # a real blob, not this one
    source = _source(tmp_path, [other])
    with pytest.raises(ocisift.IntegrityError):
        ocisift.copy(source, f"oci:{tmp_path / 'out'}:1", include_nondistributable=True, registry=cdn.options)
    assert not (tmp_path / "out" / "blobs" / "sha256" / Digest.of(FOREIGN).hex).exists()


def test_a_pull_of_a_layer_left_at_its_urls_says_where_it_is(cdn, tmp_path):
    source = _source(tmp_path, [cdn.blob_url])
    ocisift.copy(source, f"oci:{tmp_path / 'mirror'}:1")
    with pytest.raises(ocisift.NotFoundError, match=r"non-distributable.*include-nondistributable") as info:
        ocisift.pull(f"oci:{tmp_path / 'mirror'}:1", str(tmp_path / "out"), mode="extract")
    assert cdn.blob_url in info.value.message and not (tmp_path / "out").exists()
    ocisift.copy(source, f"oci:{tmp_path / 'mirror'}:1", include_nondistributable=True, registry=cdn.options)
    ocisift.pull(f"oci:{tmp_path / 'mirror'}:1", str(tmp_path / "out"), mode="extract")
    assert (tmp_path / "out" / "license.txt").read_bytes() == b"not ours to give away\n"
