"""docker-archive: what skopeo writes as docker-archive we read, what we write skopeo reads, and the forms
`docker save` writes (classic manifest.json, and the OCI layout Docker 25+ puts inside), built as moby's
image/tarexport/save.go writes them."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

import ocisift
from ocisift import LayerSelector, Selector

pytestmark = pytest.mark.skipif(shutil.which("skopeo") is None or shutil.which("umoci") is None,
                                reason="skopeo and umoci are needed")


def _layer(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> Path:
    """A container image in an OCI layout, made by umoci (its config, its manifest, its gzip layers)."""
    work = tmp_path_factory.mktemp("docker-archive")
    layout = work / "image"
    subprocess.run(["umoci", "init", "--layout", str(layout)], check=True, capture_output=True, timeout=60)
    subprocess.run(["umoci", "new", "--image", f"{layout}:base"], check=True, capture_output=True, timeout=60)
    for i, files in enumerate(({"etc/os-release": b"ID=test\n"}, {"app/run": b"#!/bin/sh\necho hi\n"})):
        subprocess.run(["umoci", "raw", "add-layer", "--image", f"{layout}:base",
                        str(_layer(work / f"l{i}.tar", files))], check=True, capture_output=True, timeout=60)
    return layout


def skopeo(*args: str) -> bytes:
    return subprocess.run(["skopeo", *args], check=True, capture_output=True, timeout=120).stdout


def config_digest(ref: str) -> str:
    return json.loads(skopeo("inspect", "--raw", ref))["config"]["digest"]


def test_we_read_what_skopeo_writes_as_docker_archive(image, tmp_path, cli):
    archive = tmp_path / "saved.tar"
    skopeo("copy", f"oci:{image}:base", f"docker-archive:{archive}:example.com/app:1.0")
    ref = f"docker-archive:{archive}"
    assert set(ocisift.tags(ref)) == {"1.0", "example.com/app:1.0"}
    by_name = ocisift.resolve(f"{ref}:example.com/app:1.0")
    assert by_name.descriptor.digest == ocisift.resolve(ref).descriptor.digest == ocisift.resolve(f"{ref}@0").descriptor.digest
    assert by_name.pinned == f"{ref}@0"
    out = tmp_path / "rootfs"
    ocisift.pull(ref, str(out), mode="extract-all")
    assert (out / "etc" / "os-release").read_bytes() == b"ID=test\n" and (out / "app" / "run").is_file()
    # The manifest we make from the archive names the config and layers skopeo's does (skopeo labels
    # the uncompressed layers .tar.gzip; we say .tar, so the two manifests differ only there).
    ours, theirs = json.loads(ocisift.manifest(ref)), json.loads(skopeo("inspect", "--raw", ref))
    assert ours["config"]["digest"] == theirs["config"]["digest"]
    assert [la["digest"] for la in ours["layers"]] == [la["digest"] for la in theirs["layers"]]
    assert {la["mediaType"] for la in ours["layers"]} == {"application/vnd.docker.image.rootfs.diff.tar"}
    # Copied into a layout, every byte is kept: the same manifest digest, config and layers.
    assert cli("copy", ref, f"oci:{tmp_path}/copied:1.0").code == 0
    assert ocisift.resolve(f"oci:{tmp_path}/copied:1.0").descriptor.digest == by_name.descriptor.digest
    assert cli("resolve", f"{ref}:example.com/app:2.0").code == 3


def test_skopeo_reads_what_we_write_as_docker_archive(image, tmp_path, cli):
    archive = tmp_path / "ours.tar"
    res = cli("copy", f"oci:{image}:base", f"docker-archive:{archive}:example.com/ours:2.0", "--format", "json")
    assert res.code == 0, res.out
    inspected = json.loads(skopeo("inspect", f"docker-archive:{archive}"))
    original = json.loads(ocisift.manifest(f"oci:{image}:base"))
    config = json.loads((image / "blobs" / "sha256" /
                         original["config"]["digest"].split(":")[1]).read_text())
    assert inspected["Layers"] == config["rootfs"]["diff_ids"]  # uncompressed, as docker load wants them
    assert config_digest(f"docker-archive:{archive}") == original["config"]["digest"]  # the config, unchanged
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
    assert manifest[0]["RepoTags"] == ["example.com/ours:2.0"]
    skopeo("copy", f"docker-archive:{archive}", f"oci:{tmp_path}/back:b")  # and skopeo copies out of it
    back = tmp_path / "back" / "roots"
    ocisift.pull(f"oci:{tmp_path}/back:b", str(back), mode="extract-all")
    assert (back / "app" / "run").read_bytes() == b"#!/bin/sh\necho hi\n"
    # A docker archive holds images: an index is refused with the way out, and nothing is written.
    assert cli("copy", f"oci:{tmp_path}/both", f"docker-archive:{tmp_path}/x.tar").code == 3  # no such layout
    ocisift.index_create(f"oci:{tmp_path}/idx:multi", [f"oci:{image}:base"])
    refused = cli("copy", f"oci:{tmp_path}/idx:multi", f"docker-archive:{tmp_path}/multi.tar", "--format", "json")
    assert refused.code == 2 and "--platform" in refused.json()["error"]["message"]
    assert not (tmp_path / "multi.tar").exists()
    assert not list(tmp_path.glob(".ocisift-*"))


def _classic_archive(path: Path, images: list[tuple[list[str], dict[str, bytes]]]) -> Path:
    """`docker save` before Docker 25: per image a config `HEX.json`, layers `ID/layer.tar`, manifest.json."""
    import hashlib

    entries = []
    with tarfile.open(path, "w") as tar:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        for n, (tags, files) in enumerate(images):
            buf = io.BytesIO()
            _layer_bytes(buf, files)
            layer = buf.getvalue()
            diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
            config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers",
                                 "diff_ids": [diff_id]}, "config": {}}).encode()
            config_hex = hashlib.sha256(config).hexdigest()
            add(f"{config_hex}.json", config)
            add(f"layer{n}/layer.tar", layer)
            add(f"layer{n}/VERSION", b"1.0")
            entries.append({"Config": f"{config_hex}.json", "RepoTags": tags, "Layers": [f"layer{n}/layer.tar"]})
        add("manifest.json", json.dumps(entries).encode())
    return path


def _layer_bytes(buf: io.BytesIO, files: dict[str, bytes]) -> None:
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_an_image_without_a_name_is_picked_by_position(tmp_path, cli):
    archive = _classic_archive(tmp_path / "two.tar", [(["alpine:3.16"], {"a": b"alpine"}), ([], {"b": b"unnamed"})])
    ref = f"docker-archive:{archive}"
    res = cli("pull", ref, "-o", str(tmp_path / "x"), "--format", "json")
    assert res.code == 4
    pins = [c["reference"] for c in res.json()["error"]["candidates"]]
    assert pins == [f"{ref}@0", f"{ref}@1"]
    assert cli("pull", f"{ref}@1", "-o", str(tmp_path / "one"), "--mode", "extract").code == 0
    assert (tmp_path / "one" / "b").read_bytes() == b"unnamed"
    named = ocisift.pull(f"{ref}:alpine:3.16", str(tmp_path / "two"), mode="extract")  # Docker's short name
    assert (tmp_path / "two" / "a").read_bytes() == b"alpine" and named.revision.startswith("3.16@")
    assert ocisift.resolve(f"{ref}:docker.io/library/alpine:3.16").descriptor.digest == named.resolved.descriptor.digest
    missing = cli("resolve", f"{ref}:busybox")
    assert missing.code == 3 and f"{ref}@0" in missing.err  # says how to pick by position


def test_docker_25_archives_are_read_as_the_oci_layout_inside(image, tmp_path):
    """moby image/tarexport/save.go (Docker 25+): blobs/, oci-layout, index.json (entries named by
    io.containerd.image.name and org.opencontainers.image.ref.name), and a manifest.json pointing into blobs/."""
    archive = tmp_path / "docker25.tar"
    layout = image
    index = json.loads((layout / "index.json").read_text())
    entry = dict(index["manifests"][0])
    entry["annotations"] = {"io.containerd.image.name": "docker.io/library/app:25",
                            "org.opencontainers.image.ref.name": "25"}
    manifest = json.loads((layout / "blobs" / "sha256" / entry["digest"].split(":")[1]).read_text())
    with tarfile.open(archive, "w") as tar:
        tar.add(layout / "blobs", arcname="blobs")
        tar.add(layout / "oci-layout", arcname="oci-layout")
        for name, body in (("index.json", {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                                           "manifests": [entry]}),
                           ("manifest.json", [{"Config": "blobs/sha256/" + manifest["config"]["digest"].split(":")[1],
                                               "RepoTags": ["app:25"],
                                               "Layers": ["blobs/sha256/" + la["digest"].split(":")[1]
                                                          for la in manifest["layers"]]}])):
            data = json.dumps(body).encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    ref = f"docker-archive:{archive}"
    assert ocisift.resolve(f"{ref}:app:25").descriptor.digest == ocisift.Digest.parse(entry["digest"])
    assert ocisift.resolve(f"{ref}@0").descriptor.digest == ocisift.Digest.parse(entry["digest"])
    out = tmp_path / "out"
    ocisift.pull(f"{ref}:app:25", str(out), Selector.build(), layers=LayerSelector.build(all=True))
    assert len(list(out.iterdir())) == 2


def _entries_archive(path: Path, manifest_json: bytes, extra: dict[str, bytes] | None = None) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in {"manifest.json": manifest_json, **(extra or {})}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize("manifest_json, config", [
    (b'[{"Config": "c.json", "RepoTags": 5, "Layers": []}]', b"{}"),
    (b'[{"Config": "c.json", "RepoTags": "abc", "Layers": []}]', b"{}"),
    (b"[" * 100_000, b"{}"),
    (b'[{"Config": "c.json", "Layers": ["l.tar"]}]', b'{"rootfs": {"diff_ids": []}}'),  # more layers than diff_ids
    (b'[{"Config": "c.json", "Layers": []}]', b"[" * 100_000),
    (b'[{"Config": "c.json", "Layers": []}]', b'{"os": "linux", "architecture": "amd64", "os.features": 5}'),
], ids=["repotags-int", "repotags-str", "deep-manifest-json", "layers-past-diff-ids", "deep-config", "features-int"])
def test_a_crafted_docker_archive_is_a_clear_error_or_read_correctly(tmp_path, cli, manifest_json, config):
    archive = _entries_archive(tmp_path / "x.tar", manifest_json, {"c.json": config, "l.tar": b"\0" * 1024})
    res = cli("tags", f"docker-archive:{archive}", "--format", "json")
    if res.code == 0:  # a config too strange to give a platform still makes an image without one
        assert res.json() == {"tags": []} and manifest_json.startswith(b'[{"Config"')
        assert cli("tree", f"docker-archive:{archive}").code == 0
    else:
        assert res.code == 5, res.out
        assert "internal error" not in res.json()["error"]["message"]


def test_positions_count_images_not_tags(tmp_path):
    archive = _classic_archive(tmp_path / "x.tar", [(["a:1", "a:2"], {"a": b"first"}), ([], {"b": b"second"})])
    ref = f"docker-archive:{archive}"
    first, second = (ocisift.resolve(f"{ref}@{n}").descriptor.digest for n in (0, 1))
    assert first == ocisift.resolve(f"{ref}:a:2").descriptor.digest and first != second
    assert ocisift.resolve(f"{ref}@1").pinned == f"{ref}@1"
    with pytest.raises(ocisift.NotFoundError):
        ocisift.resolve(f"{ref}@2")


def test_a_layer_listed_many_times_is_read_once(tmp_path, monkeypatch):
    import gzip

    from ocisift._stores import docker_archive

    layer = gzip.compress(b"\0" * 4096)
    items = [{"Config": "c.json", "Layers": ["l.tar.gz"], "RepoTags": [f"x:{i}"]} for i in range(200)]
    archive = _entries_archive(tmp_path / "x.tar", json.dumps(items).encode(), {"c.json": b"{}", "l.tar.gz": layer})
    hashed = []
    real = docker_archive._hash_member
    monkeypatch.setattr(docker_archive, "_hash_member", lambda files, name: hashed.append(name) or real(files, name))
    assert len(ocisift.tags(f"docker-archive:{archive}")) == 400  # x:N and docker.io/library/x:N
    assert hashed == ["l.tar.gz"]


def test_an_existing_docker_archive_is_never_overwritten(image, tmp_path, cli):
    archive = tmp_path / "keep.tar"
    archive.write_bytes(b"mine")
    res = cli("copy", f"oci:{image}:base", f"docker-archive:{archive}:x:1", "--format", "json")
    assert res.code == 2 and "exists" in res.json()["error"]["message"]
    assert archive.read_bytes() == b"mine"
