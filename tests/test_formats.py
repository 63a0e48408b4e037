"""Docker v2s2 content into OCI layouts: digests kept by default (as regctl and crane copy) and said so;
`copy --format oci` converts as skopeo's `--format oci` does, and skopeo and umoci read the result.

The Docker image is written by skopeo itself (`skopeo copy --format v2s2` of an image umoci made) into a
real distribution registry; a Docker manifest list is written as the Docker image manifest v2 schema 2
document describes it ("application/vnd.docker.distribution.manifest.list.v2+json", entries with
`platform`), over manifests skopeo wrote.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

import ocisift
from conftest import member, raw_tar
from imagetools import differences, snapshot, umoci_image_of
from ocisift._core import mediatypes as mt
from ocisift._stores.layout import LayoutStore
from registry import run_registry

pytestmark = pytest.mark.skipif(any(shutil.which(t) is None for t in ("docker-registry", "skopeo", "umoci")),
                                reason="docker-registry, skopeo and umoci are needed")


def _skopeo(*args: str) -> str:
    return subprocess.run(["skopeo", *args], check=True, capture_output=True, text=True, timeout=120).stdout


@pytest.fixture(scope="module")
def docker_image(tmp_path_factory):
    """A registry holding acme/docker:1, a Docker v2s2 image skopeo wrote (gzip layers, Docker config type)."""
    work = tmp_path_factory.mktemp("docker")
    layer = work / "layer.tar"
    layer.write_bytes(raw_tar([
        (member("etc", tarfile.DIRTYPE, mode=0o755), None), (member("etc/os-release"), b"ID=test\n"),
        (member("bin", tarfile.DIRTYPE, mode=0o755), None), (member("bin/sh", tarfile.SYMTYPE, linkname="busybox"),
                                                             None),
        (member("bin/busybox", mode=0o4755), b"\x7fELF"),
    ]))
    layout = umoci_image_of([layer], work)
    with run_registry(work / "registry") as reg:
        _skopeo("copy", "--format", "v2s2", "--dest-tls-verify=false", f"oci:{layout}:1",
                f"docker://{reg.host}/acme/docker:1")
        yield reg


def _manifest_of(layout: Path, tag: str) -> dict:
    store = LayoutStore(str(layout))
    (root,) = store.resolve(ocisift.parse_reference(f"oci:{layout}:{tag}").target)
    return json.loads(store.fetch_manifest(root))


def test_docker_types_into_a_layout_keep_every_digest_and_say_so(docker_image, tmp_path, cli):
    source = f"{docker_image.host}/acme/docker:1"
    remote = ocisift.resolve(source).descriptor
    assert remote.media_type == mt.DOCKER_MANIFEST
    run = cli("copy", source, f"oci:{tmp_path / 'kept'}:1")
    assert run.code == 0, run.err
    assert "now holds Docker media types (1 manifest(s) or list(s)) with their digests kept" in run.err
    assert "--format oci" in run.err
    assert ocisift.resolve(f"oci:{tmp_path / 'kept'}:1").descriptor.digest == remote.digest
    assert _manifest_of(tmp_path / "kept", "1")["mediaType"] == mt.DOCKER_MANIFEST
    # The same note reaches scripts.
    run = cli("copy", source, f"oci:{tmp_path / 'kept2'}:1", "--format", "json")
    assert any("Docker media types" in n for n in run.json()["notes"])


def test_format_oci_converts_and_skopeo_and_umoci_read_the_result(docker_image, tmp_path, cli):
    source = f"{docker_image.host}/acme/docker:1"
    remote = ocisift.resolve(source).descriptor
    out = tmp_path / "oci"
    run = cli("copy", source, f"oci:{out}:1", "--format", "oci")
    assert run.code == 0, run.err
    converted = ocisift.resolve(f"oci:{out}:1").descriptor
    assert converted.media_type == mt.OCI_MANIFEST and converted.digest != remote.digest
    assert f"converted {remote.digest} -> {converted.digest}" in run.out
    mine = _manifest_of(out, "1")
    assert mine["mediaType"] == mt.OCI_MANIFEST and mine["config"]["mediaType"] == mt.OCI_CONFIG
    assert [layer["mediaType"] for layer in mine["layers"]] == [mt.OCI_LAYER_GZIP]
    # skopeo reads it, and its own conversion moves the same layer bytes under the same type.
    raw = json.loads(_skopeo("inspect", "--raw", f"oci:{out}:1"))
    assert raw == mine
    _skopeo("copy", "--format", "oci", "--src-tls-verify=false", f"docker://{source}", f"oci:{tmp_path / 'sk'}:1")
    theirs = _manifest_of(tmp_path / "sk", "1")
    assert [(x["mediaType"], x["digest"]) for x in theirs["layers"]] == \
        [(x["mediaType"], x["digest"]) for x in mine["layers"]]
    # umoci unpacks it to the rootfs ocisift unpacks from the Docker original.
    subprocess.run(["umoci", "unpack", "--image", f"{out}:1", str(tmp_path / "bundle")], check=True,
                   capture_output=True, timeout=120)
    ocisift.pull(source, str(tmp_path / "rootfs"), mode="extract-all")
    assert differences(snapshot(tmp_path / "rootfs"), snapshot(tmp_path / "bundle" / "rootfs")) == []
    # A second run finds the converted tag in place and copies nothing.
    again = ocisift.copy(source, f"oci:{out}:1", manifest_format="oci")
    assert again.unchanged and again.root is not None and again.root.digest == converted.digest


def test_a_docker_manifest_list_becomes_an_oci_index_of_converted_manifests(docker_image, tmp_path):
    source = f"{docker_image.host}/acme/docker:1"
    docker_layout = tmp_path / "docker"
    ocisift.copy(source, f"oci:{docker_layout}:1")
    store = LayoutStore(str(docker_layout))
    child = ocisift.resolve(f"oci:{docker_layout}:1").descriptor
    listing = {"schemaVersion": 2, "mediaType": mt.DOCKER_LIST, "manifests": [
        {"mediaType": mt.DOCKER_MANIFEST, "digest": str(child.digest), "size": child.size,
         "platform": {"architecture": "amd64", "os": "linux"}},
        {"mediaType": mt.DOCKER_MANIFEST, "digest": str(child.digest), "size": child.size,
         "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
    ]}
    desc = store.push_bytes(json.dumps(listing).encode(), mt.DOCKER_LIST)
    store.tag(desc, "list")
    out = tmp_path / "oci"
    result = ocisift.copy(f"oci:{docker_layout}:list", f"oci:{out}:list", manifest_format="oci")
    assert result.root is not None and result.root.media_type == mt.OCI_INDEX
    assert set(result.converted) == {str(desc.digest), str(child.digest)}
    index = _manifest_of(out, "list")
    assert index["mediaType"] == mt.OCI_INDEX
    assert {e["digest"] for e in index["manifests"]} == {result.converted[str(child.digest)]}
    assert [e["platform"] for e in index["manifests"]] == [m["platform"] for m in listing["manifests"]]
    raw = json.loads(_skopeo("inspect", "--raw", f"oci:{out}:list"))
    assert raw["mediaType"] == mt.OCI_INDEX
    _skopeo("copy", "--all", f"oci:{out}:list", f"oci:{tmp_path / 'again'}:list")  # skopeo reads it whole
    picked = ocisift.resolve(f"oci:{out}:list", select=ocisift.Selector.build("linux/arm64"))
    assert picked.descriptor.media_type == mt.OCI_MANIFEST


def test_referrers_cannot_follow_a_conversion(docker_image, tmp_path, cli):
    run = cli("copy", f"{docker_image.host}/acme/docker:1", f"oci:{tmp_path / 'x'}:1", "--format", "oci",
              "--referrers")
    assert run.code == 2 and "new digests" in run.err and not (tmp_path / "x").exists()


def test_a_layer_type_without_an_oci_equivalent_is_refused(tmp_path):
    store = LayoutStore.create(str(tmp_path / "src"))
    config = store.push_bytes(b"{}", mt.DOCKER_CONFIG)
    plugin = store.push_bytes(b"plugin", "application/vnd.docker.plugin.v1+json")
    manifest = {"schemaVersion": 2, "mediaType": mt.DOCKER_MANIFEST, "config": config.to_json(),
                "layers": [plugin.to_json()]}
    store.tag(store.push_bytes(json.dumps(manifest).encode(), mt.DOCKER_MANIFEST), "1")
    with pytest.raises(ocisift.UsageError, match="no OCI equivalent"):
        ocisift.copy(f"oci:{tmp_path / 'src'}:1", f"oci:{tmp_path / 'dst'}:1", manifest_format="oci")
    assert ocisift.copy(f"oci:{tmp_path / 'src'}:1", f"oci:{tmp_path / 'dst'}:1").docker_documents == 1
