"""Reading from a real distribution registry: the same commands as for layouts, unchanged."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

import ocisift
from ocisift import LayerSelector, Selector
from ocisift._core.errors import IntegrityError, NotFoundError
from ocisift._core.models import parse_document
from ocisift._demo import build_sample_layout
from registry import run_registry

pytestmark = pytest.mark.skipif(
    shutil.which("docker-registry") is None or shutil.which("skopeo") is None,
    reason="docker-registry and skopeo are needed",
)


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    work = tmp_path_factory.mktemp("registry")
    layout = str(work / "layout")
    build_sample_layout(layout)
    with run_registry(work) as reg:
        for src, dst in (("1.2", "acme/yum-repo:1.2"), ("7.2", "acme/module:7.2")):
            subprocess.run(["skopeo", "copy", "--multi-arch", "all", "--dest-tls-verify=false",
                            f"oci:{layout}:{src}", f"docker://{reg.host}/{dst}"],
                           check=True, capture_output=True, timeout=120)
        reg.layout = layout  # type: ignore[attr-defined]
        yield reg


def test_resolve_by_tag_and_digest_through_a_multi_platform_index(registry):
    # skopeo re-serialises the index on the way in: compare with the registry's own bytes.
    raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                          f"docker://{registry.host}/acme/yum-repo:1.2"],
                         check=True, capture_output=True, timeout=60).stdout
    idx = ocisift.resolve(f"{registry.host}/acme/yum-repo:1.2")
    assert idx.descriptor.digest == ocisift.Digest.of(raw)
    assert ocisift.manifest(f"{registry.host}/acme/yum-repo:1.2") == raw
    leaf = ocisift.resolve(f"{registry.host}/acme/yum-repo:1.2", select=Selector.build(platform="linux/arm64:el9"))
    assert leaf.descriptor.digest == ocisift.resolve(f"oci:{registry.layout}:1.2", select=Selector.build(platform="linux/arm64:el9")).descriptor.digest
    assert leaf.pinned == f"{registry.host}/acme/yum-repo@{leaf.descriptor.digest}"
    by_digest = ocisift.resolve(leaf.pinned)
    assert by_digest.descriptor.digest == leaf.descriptor.digest
    assert ocisift.manifest(leaf.pinned) == ocisift.manifest(f"oci:{registry.layout}:1.2", select=Selector.build(platform="linux/arm64:el9"))
    assert "1.2" in ocisift.tags(f"{registry.host}/acme/yum-repo")


def test_pull_fetches_only_the_selected_blob(registry, tmp_path):
    before = len(registry.log_text())
    result = ocisift.pull(f"{registry.host}/acme/yum-repo:1.2", str(tmp_path / "out"), mode="extract", select=Selector.build(platform="linux/amd64:el8"))
    assert (tmp_path / "out" / "repo" / "el8" / "amd64" / "repodata" / "repomd.xml").is_file()
    assert result.revision == f"1.2@{result.resolved.descriptor.digest}"
    log = registry.log_text()[before:]
    fetched = set(re.findall(r'"GET /v2/acme/yum-repo/blobs/(sha256:[0-9a-f]{64})', log))
    wanted = {p.descriptor.digest for p in result.plan}
    assert {str(d) for d in wanted} == fetched, log
    # and of the index's manifests, only the selected one was read: the index entries ruled out the others
    manifests = re.findall(r'"GET /v2/acme/yum-repo/manifests/(sha256:[0-9a-f]{64})', log)
    assert manifests == [str(result.resolved.descriptor.digest)], log
    # Every other platform's layer stayed on the server.
    index = parse_document(ocisift.manifest(f"{registry.host}/acme/yum-repo:1.2"))
    others = [d for d in index.manifests if d.digest != result.resolved.descriptor.digest]
    for other in others:
        layer = parse_document(ocisift.manifest(f"{registry.host}/acme/yum-repo@{other.digest}")).layers[0]
        assert str(layer.digest) not in fetched


def test_missing_tag_and_ambiguity_on_a_registry(registry, cli):
    with pytest.raises(NotFoundError):
        ocisift.resolve(f"{registry.host}/acme/yum-repo:9.9")
    res = cli("pull", f"{registry.host}/acme/yum-repo:1.2", "-o", "unused", "--platform", "linux/amd64",
              "--format", "json")
    assert res.code == 4
    refs = [c["reference"] for c in res.json()["error"]["candidates"]]
    assert all(r.startswith(f"{registry.host}/acme/yum-repo@sha256:") for r in refs) and len(refs) == 2


def test_corrupted_blob_on_the_registry_exits_5_and_leaves_nothing(registry, tmp_path, cli):
    digest = ocisift.resolve(f"{registry.host}/acme/module:7.2").descriptor.digest
    layer = parse_document(ocisift.manifest(f"{registry.host}/acme/module@{digest}")).layers[0]
    data_dir = registry.log.parent / "data" / "docker" / "registry" / "v2" / "blobs" / "sha256"
    blob = data_dir / layer.digest.hex[:2] / layer.digest.hex / "data"
    original = blob.read_bytes()
    try:
        blob.write_bytes(original[:-1] + bytes([original[-1] ^ 0xFF]))
        res = cli("pull", f"{registry.host}/acme/module:7.2", "-o", str(tmp_path / "m"), "--mode", "extract-all",
                  "--format", "json")
        assert res.code == 5, res.out
        assert not (tmp_path / "m").exists()
        with pytest.raises(IntegrityError):
            ocisift.pull(f"{registry.host}/acme/module:7.2", str(tmp_path / "c"), layers=LayerSelector.build(index=0))
        assert not (tmp_path / "c").exists()
        # copy streams without hashing twice: the corrupted blob must still never land in the layout.
        with pytest.raises(IntegrityError):
            ocisift.copy(f"{registry.host}/acme/module:7.2", f"oci:{tmp_path}/mirror:7.2")
        landed = tmp_path / "mirror" / "blobs" / "sha256"
        assert not (landed / layer.digest.hex).exists()
        assert [p.name for p in landed.iterdir() if p.name.startswith(".tmp")] == []
    finally:
        blob.write_bytes(original)


def test_dead_registry_gives_a_clear_error_quickly(cli):
    import time

    from registry import free_port

    port = free_port()
    started = time.monotonic()
    res = cli("resolve", f"127.0.0.1:{port}/nothing:1", "--format", "json")
    assert res.code == 1
    assert "unreachable" in json.loads(res.out)["error"]["message"]
    assert time.monotonic() - started < 30


def test_copy_registry_to_layout_to_registry_keeps_every_digest(registry, tmp_path, cli):
    src = f"{registry.host}/acme/yum-repo:1.2"
    root = ocisift.resolve(src).descriptor.digest
    res = cli("copy", src, f"oci:{tmp_path}/mirror:1.2", "--format", "json")
    assert res.code == 0, res.out + res.err
    body = res.json()
    assert body["digest"] == str(root) and body["destination"] == f"oci:{tmp_path}/mirror@{root}"
    assert len(body["copied"]) == 1 + 4 * 3  # index, and per platform: manifest, config, layer
    for plat in ("linux/amd64:el8", "linux/arm64:el9"):
        assert (ocisift.resolve(f"oci:{tmp_path}/mirror:1.2", select=Selector.build(platform=plat)).descriptor.digest
                == ocisift.resolve(src, select=Selector.build(platform=plat)).descriptor.digest)
    back = f"{registry.host}/acme/roundtrip:again"
    again = ocisift.copy(f"oci:{tmp_path}/mirror:1.2", back)
    assert again.root.digest == root
    raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{back}"],
                         check=True, capture_output=True, timeout=60).stdout
    assert ocisift.Digest.of(raw) == root
    # Copying again moves nothing: the root is already there, so its whole sub-graph is skipped unvisited.
    third = ocisift.copy(f"oci:{tmp_path}/mirror:1.2", back)
    assert third.copied == [] and third.skipped == [str(root)]
    # skopeo pulls what ocisift pushed, and reads the layout ocisift wrote.
    subprocess.run(["skopeo", "copy", "--src-tls-verify=false", "--override-arch", "arm64",
                    "--override-variant", "v8", f"docker://{back}", f"oci:{tmp_path}/by-skopeo:x"],
                   check=True, capture_output=True, timeout=120)
    raw_layout = subprocess.run(["skopeo", "inspect", "--raw", f"oci:{tmp_path}/mirror:1.2"], check=True,
                                capture_output=True, timeout=60).stdout
    assert ocisift.Digest.of(raw_layout) == root
    subprocess.run(["skopeo", "copy", "--override-arch", "amd64", f"oci:{tmp_path}/mirror:1.2",
                    f"oci:{tmp_path}/from-layout:y"], check=True, capture_output=True, timeout=120)
    # skopeo cannot ask for os.version: it takes one of the arm64 manifests, the bytes ocisift pushed.
    arm64 = {ocisift.resolve(src, select=Selector.build(platform=f"linux/arm64:{el}")).descriptor.digest for el in ("el8", "el9")}
    assert ocisift.resolve(f"oci:{tmp_path}/by-skopeo:x").descriptor.digest in arm64


def test_copy_chosen_platforms_to_a_registry(registry, tmp_path):
    src = f"{registry.host}/acme/yum-repo:1.2"
    one = ocisift.copy(src, f"{registry.host}/acme/el9:amd64", platforms=["linux/amd64:el9"])
    assert one.root.digest == ocisift.resolve(src, select=Selector.build(platform="linux/amd64:el9")).descriptor.digest
    two = ocisift.copy(src, f"{registry.host}/acme/el9:both", platforms=["linux/amd64:el9", "linux/arm64:el9"])
    index = parse_document(ocisift.manifest(f"{registry.host}/acme/el9:both"))
    assert {str(d.platform) for d in index.manifests} == {"linux/amd64:el9", "linux/arm64/v8:el9"}
    assert ocisift.resolve(f"{registry.host}/acme/el9:both").descriptor.digest == two.root.digest


def test_copy_into_an_oci_archive_adds_and_keeps_entries(registry, tmp_path):
    archive = tmp_path / "bundle.tar"
    src = f"{registry.host}/acme/yum-repo:1.2"
    first = ocisift.copy(src, f"oci-archive:{archive}:1.2")
    assert first.destination == f"oci-archive:{archive}@{first.root.digest}"
    second = ocisift.copy(f"oci:{registry.layout}:7.2", f"oci-archive:{archive}:7.2")
    assert ocisift.resolve(f"oci-archive:{archive}:1.2").descriptor.digest == first.root.digest
    assert ocisift.resolve(f"oci-archive:{archive}:7.2").descriptor.digest == second.root.digest
    raw = subprocess.run(["skopeo", "inspect", "--raw", f"oci-archive:{archive}:7.2"], check=True,
                         capture_output=True, timeout=60).stdout
    assert ocisift.Digest.of(raw) == second.root.digest
    assert [n for n in (tmp_path).iterdir() if n.name.startswith(".ocisift")] == []


def test_failed_copy_leaves_an_existing_archive_untouched(registry, tmp_path):
    archive = tmp_path / "bundle.tar"
    ocisift.copy(f"oci:{registry.layout}:7.2", f"oci-archive:{archive}:7.2")
    before = archive.read_bytes()
    with pytest.raises(NotFoundError):
        ocisift.copy(f"{registry.host}/acme/yum-repo:no-such-tag", f"oci-archive:{archive}:x")
    assert archive.read_bytes() == before
    assert [n for n in tmp_path.iterdir() if n.name.startswith(".ocisift")] == []


def test_tag_listing_follows_pagination(registry):
    """distribution 2.8 ignores `n` on tags/list, so a loopback proxy pages the registry's real list with
    Link headers the way distribution v3 does; the client must follow them to the end."""
    from faults import Faults, proxy

    for i in range(5):
        ocisift.copy(f"oci:{registry.layout}:7.2", f"{registry.host}/acme/paged:t{i}")
    assert sorted(ocisift.tags(f"{registry.host}/acme/paged")) == [f"t{i}" for i in range(5)]
    faults = Faults(paginate_tags=2)
    with proxy(registry.host, faults) as host:
        assert sorted(ocisift.tags(f"{host}/acme/paged")) == [f"t{i}" for i in range(5)]
        pages = [p for m, p, r in faults.requests if "/tags/list" in p]
        assert len(pages) == 3 and "last=t1" in pages[1] and "last=t3" in pages[2]


def test_composed_index_to_registry_and_referrers_by_fallback_tag(registry, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    for el in ("el8", "el9"):
        d = tmp_path / f"repo-{el}"
        d.mkdir()
        (d / "repomd.xml").write_text(el)
        ocisift.push(f"oci:{tmp_path}/{el}", [str(d)], platform=f"linux/amd64:{el}")
    made = ocisift.index_create(f"oci:{tmp_path}/merged:2.0", [f"oci:{tmp_path}/el8", f"oci:{tmp_path}/el9"])
    ocisift.copy(f"oci:{tmp_path}/merged:2.0", f"{registry.host}/acme/composed:2.0")
    raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                          f"docker://{registry.host}/acme/composed:2.0"], check=True, capture_output=True,
                         timeout=60).stdout
    assert ocisift.Digest.of(raw) == made.descriptor.digest
    # Two referrers pushed at once onto one subject: both survive in the fallback tag index.
    subject = f"{registry.host}/acme/composed@{made.descriptor.digest}"
    files = []
    for kind in ("sbom", "sig"):
        f = tmp_path / f"{kind}.json"
        f.write_text(json.dumps({"kind": kind}))
        files.append((kind, f))
    with ThreadPoolExecutor(2) as pool:
        pushed = list(pool.map(lambda kf: ocisift.push(f"{registry.host}/acme/composed:{kf[0]}", [str(kf[1])],
                                                         artifact_type=f"application/vnd.acme.{kf[0]}",
                                                         subject=subject), files))
    store = ocisift.open(f"{registry.host}/acme/composed")
    found = {str(d.digest): d.artifact_type for d in store.referrers(made.descriptor)}
    assert found == {str(p.descriptor.digest): f"application/vnd.acme.{k}" for p, (k, _) in zip(pushed, files, strict=True)}
    chosen = ocisift.resolve(subject, select=Selector.build(artifact_type="application/vnd.acme.sbom", referrers=True))
    assert chosen.descriptor.digest == pushed[0].descriptor.digest


def test_tag_on_a_registry(registry, cli):
    digest = ocisift.resolve(f"{registry.host}/acme/module:7.2").descriptor.digest
    res = cli("tag", f"{registry.host}/acme/module@{digest}", "stable", "v7", "--format", "json")
    assert res.code == 0 and res.json()["tags"] == ["stable", "v7"]
    for name in ("stable", "v7", "7.2"):
        assert ocisift.resolve(f"{registry.host}/acme/module:{name}").descriptor.digest == digest
    assert {"stable", "v7"} <= set(ocisift.tags(f"{registry.host}/acme/module"))
    assert cli("tag", f"{registry.host}/acme/module:7.2", "bad tag").code == 2


def test_a_referrer_pushed_without_a_tag_moves_no_tag(registry, tmp_path):
    (tmp_path / "app.txt").write_text("app")
    (tmp_path / "sbom.json").write_text("{}")
    repo = f"{registry.host}/acme/referred"
    app = ocisift.push(f"{repo}:latest", [str(tmp_path / "app.txt")])
    sbom = ocisift.push(repo, [str(tmp_path / "sbom.json")], artifact_type="application/spdx+json",
                        subject=f"{repo}:latest")
    assert sbom.tags == ()
    assert ocisift.resolve(f"{repo}:latest").descriptor.digest == app.descriptor.digest  # latest stayed put
    assert ocisift.tags(repo) == ["latest"]
    found = ocisift.resolve(f"{repo}:latest", Selector.build(artifact_type="application/spdx+json", referrers=True))
    assert found.descriptor.digest == sbom.descriptor.digest


def test_a_repository_that_does_not_exist_says_so(registry, cli):
    for args in (("resolve", f"{registry.host}/acme/no-such-repo:1.0"), ("tags", f"{registry.host}/acme/no-such-repo")):
        res = cli(*args, "--format", "json")
        assert res.code == 3, res.out
        assert "repository acme/no-such-repo does not exist" in res.json()["error"]["message"]


def test_one_blob_is_uploaded_once_however_many_threads_push_it(registry, monkeypatch):
    """Two uploads of one blob into one repository must not overlap (distribution 2.8 can then refuse the
    manifest with "blob unknown"): the second pusher waits for the first and skips."""
    import io
    import threading
    import time

    from ocisift._core.digest import Digest
    from ocisift._core.models import Descriptor
    from ocisift._core.reference import parse_image_name
    from ocisift._stores.registry import store as registry_store

    calls = []
    real = registry_store.upload_blob

    def slow_upload(repo, desc, stream, chunk_size):
        calls.append(desc.digest)
        time.sleep(0.3)  # long enough for the other thread to arrive meanwhile
        return real(repo, desc, stream, chunk_size)

    monkeypatch.setattr(registry_store, "upload_blob", slow_upload)
    data = b"shared config " + str(time.time()).encode()
    desc = Descriptor("application/vnd.oci.image.config.v1+json", Digest.of(data), len(data))
    store = registry_store.RegistryStore(parse_image_name(f"{registry.host}/acme/once"))
    errors = []

    def push():
        try:
            store.push(desc, io.BytesIO(data))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=push) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == [] and calls == [desc.digest] and store.exists(desc)
