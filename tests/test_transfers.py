"""Transfers against a real registry, through the command line as users run it.

Concurrent pulls and copies (blob GETs overlap, yet the result is what one at a
time gives: layers are applied in manifest order, whiteouts included), a corrupt
later layer (exit 5, nothing written, no staging left), deletes on a registry and
in a layout, `blob get`, and Ctrl-C in the middle of a slow transfer (exit 130 at
once, nothing left behind, the destination as it was).

The registry is CNCF distribution (Debian's docker-registry) on loopback; the
content is pushed into it with skopeo; the misbehaving proxy of faults.py sits in
front of it where a test needs delays, wrong bytes or a slow body. Every command
runs as a subprocess with a timeout, and every server stops however a test ends.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import artifact
from faults import Faults, proxy
from ocisift._core import mediatypes as mt
from ocisift._core.models import Descriptor
from ocisift._demo import make_tar, push_manifest
from ocisift._stores.layout import LayoutStore
from registry import Registry, run_registry

pytestmark = pytest.mark.skipif(shutil.which("docker-registry") is None or shutil.which("skopeo") is None,
                                reason="docker-registry and skopeo are needed")

SRC = Path(__file__).resolve().parents[1] / "src"
REPO = "acme/layers"
PAYLOAD = 1536 * 1024  # random, so a layer stays this big once gzipped: slow enough to trickle
ACCEPT = ", ".join([mt.OCI_MANIFEST, mt.OCI_INDEX, mt.DOCKER_MANIFEST, mt.DOCKER_LIST])
TEMPORARY = (".ocisift-", ".tmp-")  # prefixes of staging, scratch and temporary files (staging.py, blob.py, layout.py)


# -- the content ------------------------------------------------------------------------------------


def _payload(seed: int) -> bytes:
    """Incompressible, reproducible bytes (so every run builds the same digests)."""
    out = bytearray()
    block = hashlib.sha512(f"payload-{seed}".encode()).digest()
    while len(out) < PAYLOAD:
        block = hashlib.sha512(block).digest()
        out += block
    return bytes(out[:PAYLOAD])


# Four image layers. Applied in order they leave EXPECTED; applied in any other order, something else:
# a.txt is deleted by layer 1 and added again by layer 2, b.txt replaced by 1 and deleted by 3, dir/
# made opaque by 2, big0.bin deleted by 3.
LAYERS: list[dict[str, bytes]] = [
    {"etc/a.txt": b"a from layer 0\n", "etc/b.txt": b"b from layer 0\n", "dir/old1": b"old 1\n",
     "dir/old2": b"old 2\n", "data/big0.bin": _payload(0)},
    {"etc/.wh.a.txt": b"", "etc/b.txt": b"b from layer 1\n", "data/big1.bin": _payload(1)},
    {"dir/.wh..wh..opq": b"", "dir/new": b"new in layer 2\n", "etc/a.txt": b"a again, from layer 2\n",
     "data/big2.bin": _payload(2)},
    {"etc/.wh.b.txt": b"", "data/.wh.big0.bin": b"", "etc/c.txt": b"c from layer 3\n", "data/big3.bin": _payload(3)},
]
EXPECTED: dict[str, bytes] = {
    "etc/a.txt": b"a again, from layer 2\n", "etc/c.txt": b"c from layer 3\n", "dir/new": b"new in layer 2\n",
    "data/big1.bin": _payload(1), "data/big2.bin": _payload(2), "data/big3.bin": _payload(3),
}


@dataclass
class Image:
    reg: Registry
    layout: Path  # the source layout: tags v1 (the four layers) and small
    manifest: Descriptor
    config: Descriptor
    layers: list[Descriptor]
    small: Descriptor  # the manifest tagged small: one tiny layer
    blobs: dict[str, bytes] = field(default_factory=dict)  # digest -> bytes, config and layers


def _image_config(diff_ids: list[str]) -> bytes:
    return json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                       "rootfs": {"type": "layers", "diff_ids": diff_ids}}, separators=(",", ":")).encode()


def build_layout(path: Path) -> tuple[Descriptor, Descriptor, list[Descriptor], Descriptor]:
    store = LayoutStore.create(str(path))
    raws = [make_tar(files, compression="none") for files in LAYERS]
    layers: list[tuple[bytes, str, dict[str, str]]] = [
        (gzip.compress(raw, compresslevel=1, mtime=0), mt.OCI_LAYER_GZIP, {}) for raw in raws]
    config = _image_config([f"sha256:{hashlib.sha256(raw).hexdigest()}" for raw in raws])
    manifest = push_manifest(store, layers, config=(config, mt.OCI_CONFIG))
    store.tag(manifest, "v1")
    small = push_manifest(store, [(make_tar({"hello.txt": b"hello\n"}), mt.OCI_LAYER_GZIP, {})])
    store.tag(small, "small")
    doc = json.loads(store.fetch_manifest(manifest))
    config_desc = Descriptor.from_json(doc["config"])
    layer_descs = [Descriptor.from_json(d) for d in doc["layers"]]
    return manifest, config_desc, layer_descs, small


def skopeo_push(layout: Path, tag: str, dest: str) -> None:
    subprocess.run(["skopeo", "copy", "--dest-tls-verify=false", f"oci:{layout}:{tag}", f"docker://{dest}"],
                   check=True, capture_output=True, timeout=120)


def registry_digest(host: str, repo: str, ident: str) -> str | None:
    """What the registry itself says a tag or digest names (HEAD, Docker-Content-Digest); None for 404."""
    req = urllib.request.Request(f"http://{host}/v2/{repo}/manifests/{ident}", method="HEAD",
                                 headers={"Accept": ACCEPT})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return str(resp.headers["Docker-Content-Digest"])
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def tag_on_registry(host: str, repo: str, source: str, tag: str) -> None:
    """A second tag for the same manifest: its exact bytes PUT under the new tag."""
    get = urllib.request.Request(f"http://{host}/v2/{repo}/manifests/{source}", headers={"Accept": ACCEPT})
    with urllib.request.urlopen(get, timeout=10) as resp:
        raw, media_type = resp.read(), resp.headers["Content-Type"]
    put = urllib.request.Request(f"http://{host}/v2/{repo}/manifests/{tag}", data=raw, method="PUT",
                                 headers={"Content-Type": media_type})
    with urllib.request.urlopen(put, timeout=10) as resp:
        assert resp.status == 201


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> Iterator[Image]:
    work = tmp_path_factory.mktemp("transfers")
    manifest, config, layers, small = build_layout(work / "layout")
    blobs = {str(d.digest): (work / "layout" / "blobs" / "sha256" / d.digest.hex).read_bytes() for d in [config, *layers]}
    with run_registry(work / "registry") as reg:
        skopeo_push(work / "layout", "v1", f"{reg.host}/{REPO}:v1")
        # skopeo keeps the manifest's bytes: the registry names the digest the layout does
        assert registry_digest(reg.host, REPO, "v1") == str(manifest.digest)
        yield Image(reg, work / "layout", manifest, config, layers, small, blobs)


@pytest.fixture
def repo_with_small(image: Image, request) -> str:
    """A repository of its own (deletes change it) holding the small image as `one`."""
    repo = "acme/" + re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:60].strip("-")
    skopeo_push(image.layout, "small", f"{image.reg.host}/{repo}:one")
    return repo


# -- running ocisift ------------------------------------------------------------------------------------


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    """The environment of each command: this checkout's source, and no credentials from the user's config."""
    config = tmp_path / "docker-config"
    config.mkdir()
    out = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    out.update({"DOCKER_CONFIG": str(config), "PYTHONPATH": os.pathsep.join(
        p for p in (str(SRC), os.environ.get("PYTHONPATH")) if p)})
    out.pop("OCISIFT_DEBUG", None)
    return out


Run = Callable[..., subprocess.CompletedProcess[bytes]]


@pytest.fixture
def ocisift(env: dict[str, str]) -> Run:
    def run(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([sys.executable, "-m", "ocisift", *args], capture_output=True, env=env,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    return run


def text(run: subprocess.CompletedProcess[bytes]) -> str:
    return run.stdout.decode(errors="replace") + run.stderr.decode(errors="replace")


# -- looking at what is on disk ----------------------------------------------------------------------------


def snapshot(root: Path) -> dict[str, tuple[object, ...]]:
    """Every entry below root: kind, permission bits, and the bytes of files or the target of links."""
    out: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath, name)
            rel = path.relative_to(root).as_posix()
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                out[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                out[rel] = ("dir", stat.S_IMODE(info.st_mode))
            else:
                out[rel] = ("file", stat.S_IMODE(info.st_mode), path.read_bytes())
    return out


def files_of(snap: dict[str, tuple[object, ...]]) -> dict[str, object]:
    return {rel: entry[2] for rel, entry in snap.items() if entry[0] == "file"}


def leftovers(root: Path) -> list[str]:
    """Staging, scratch and temporary entries anywhere below root."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            if name.startswith(TEMPORARY):
                found.append(str(Path(dirpath, name).relative_to(root)))
    return found


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- 1. concurrency ---------------------------------------------------------------------------------------


def test_a_concurrent_pull_overlaps_blob_gets_and_unpacks_what_one_at_a_time_does(image, tmp_path, ocisift):
    outputs, in_flight, listed = {}, {}, {}
    for n in (1, 4):
        faults = Faults(delay_blobs=0.4)  # each blob GET waits: requests made at once are seen at once
        out = tmp_path / f"out-{n}"
        with proxy(image.reg.host, faults) as front:
            run = ocisift("pull", f"{front}/{REPO}:v1", "-o", str(out), "--mode", "extract-all",
                          "--concurrency", str(n), "--format", "json")
        assert run.returncode == 0, text(run)
        outputs[n], in_flight[n] = snapshot(out), faults.max_blob_gets_in_flight
        listed[n] = sorted(json.loads(run.stdout)["files"])
        layer_gets = [p for m, p, _ in faults.requests if m == "GET" and "/blobs/" in p
                      and any(p.endswith(str(d.digest)) for d in image.layers)]
        assert len(layer_gets) == len(image.layers), layer_gets  # each layer fetched once, none twice
        assert leftovers(tmp_path) == []
    assert in_flight[1] == 1, in_flight
    assert 2 <= in_flight[4] <= 4, in_flight  # overlapping, and never more than --concurrency
    assert outputs[4] == outputs[1]
    assert files_of(outputs[4]) == EXPECTED  # whiteouts and replacements applied in manifest order
    assert not any(".wh." in rel for rel in outputs[4])
    assert listed[4] == listed[1] == sorted(EXPECTED)


def test_a_concurrent_copy_to_a_layout_writes_what_one_at_a_time_writes(image, tmp_path, ocisift):
    layouts, in_flight = {}, {}
    for n in (1, 4):
        faults = Faults(delay_blobs=0.4)
        dest = tmp_path / f"layout-{n}"
        with proxy(image.reg.host, faults) as front:
            run = ocisift("copy", f"{front}/{REPO}:v1", f"oci:{dest}:v1", "--concurrency", str(n), "--format", "json")
        assert run.returncode == 0, text(run)
        assert json.loads(run.stdout)["digest"] == str(image.manifest.digest)
        layouts[n], in_flight[n] = snapshot(dest), faults.max_blob_gets_in_flight
    assert in_flight[1] == 1, in_flight
    assert 2 <= in_flight[4] <= 4, in_flight
    assert layouts[4] == layouts[1]
    blobs = {rel.rsplit("/", 1)[1]: entry[2] for rel, entry in layouts[4].items()
             if rel.startswith("blobs/sha256/") and entry[0] == "file"}
    wanted = {d.digest.hex for d in [image.manifest, image.config, *image.layers]}
    assert set(blobs) == wanted
    for hexdigest, data in blobs.items():
        assert isinstance(data, bytes) and hashlib.sha256(data).hexdigest() == hexdigest
    for digest, data in image.blobs.items():
        assert blobs[digest.split(":")[1]] == data
    index = json.loads((tmp_path / "layout-4" / "index.json").read_bytes())
    assert [(m["digest"], m["annotations"][mt.ANNOTATION_REF_NAME]) for m in index["manifests"]] == \
        [(str(image.manifest.digest), "v1")]
    assert leftovers(tmp_path) == []


# -- 2. a corrupt later layer -------------------------------------------------------------------------------


@pytest.mark.parametrize("concurrency", [1, 4])
@pytest.mark.parametrize("existing", [False, True], ids=["new-output", "existing-output"])
def test_a_corrupt_third_layer_fails_with_nothing_written_and_no_staging_left(image, tmp_path, ocisift,
                                                                              concurrency, existing):
    bad = image.layers[2]  # the third of four
    parent = tmp_path / "parent"
    parent.mkdir()
    out = parent / "out"
    if existing:
        (out / "etc").mkdir(parents=True)
        (out / "etc" / "a.txt").write_bytes(b"mine\n")
        (out / "keep.txt").write_bytes(b"keep\n")
    before = snapshot(parent)
    faults = Faults(wrong_bytes_in=str(bad.digest))
    with proxy(image.reg.host, faults) as front:
        run = ocisift("pull", f"{front}/{REPO}:v1", "-o", str(out), "--mode", "extract-all",
                      "--concurrency", str(concurrency), "--format", "json")
    assert any(m == "GET" and p.endswith(str(bad.digest)) for m, p, _ in faults.requests), "the bad layer was served"
    assert run.returncode == 5, text(run)
    error = json.loads(run.stdout)["error"]
    assert error["kind"] == "integrity" and str(bad.digest) in error["message"], error
    assert snapshot(parent) == before  # no output (or the output as it was), and nothing beside it
    assert leftovers(tmp_path) == []


# -- 3. deletes -------------------------------------------------------------------------------------------------


def test_untag_removes_the_name_and_keeps_the_image(image, repo_with_small, ocisift):
    host, repo = image.reg.host, repo_with_small
    digest = str(image.small.digest)
    assert registry_digest(host, repo, "one") == digest
    run = ocisift("untag", f"{host}/{repo}:one")
    assert run.returncode == 0, text(run)
    assert run.stdout.decode().strip() == "removed 1 entry"
    assert registry_digest(host, repo, "one") is None
    assert registry_digest(host, repo, digest) == digest  # the image stays, by digest
    gone = ocisift("resolve", f"{host}/{repo}:one")
    assert gone.returncode == 3, text(gone)


def test_untag_of_one_of_two_tags_leaves_the_other_and_the_image(image, repo_with_small, ocisift):
    """store.py's untag on distribution 2.x, which cannot delete a tag alone: the tag is moved to a
    throw-away manifest of its own, and that manifest is deleted by digest (regclient's way)."""
    host, repo = image.reg.host, repo_with_small
    tag_on_registry(host, repo, "one", "two")
    digest = str(image.small.digest)
    before = len(image.reg.log_text())
    run = ocisift("untag", f"{host}/{repo}:one")
    assert run.returncode == 0, text(run)
    assert registry_digest(host, repo, "one") is None
    assert registry_digest(host, repo, "two") == digest and registry_digest(host, repo, digest) == digest
    assert ocisift("tags", f"{host}/{repo}").stdout.decode().split() == ["two"]
    asked = re.findall(r'"(PUT|DELETE) (/v2/[^ "]*) HTTP', image.reg.log_text()[before:])
    writes = [(m, p.split("?")[0].rsplit("/", 1)[1]) for m, p in asked if "/blobs/" not in p]
    # the tag's own DELETE (refused), the probe whether deletes are on (a digest nobody has), the
    # throw-away manifest under the tag, and its DELETE by digest: never the image's digest
    assert [m for m, _ in writes] == ["DELETE", "DELETE", "PUT", "DELETE"], writes
    assert writes[0][1] == "one" and writes[2][1] == "one"
    assert writes[3][1].startswith("sha256:") and writes[3][1] != digest
    assert writes[1][1] == "sha256:" + "0" * 64


def test_delete_by_digest_removes_the_manifest(image, repo_with_small, ocisift):
    host, repo = image.reg.host, repo_with_small
    tag_on_registry(host, repo, "one", "two")
    digest = str(image.small.digest)
    run = ocisift("delete", f"{host}/{repo}@{digest}")
    assert run.returncode == 0, text(run)
    assert run.stdout.decode().strip() == f"deleted {digest}"
    assert "gc" not in run.stderr.decode()  # a registry collects its own blobs
    assert registry_digest(host, repo, digest) is None
    assert registry_digest(host, repo, "one") is None and registry_digest(host, repo, "two") is None
    for ref in (f"{host}/{repo}@{digest}", f"{host}/{repo}:one"):
        gone = ocisift("resolve", ref)
        assert gone.returncode == 3, (ref, text(gone))
    again = ocisift("delete", f"{host}/{repo}@{digest}")
    assert again.returncode == 3, text(again)


def test_a_registry_with_deletes_disabled_says_so(image, tmp_path, ocisift):
    with run_registry(tmp_path / "no-deletes", deletes=False) as reg:
        skopeo_push(image.layout, "small", f"{reg.host}/acme/kept:one")
        digest = str(image.small.digest)
        for args in (("delete", f"{reg.host}/acme/kept@{digest}"), ("untag", f"{reg.host}/acme/kept:one")):
            run = ocisift(*args)
            assert run.returncode == 1, (args, text(run))  # "other": the registry's policy, not the request
            message = run.stderr.decode()
            assert f"{reg.host} does not allow deletes (405)" in message, message
            assert "storage.delete.enabled: true" in message, message
            assert "internal error" not in message
        assert registry_digest(reg.host, "acme/kept", "one") == digest  # still there
        still = ocisift("resolve", f"{reg.host}/acme/kept:one")
        assert still.returncode == 0 and still.stdout.decode().strip() == digest, text(still)


def _layout_copy(image: Image, tmp_path: Path) -> Path:
    dest = tmp_path / "layout"
    shutil.copytree(image.layout, dest)
    return dest


def test_delete_in_a_layout_removes_the_entry_and_leaves_its_blobs_to_gc(image, tmp_path, ocisift):
    layout = _layout_copy(image, tmp_path)
    digest = image.manifest.digest
    run = ocisift("delete", f"oci:{layout}@{digest}")
    assert run.returncode == 0, text(run)
    assert run.stdout.decode().strip() == f"deleted {digest}"
    index = json.loads((layout / "index.json").read_bytes())
    assert [m["digest"] for m in index["manifests"]] == [str(image.small.digest)]  # the other entry stays
    blobs = layout / "blobs" / "sha256"
    assert not (blobs / digest.hex).exists()
    own = {d.digest.hex for d in [image.config, *image.layers]}
    assert own <= {p.name for p in blobs.iterdir()}  # what only it used stays until gc
    assert ocisift("resolve", f"oci:{layout}:v1").returncode == 3
    gc = ocisift("gc", f"oci:{layout}", "--grace", "0", "--format", "json")
    assert gc.returncode == 0, text(gc)
    assert {d.split(":")[1] for d in json.loads(gc.stdout)["removed"]} == own
    assert ocisift("resolve", f"oci:{layout}:small").returncode == 0


def test_delete_in_a_layout_says_that_gc_is_needed(image, tmp_path, ocisift):
    """A layout keeps the blobs of what was deleted: the output says so, with the gc command (JSON: blobsNeedGc)."""
    layout = _layout_copy(image, tmp_path)
    run = ocisift("delete", f"oci:{layout}@{image.manifest.digest}")
    assert run.returncode == 0, text(run)
    assert run.stderr.decode().strip() == f"its blobs stay until: ocisift gc oci:{layout}", text(run)
    as_json = ocisift("delete", f"oci:{layout}@{image.small.digest}", "--format", "json")
    assert as_json.returncode == 0, text(as_json)
    deleted = json.loads(as_json.stdout)["deleted"]
    assert deleted["digest"] == str(image.small.digest) and deleted["blobsNeedGc"] is True, deleted
    assert json.loads((layout / "index.json").read_bytes())["manifests"] == []


# -- 4. blob get ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["registry", "layout"])
def test_blob_get_to_a_file_and_to_stdout(image, tmp_path, ocisift, where):
    layer = image.layers[1]
    base = f"{image.reg.host}/{REPO}" if where == "registry" else f"oci:{image.layout}"
    folder = tmp_path / "got"
    folder.mkdir()
    target = folder / "layer.tar.gz"
    run = ocisift("blob", "get", f"{base}@{layer.digest}", "-o", str(target))
    assert run.returncode == 0, text(run)
    assert target.read_bytes() == image.blobs[str(layer.digest)]
    assert sha256_file(target) == layer.digest.hex
    assert f"wrote {layer.digest}" in run.stdout.decode() and str(target) in run.stdout.decode()
    assert [p.name for p in folder.iterdir()] == ["layer.tar.gz"]
    summary = ocisift("blob", "get", f"{base}@{layer.digest}", "-o", str(target), "--format", "json")
    assert summary.returncode == 0, text(summary)
    assert json.loads(summary.stdout)["descriptor"]["digest"] == str(layer.digest)
    assert json.loads(summary.stdout)["descriptor"]["size"] == layer.size
    piped = ocisift("blob", "get", f"{base}@{image.config.digest}", "-o", "-")
    assert piped.returncode == 0, text(piped)
    assert piped.stdout == image.blobs[str(image.config.digest)]  # exactly the bytes, nothing more
    big = ocisift("blob", "get", f"{base}@{layer.digest}", "-o", "-")
    assert big.returncode == 0 and big.stdout == image.blobs[str(layer.digest)], text(big)[-2000:]


@pytest.mark.parametrize("existing", [False, True], ids=["new-file", "existing-file"])
def test_blob_get_of_corrupted_bytes_is_exit_5_with_no_file_left(image, tmp_path, ocisift, existing):
    layer = image.layers[0]
    folder = tmp_path / "got"
    folder.mkdir()
    target = folder / "layer.tar.gz"
    if existing:
        target.write_bytes(b"what was there\n")
    before = snapshot(folder)
    faults = Faults(wrong_bytes_in=str(layer.digest), head_length=True)  # blob get HEADs the blob for its size
    with proxy(image.reg.host, faults) as front:
        run = ocisift("blob", "get", f"{front}/{REPO}@{layer.digest}", "-o", str(target))
        streamed = ocisift("blob", "get", f"{front}/{REPO}@{layer.digest}", "-o", "-")
    assert run.returncode == 5, text(run)
    assert f"content does not match digest {layer.digest}" in run.stderr.decode(), text(run)
    assert snapshot(folder) == before  # no file (or the old one, whole), and no temporary file beside it
    assert leftovers(tmp_path) == []
    assert streamed.returncode == 5, streamed.stderr.decode()  # bytes went out; the status says they were wrong
    assert f"content does not match digest {layer.digest}" in streamed.stderr.decode()
    assert len(streamed.stdout) == layer.size and streamed.stdout != image.blobs[str(layer.digest)]


@pytest.mark.parametrize("where", ["registry", "layout"])
def test_blob_get_of_a_missing_digest_is_exit_3_and_of_a_tag_exit_2(image, tmp_path, ocisift, where):
    base = f"{image.reg.host}/{REPO}" if where == "registry" else f"oci:{image.layout}"
    absent = "sha256:" + hashlib.sha256(b"nobody pushed this").hexdigest()
    target = tmp_path / "blob"
    missing = ocisift("blob", "get", f"{base}@{absent}", "-o", str(target))
    assert missing.returncode == 3, text(missing)
    assert absent in missing.stderr.decode()
    by_tag = ocisift("blob", "get", f"{base}:v1", "-o", str(target))
    assert by_tag.returncode == 2, text(by_tag)
    assert "pinned by a blob's digest" in by_tag.stderr.decode()
    assert not target.exists() and leftovers(tmp_path) == []


# -- 5. Ctrl-C -------------------------------------------------------------------------------------------------------


def wait_for(condition: Callable[[], bool], timeout: float, what: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"the command ended ({proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(0.02)


@dataclass
class Interrupted:
    code: int
    after_signal: float  # seconds from the (first) signal to the process's end
    stderr: str
    signum: int = signal.SIGINT


def interrupt(args: list[str], env: dict[str, str], tmp_path: Path, started: Callable[[], bool],
              signals: tuple[int, ...] = (signal.SIGINT,), gap: float = 0.05,
              ignore: tuple[int, ...] = ()) -> Interrupted:
    """Run ocisift, wait until `started`, send `signals` (`gap` seconds apart), and wait (bounded) for the
    process to end. `ignore`: signals the process starts with ignored (as nohup starts it for SIGHUP)."""
    err_path = tmp_path / "stderr.txt"

    def ignoring() -> None:
        # The child starts as a shell would start it: the stop signals at their defaults, whatever this test
        # run inherited (under nohup SIGHUP comes ignored, and ocisift rightly keeps an ignored signal ignored).
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN if signum in ignore else signal.SIG_DFL)

    with open(err_path, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "ocisift", *args], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err, env=env, preexec_fn=ignoring)
        try:
            wait_for(started, 30, "the transfer started", proc)
            sent = time.monotonic()
            for n, signum in enumerate(signals):
                if n:
                    time.sleep(gap)
                if proc.poll() is None:
                    proc.send_signal(signum)
            code = proc.wait(timeout=60 if ignore else 15)
            after = time.monotonic() - sent
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    return Interrupted(code, after, err_path.read_text(errors="replace"), signals[0])


CONNECTIONS = pytest.mark.parametrize("keep_alive", [False, True], ids=["connection-close", "keep-alive"])


def slow(keep_alive: bool) -> Faults:
    """64 KiB every quarter second: each layer takes about six seconds. Served in HTTP/1.0 (each response
    ends its connection, as with any server answering `Connection: close`) or in HTTP/1.1 keeping it open."""
    return Faults(trickle_blobs=0.25, keep_alive=keep_alive)


def interrupt_findings(result: Interrupted) -> list[str]:
    """Exit 128 + the signal's number (130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP), within two
    seconds, saying so, with no traceback."""
    found = []
    name = signal.Signals(result.signum).name
    if result.code != 128 + result.signum:
        found.append(f"exit code {result.code}, not {128 + result.signum} ({name})")
    if result.after_signal >= 2.0:
        found.append(f"ended {result.after_signal:.2f} s after {name}")
    if "interrupted" not in result.stderr or "Traceback" in result.stderr or "internal error" in result.stderr:
        found.append(f"stderr {result.stderr[-500:]!r}")
    if result.signum != signal.SIGINT and name not in result.stderr:
        found.append(f"stderr does not name {name}: {result.stderr[-500:]!r}")
    return found


@CONNECTIONS
@pytest.mark.parametrize("concurrency", [1, 4])
def test_ctrl_c_during_a_pull_exits_130_at_once_and_leaves_nothing(image, tmp_path, env, concurrency, keep_alive):
    parent = tmp_path / "parent"
    (parent / "out").mkdir(parents=True)
    (parent / "out" / "mine.txt").write_bytes(b"mine\n")
    before = snapshot(parent)
    faults = slow(keep_alive)

    def started() -> bool:
        # an existing output is staged inside itself (a new one beside it)
        staged = any(p.name.startswith(".ocisift-staging-") for p in (parent / "out").iterdir())
        return staged and faults.trickled >= 4 * 64 * 1024

    (tmp_path / "run").mkdir()
    with proxy(image.reg.host, faults) as front:
        result = interrupt(["pull", f"{front}/{REPO}:v1", "-o", str(parent / "out"), "--mode", "extract-all",
                            "--concurrency", str(concurrency)], env, tmp_path / "run", started)
    problems = interrupt_findings(result)
    if snapshot(parent) != before:
        problems.append(f"the output's parent changed: {sorted(set(snapshot(parent)) ^ set(before))}")
    if leftovers(tmp_path):
        problems.append(f"left behind: {leftovers(tmp_path)}")
    assert not problems, problems


@CONNECTIONS
@pytest.mark.parametrize("concurrency", [1, 4])
def test_ctrl_c_during_a_copy_into_a_layout_leaves_it_as_it_was(image, tmp_path, env, concurrency, keep_alive):
    layout = tmp_path / "layout"
    store = LayoutStore.create(str(layout))
    store.tag(artifact(store, {"before.txt": b"there before\n"}), "before")
    index_before = (layout / "index.json").read_bytes()
    before = snapshot(layout)
    faults = slow(keep_alive)
    blobs = layout / "blobs" / "sha256"

    def started() -> bool:
        writing = any(p.name.startswith(".tmp-") for p in blobs.iterdir())
        return writing and faults.trickled >= 4 * 64 * 1024

    (tmp_path / "run").mkdir()
    with proxy(image.reg.host, faults) as front:
        result = interrupt(["copy", f"{front}/{REPO}:v1", f"oci:{layout}:v1", "--concurrency", str(concurrency)],
                           env, tmp_path / "run", started)
    problems = interrupt_findings(result)
    if (layout / "index.json").read_bytes() != index_before:
        problems.append("index.json changed")
    temporary = [p.name for p in blobs.iterdir() if p.name.startswith(".")]
    if temporary:
        problems.append(f"temporary blob files: {temporary}")
    after = snapshot(layout)
    for rel, entry in after.items():
        if rel not in before:  # a blob that arrived whole before the signal may stay: complete and verified
            whole = rel.startswith("blobs/sha256/") and entry[0] == "file" and isinstance(entry[2], bytes) \
                and hashlib.sha256(entry[2]).hexdigest() == rel.rsplit("/", 1)[1]
            if not whole and not rel.startswith("blobs/sha256/."):
                problems.append(f"new entry that is no whole blob: {rel}")
        elif entry != before[rel]:
            problems.append(f"changed: {rel}")
    if not set(before) <= set(after):
        problems.append(f"gone: {sorted(set(before) - set(after))}")
    if (blobs / image.manifest.digest.hex).exists():
        problems.append("the manifest was written")
    if leftovers(tmp_path):
        problems.append(f"left behind: {leftovers(tmp_path)}")
    assert not problems, problems


# -- 6. SIGTERM and SIGHUP: what Ctrl-C does ---------------------------------------------------------------------

STOPPING = pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])


def _pull_args(front: str, out: Path, concurrency: int) -> list[str]:
    return ["pull", f"{front}/{REPO}:v1", "-o", str(out), "--mode", "extract-all", "--concurrency", str(concurrency)]


def _pull_interrupted(image: Image, tmp_path: Path, env: dict[str, str], signals: tuple[int, ...],
                      concurrency: int = 4, keep_alive: bool = True) -> list[str]:
    """A pull behind the trickling proxy, stopped by `signals` once staging holds bytes; what went wrong."""
    parent = tmp_path / "parent"
    (parent / "out").mkdir(parents=True)
    (parent / "out" / "mine.txt").write_bytes(b"mine\n")
    before = snapshot(parent)
    faults = slow(keep_alive)

    def started() -> bool:
        # an existing output is staged inside itself (a new one beside it)
        staged = any(p.name.startswith(".ocisift-staging-") for p in (parent / "out").iterdir())
        return staged and faults.trickled >= 4 * 64 * 1024

    (tmp_path / "run").mkdir()
    with proxy(image.reg.host, faults) as front:
        result = interrupt(_pull_args(front, parent / "out", concurrency), env, tmp_path / "run", started, signals)
    problems = interrupt_findings(result)
    if snapshot(parent) != before:
        problems.append(f"the output's parent changed: {sorted(set(snapshot(parent)) ^ set(before))}")
    if leftovers(tmp_path):
        problems.append(f"left behind: {leftovers(tmp_path)}")
    return problems


@STOPPING
@pytest.mark.parametrize("concurrency", [1, 4])
def test_a_signal_during_a_pull_exits_128_plus_its_number_at_once_and_leaves_nothing(image, tmp_path, env, signum,
                                                                                     concurrency):
    problems = _pull_interrupted(image, tmp_path, env, (signum,), concurrency)
    assert not problems, problems


@pytest.mark.parametrize("signals", [(signal.SIGTERM, signal.SIGTERM), (signal.SIGINT, signal.SIGTERM),
                                     (signal.SIGHUP, signal.SIGINT, signal.SIGTERM)],
                         ids=["TERM-TERM", "INT-TERM", "HUP-INT-TERM"])
def test_more_signals_while_the_first_unwinds_still_leave_nothing_and_the_first_names_the_exit(
        image, tmp_path, env, signals):
    """systemd and docker stop send SIGTERM and may send more; people press Ctrl-C twice. A second signal
    must not cut the clean-up short (a KeyboardInterrupt inside a finally leaves staging)."""
    problems = _pull_interrupted(image, tmp_path, env, signals)
    assert not problems, problems


def _layout_with_one_tag(tmp_path: Path) -> tuple[Path, bytes, dict[str, tuple[object, ...]]]:
    layout = tmp_path / "layout"
    store = LayoutStore.create(str(layout))
    store.tag(artifact(store, {"before.txt": b"there before\n"}), "before")
    return layout, (layout / "index.json").read_bytes(), snapshot(layout)


@STOPPING
def test_a_signal_during_a_copy_into_a_layout_leaves_it_as_it_was_and_its_lock_free(image, tmp_path, env, ocisift,
                                                                                   signum):
    layout, index_before, before = _layout_with_one_tag(tmp_path)
    blobs = layout / "blobs" / "sha256"
    faults = slow(True)

    def started() -> bool:
        writing = any(p.name.startswith(".tmp-") for p in blobs.iterdir())
        return writing and faults.trickled >= 4 * 64 * 1024

    (tmp_path / "run").mkdir()
    with proxy(image.reg.host, faults) as front:
        result = interrupt(["copy", f"{front}/{REPO}:v1", f"oci:{layout}:v1", "--concurrency", "4"],
                           env, tmp_path / "run", started, (signum,))
    problems = interrupt_findings(result)
    if (layout / "index.json").read_bytes() != index_before:
        problems.append("index.json changed")
    temporary = [p.name for p in blobs.iterdir() if p.name.startswith(".")]
    if temporary:
        problems.append(f"temporary blob files: {temporary}")
    for rel, entry in snapshot(layout).items():
        if rel not in before and not (rel.startswith("blobs/sha256/") and entry[0] == "file"
                                      and hashlib.sha256(entry[2]).hexdigest() == rel.rsplit("/", 1)[1]):  # type: ignore[arg-type]
            problems.append(f"new entry that is no whole blob: {rel}")
    if leftovers(tmp_path):
        problems.append(f"left behind: {leftovers(tmp_path)}")
    assert not problems, problems
    # The lock is free at once, and a second writer gets on with it.
    # Taken the way every layout writer takes it: an exclusive, non-blocking flock on the lock file.
    lock_fd = os.open(layout / ".index.json.lock", os.O_RDWR)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError if the killed run still held it
        fcntl.flock(lock_fd, fcntl.LOCK_UN)
    finally:
        os.close(lock_fd)
    started_at = time.monotonic()
    second = ocisift("copy", f"{image.reg.host}/{REPO}:v1", f"oci:{layout}:v1", timeout=60)
    assert second.returncode == 0, text(second)
    assert time.monotonic() - started_at < 30
    entries = json.loads((layout / "index.json").read_bytes())["manifests"]
    assert str(image.manifest.digest) in {e["digest"] for e in entries}


@STOPPING
def test_a_signal_during_a_copy_into_an_archive_leaves_no_archive_and_no_staging(image, tmp_path, env, signum):
    archive = tmp_path / "out" / "bundle.tar"
    archive.parent.mkdir()
    faults = slow(True)

    def started() -> bool:
        staged = [p for p in archive.parent.iterdir() if p.name.startswith(".ocisift-archive-")]
        return bool(staged) and faults.trickled >= 4 * 64 * 1024

    (tmp_path / "run").mkdir()
    with proxy(image.reg.host, faults) as front:
        result = interrupt(["copy", f"{front}/{REPO}:v1", f"oci-archive:{archive}:v1"], env, tmp_path / "run",
                           started, (signum,))
    problems = interrupt_findings(result)
    if list(archive.parent.iterdir()):
        problems.append(f"left in the archive's directory: {sorted(p.name for p in archive.parent.iterdir())}")
    assert not problems, problems


def test_a_sighup_the_caller_ignores_stays_ignored_and_the_pull_completes(image, tmp_path, env):
    """`nohup ocisift pull …` is meant to outlive its terminal: SIGHUP ignored at start stays ignored."""
    out = tmp_path / "out"
    faults = slow(True)

    def started() -> bool:
        return faults.trickled >= 4 * 64 * 1024

    (tmp_path / "run").mkdir()
    with proxy(image.reg.host, faults) as front:
        result = interrupt(_pull_args(front, out, 4), env, tmp_path / "run", started, (signal.SIGHUP,),
                           ignore=(signal.SIGHUP,))
    assert result.code == 0, result.stderr
    assert {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()} == EXPECTED
    assert not leftovers(tmp_path)


@STOPPING
def test_a_signal_during_a_sync_exits_128_plus_its_number_and_leaves_the_mirror_as_it_was(image, tmp_path, env,
                                                                                        signum):
    layout, index_before, _ = _layout_with_one_tag(tmp_path)
    faults = slow(True)
    (tmp_path / "run").mkdir()
    with proxy(image.reg.host, faults) as front:
        spec = tmp_path / "mirror.yaml"
        spec.write_text(f"images:\n  - source: {front}/{REPO}\n    tags: [v1]\n    destination: oci:{layout}\n")
        result = interrupt(["sync", str(spec)], env, tmp_path / "run", lambda: faults.trickled >= 4 * 64 * 1024,
                           (signum,))
    problems = interrupt_findings(result)
    if (layout / "index.json").read_bytes() != index_before:
        problems.append("index.json changed")
    if leftovers(tmp_path):
        problems.append(f"left behind: {leftovers(tmp_path)}")
    assert not problems, problems
