"""dir: (skopeo's directory transport) against the real tools: what skopeo and podman write we read, what we
write skopeo reads, and the digests never change on the way (manifest.json is kept byte for byte)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

import ocisift
from ocisift._core.errors import UsageError
from ocisift._core.reference import DirReference, parse_reference
from ocisift._stores.dir_transport import VERSION

pytestmark = pytest.mark.skipif(shutil.which("skopeo") is None or shutil.which("umoci") is None,
                                reason="skopeo and umoci are needed")

ARCHES = ("amd64", "arm64")


def _layer(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return path


def _run(*args: str) -> bytes:
    return subprocess.run(list(args), check=True, capture_output=True, timeout=300).stdout


def skopeo(*args: str) -> bytes:
    return _run("skopeo", *args)


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    """An OCI layout made by umoci: one image per architecture (`amd64`, `arm64`) and ocisift's index of both
    (`multi`)."""
    work = tmp_path_factory.mktemp("dir-transport")
    layout = work / "images"
    _run("umoci", "init", "--layout", str(layout))
    for arch in ARCHES:
        ref = f"{layout}:{arch}"
        _run("umoci", "new", "--image", ref)
        _run("umoci", "config", "--image", ref, "--architecture", arch, "--os", "linux")
        _run("umoci", "raw", "add-layer", "--image", ref,
             str(_layer(work / f"{arch}.tar", {"etc/arch": arch.encode(), "app/run": b"#!/bin/sh\necho hi\n"})))
    ocisift.index_create(f"oci:{layout}:multi", [f"oci:{layout}:{arch}" for arch in ARCHES])
    return layout


def digest_of(ref: str) -> str:
    return str(ocisift.resolve(ref).descriptor.digest)


def test_the_reference_grammar(tmp_path):
    assert parse_reference("dir:out/image") == DirReference("out/image")
    assert parse_reference("dir:/a:b/c") == DirReference("/a:b/c")  # everything after dir: is the path
    pinned = parse_reference(f"dir:x@sha256:{'a' * 64}")
    assert isinstance(pinned, DirReference) and pinned.path == "x" and str(pinned.digest) == f"sha256:{'a' * 64}"
    with pytest.raises(UsageError):
        parse_reference("dir:")
    with pytest.raises(UsageError):
        parse_reference("dir:x@sha256:nothex")


def test_we_read_what_skopeo_writes(images, tmp_path, cli):
    out = tmp_path / "skopeo-dir"
    skopeo("copy", f"oci:{images}:amd64", f"dir:{out}")
    assert (out / "version").read_bytes() == VERSION
    ref = f"dir:{out}"
    want = digest_of(f"oci:{images}:amd64")
    assert digest_of(ref) == want
    tree = cli("tree", ref)
    assert tree.code == 0 and "linux/amd64" in tree.out, tree.err
    pulled = tmp_path / "rootfs"
    ocisift.pull(ref, str(pulled), mode="extract-all")
    assert (pulled / "etc" / "arch").read_bytes() == b"amd64"
    assert cli("copy", ref, f"oci:{tmp_path}/back:1.0").code == 0
    assert digest_of(f"oci:{tmp_path}/back:1.0") == want
    config = json.loads(ocisift.manifest(ref))["config"]["digest"]
    assert cli("blob", "get", f"{ref}@{config}", "-o", str(tmp_path / "config.json")).code == 0
    assert json.loads((tmp_path / "config.json").read_bytes())["architecture"] == "amd64"
    assert cli("resolve", f"{ref}@sha256:{'0' * 64}").code == 3


def test_skopeo_reads_what_we_write(images, tmp_path, cli):
    out = tmp_path / "ours"
    assert cli("copy", f"oci:{images}:arm64", f"dir:{out}").code == 0
    assert (out / "version").read_bytes() == VERSION
    want = digest_of(f"oci:{images}:arm64")
    manifest = (out / "manifest.json").read_bytes()
    assert f"sha256:{hashlib.sha256(manifest).hexdigest()}" == want
    inspected = json.loads(skopeo("inspect", f"dir:{out}"))
    assert inspected["Digest"] == want and inspected["Architecture"] == "arm64"
    skopeo("copy", "--preserve-digests", f"dir:{out}", f"oci:{tmp_path}/via-skopeo:x")
    assert digest_of(f"oci:{tmp_path}/via-skopeo:x") == want
    assert sorted(p.name for p in out.iterdir() if p.name not in ("manifest.json", "version")) == sorted(
        d["digest"].split(":")[1] for d in [json.loads(manifest)["config"], *json.loads(manifest)["layers"]])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".ocisift-dir-")]  # no staging left


def test_multi_arch_both_ways_with_skopeo_copy_all(images, tmp_path, cli):
    want = digest_of(f"oci:{images}:multi")
    theirs = tmp_path / "skopeo-all"
    skopeo("copy", "--all", "--preserve-digests", f"oci:{images}:multi", f"dir:{theirs}")
    assert digest_of(f"dir:{theirs}") == want
    for arch in ARCHES:
        assert digest_of(f"dir:{theirs}") == want
        chosen = ocisift.resolve(f"dir:{theirs}", select=ocisift.Selector.build(platform=f"linux/{arch}"))
        assert str(chosen.descriptor.digest) == digest_of(f"oci:{images}:{arch}")
    assert cli("copy", f"dir:{theirs}", f"oci:{tmp_path}/back:all").code == 0
    assert digest_of(f"oci:{tmp_path}/back:all") == want

    ours = tmp_path / "ours-all"
    assert cli("copy", f"oci:{images}:multi", f"dir:{ours}").code == 0
    for arch in ARCHES:
        instance = digest_of(f"oci:{images}:{arch}")
        assert (ours / f"{instance.split(':')[1]}.manifest.json").is_file()
    assert json.loads(skopeo("inspect", "--raw", f"dir:{ours}"))["manifests"]
    skopeo("copy", "--all", "--preserve-digests", f"dir:{ours}", f"oci:{tmp_path}/skopeo-back:all")
    assert digest_of(f"oci:{tmp_path}/skopeo-back:all") == want
    arm = json.loads(skopeo("inspect", "--override-arch", "arm64", f"dir:{ours}"))
    assert arm["Architecture"] == "arm64"


def test_one_platform_of_an_index_into_dir(images, tmp_path, cli):
    out = tmp_path / "one"
    assert cli("copy", f"oci:{images}:multi", f"dir:{out}", "--platform", "linux/arm64").code == 0
    assert digest_of(f"dir:{out}") == digest_of(f"oci:{images}:arm64")
    assert json.loads(skopeo("inspect", f"dir:{out}"))["Architecture"] == "arm64"


def test_writing_over_a_dir_replaces_it_only_when_the_copy_succeeds(images, tmp_path, cli):
    out = tmp_path / "over"
    skopeo("copy", f"oci:{images}:amd64", f"dir:{out}")
    (out / "signature-1").write_bytes(b"an old signature")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    # A copy that fails (the source names nothing) leaves the old directory exactly as it was.
    assert cli("copy", f"oci:{images}:no-such-tag", f"dir:{out}").code == 3
    broken = tmp_path / "broken"
    shutil.copytree(images, broken)
    arm = json.loads(ocisift.manifest(f"oci:{images}:arm64"))
    layer = broken / "blobs" / "sha256" / arm["layers"][0]["digest"].split(":")[1]
    layer.write_bytes(b"not the layer")
    assert cli("copy", f"oci:{broken}:arm64", f"dir:{out}").code == 5
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    # One that succeeds replaces it whole: only the new image is there.
    assert cli("copy", f"oci:{images}:arm64", f"dir:{out}").code == 0
    assert digest_of(f"dir:{out}") == digest_of(f"oci:{images}:arm64")
    assert not (out / "signature-1").exists()
    assert json.loads(skopeo("inspect", f"dir:{out}"))["Architecture"] == "arm64"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".ocisift-dir-")]


def test_a_directory_that_is_not_a_dir_transport_is_refused(images, tmp_path, cli):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_bytes(b"mine")
    res = cli("copy", f"oci:{images}:amd64", f"dir:{precious}")
    assert res.code == 2 and "refusing" in res.err
    assert [p.name for p in precious.iterdir()] == ["notes.txt"]
    # skopeo refuses it too.
    assert subprocess.run(["skopeo", "copy", f"oci:{images}:amd64", f"dir:{precious}"],
                          capture_output=True, timeout=120).returncode != 0
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli("copy", f"oci:{images}:amd64", f"dir:{empty}").code == 0
    assert (empty / "manifest.json").is_file()
    file = tmp_path / "a-file"
    file.write_bytes(b"x")
    assert cli("copy", f"oci:{images}:amd64", f"dir:{file}").code == 2 and file.read_bytes() == b"x"


def test_a_symlinked_manifest_in_a_dir_is_refused(images, tmp_path, cli):
    out = tmp_path / "linked"
    skopeo("copy", f"oci:{images}:amd64", f"dir:{out}")
    secret = tmp_path / "secret"
    secret.write_bytes(b'{"schemaVersion":2,"config":{}}')
    (out / "manifest.json").unlink()
    (out / "manifest.json").symlink_to(secret)
    res = cli("resolve", f"dir:{out}")
    assert res.code == 5 and "refusing" in res.err


def test_a_blob_linked_out_of_a_dir_is_never_read(images, tmp_path, cli):
    out = tmp_path / "linked-blob"
    skopeo("copy", f"oci:{images}:amd64", f"dir:{out}")
    secret = tmp_path / "shadow"
    secret.write_bytes(b"root:$6$never-printed\n")
    layer = json.loads((out / "manifest.json").read_bytes())["layers"][0]["digest"]
    (out / layer.split(":")[1]).unlink()
    (out / layer.split(":")[1]).symlink_to(secret)
    res = cli("blob", "get", f"dir:{out}@{layer}", "-o", "-")
    assert res.code == 5 and "refusing" in res.err and "never-printed" not in res.out + res.err
    assert cli("pull", f"dir:{out}", "-o", str(tmp_path / "pulled")).code == 5
    # a version file that links to one saying the right thing elsewhere does not make a directory replaceable
    target = tmp_path / "not-ours"
    target.mkdir()
    (target / "data").write_bytes(b"mine")
    (tmp_path / "v").write_bytes(VERSION)
    (target / "version").symlink_to(tmp_path / "v")
    assert cli("copy", f"oci:{images}:amd64", f"dir:{target}").code == 2
    assert (target / "data").read_bytes() == b"mine"


def test_a_dir_holds_one_root(images, tmp_path):
    from ocisift._stores.dir_transport import DirWriter
    from ocisift._stores.layout import LayoutStore

    source = LayoutStore(str(images))
    writer = DirWriter(str(tmp_path / "one-root"))
    try:
        roots = [source.resolve(ocisift.Target(tag=arch))[0] for arch in ARCHES]
        writer.add_root(roots[0])
        writer.add_root(roots[0])  # the same root again is no second root
        with pytest.raises(UsageError, match="one image or index"):
            writer.add_root(roots[1])
    finally:
        writer.close()
        source.close()
    assert not (tmp_path / "one-root").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".ocisift-dir-")]


def test_what_dir_cannot_do_is_a_usage_error(images, tmp_path, cli):
    out = tmp_path / "d"
    skopeo("copy", f"oci:{images}:amd64", f"dir:{out}")
    for args in (("tag", f"dir:{out}", "v2"), ("untag", f"dir:{out}"), ("gc", f"dir:{out}"), ("tags", f"dir:{out}")):
        res = cli(*args)
        assert res.code == 2, (args, res.err)
    assert cli("resolve", f"dir:{tmp_path}/nothing").code == 3


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("podman") is None or shutil.which("buildah") is None,
                    reason="podman and buildah (as root) are needed")
def test_we_read_what_podman_saves_as_docker_dir(tmp_path, cli):
    """podman save --format docker-dir: a dir: directory with Docker schema 2 media types."""
    name = f"localhost/ocisift-dir-test-{os.getpid()}"
    env = {**os.environ, "BUILDAH_ISOLATION": "chroot"}

    def tool(*args: str) -> str:
        return subprocess.run(list(args), check=True, capture_output=True, text=True, timeout=300,
                              env=env).stdout.strip()

    container = tool("buildah", "--storage-driver", "vfs", "from", "scratch")
    try:
        mount = Path(tool("buildah", "--storage-driver", "vfs", "mount", container))
        (mount / "hello.txt").write_bytes(b"hello from buildah\n")
        (mount / "etc").mkdir()
        (mount / "etc" / "os-release").write_bytes(b"ID=scratch\n")
        tool("buildah", "--storage-driver", "vfs", "commit", container, name)
    finally:
        subprocess.run(["buildah", "--storage-driver", "vfs", "rm", container], capture_output=True, timeout=120)
    out = tmp_path / "saved"
    try:
        tool("podman", "--storage-driver", "vfs", "save", "--format", "docker-dir", "-o", str(out), name)
    finally:
        subprocess.run(["podman", "--storage-driver", "vfs", "rmi", "-f", name], capture_output=True, timeout=120)
    raw = (out / "manifest.json").read_bytes()
    assert json.loads(raw)["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    ref = f"dir:{out}"
    resolved = ocisift.resolve(ref)
    assert str(resolved.descriptor.digest) == f"sha256:{hashlib.sha256(raw).hexdigest()}"
    assert resolved.descriptor.media_type == "application/vnd.docker.distribution.manifest.v2+json"
    pulled = tmp_path / "rootfs"
    ocisift.pull(ref, str(pulled), mode="extract-all")
    assert (pulled / "hello.txt").read_bytes() == b"hello from buildah\n"
    assert (pulled / "etc" / "os-release").read_bytes() == b"ID=scratch\n"
    assert cli("copy", ref, f"oci:{tmp_path}/layout:podman").code == 0
    assert digest_of(f"oci:{tmp_path}/layout:podman") == str(resolved.descriptor.digest)
