"""Images that share one layout or archive keep each other however their tags compare.

Each image written under a name is recorded under its full name (`ref.name` and
`io.containerd.image.name` both `docker.io/acme/one:1`), so `acme/one:1` and `acme/two:1` live side by
side, each found by its full name and, when its tag is unique, by its short tag; an entry is replaced
only by the same full name. skopeo reads each image back by the name ocisift wrote.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess

import pytest

import ocisift
from ocisift._core import mediatypes as mt
from ocisift._core.builders import manifest_bytes
from ocisift._core.digest import Digest
from ocisift._core.models import Descriptor
from ocisift._demo import make_tar
from ocisift._stores.layout import LayoutStore
from registry import run_registry

pytestmark = pytest.mark.skipif(any(shutil.which(t) is None for t in ("docker-registry", "skopeo")),
                                reason="docker-registry and skopeo are needed")
NAMES = ("one", "two", "three")


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """acme/one:1, acme/two:1 and acme/three:1: three different images under the same tag."""
    work = tmp_path_factory.mktemp("shared")
    store = LayoutStore.create(str(work / "src"))
    with run_registry(work / "registry") as reg:
        for name in NAMES:
            store.tag(_image(store, name), name)
            ocisift.copy(f"oci:{work / 'src'}:{name}", f"{reg.host}/acme/{name}:1")
        reg.digests = {n: ocisift.resolve(f"{reg.host}/acme/{n}:1").descriptor.digest for n in NAMES}  # type: ignore[attr-defined]
        yield reg


def _image(store: LayoutStore, name: str) -> Descriptor:
    """A container image (a config whose diff_ids name its one layer) holding NAME.txt."""
    plain = make_tar({f"{name}.txt": name.encode()}, compression="none")
    layer = store.push_bytes(gzip.compress(plain, mtime=0), mt.OCI_LAYER_GZIP)
    config = store.push_bytes(json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {
        "type": "layers", "diff_ids": [str(Digest.of(plain))]}}).encode(), mt.OCI_CONFIG)
    return store.push_bytes(manifest_bytes(config, [layer]), mt.OCI_MANIFEST)


def _skopeo_digest(ref: str) -> str:
    out = subprocess.run(["skopeo", "inspect", "--raw", ref], check=True, capture_output=True, timeout=60).stdout
    return str(Digest.of(out))


def _read_back_whole(ref: str, tmp_path, name: str) -> None:
    out = tmp_path / f"read-{name}"
    ocisift.pull(ref, str(out), mode="extract-all")
    assert (out / f"{name}.txt").read_bytes() == name.encode()


@pytest.mark.parametrize("kind", ["oci", "oci-archive"])
def test_copies_of_one_tag_under_different_names_keep_each_other(registry, tmp_path, kind):
    store = tmp_path / ("bundle.tar" if kind == "oci-archive" else "layout")
    if kind == "oci":  # a full name inside a layout needs the layout to exist (else the path is all of it)
        LayoutStore.create(str(store))
    for name in NAMES[:2]:
        ocisift.copy(f"{registry.host}/acme/{name}:1", f"{kind}:{store}/acme/{name}:1")
    for name in NAMES[:2]:
        ref = f"{kind}:{store}/acme/{name}:1"
        assert ocisift.resolve(ref).descriptor.digest == registry.digests[name]
        _read_back_whole(ref, tmp_path, name)
        # skopeo finds it by the full name ocisift recorded.
        assert _skopeo_digest(f"{kind}:{store}:docker.io/acme/{name}:1") == str(registry.digests[name])
    # The short tag names two images now: a clear ambiguity listing both, never a guess.
    with pytest.raises(ocisift.AmbiguousError) as info:
        ocisift.resolve(f"{kind}:{store}:1")
    assert {c["digest"] for c in info.value.candidates} == {str(registry.digests[n]) for n in NAMES[:2]}
    # A third image: nothing the store held before is lost.
    ocisift.copy(f"{registry.host}/acme/three:1", f"{kind}:{store}/acme/three:1")
    for name in NAMES:
        assert ocisift.resolve(f"{kind}:{store}/acme/{name}:1").descriptor.digest == registry.digests[name]
    # Writing the same full name again replaces its entry only.
    ocisift.copy(f"{registry.host}/acme/two:1", f"{kind}:{store}/acme/one:1")
    assert ocisift.resolve(f"{kind}:{store}/acme/one:1").descriptor.digest == registry.digests["two"]
    assert ocisift.resolve(f"{kind}:{store}/acme/three:1").descriptor.digest == registry.digests["three"]
    assert len(ocisift.tree(f"{kind}:{store}")) == 3


def test_sync_of_one_tag_under_different_names_into_one_archive(registry, tmp_path):
    spec = tmp_path / "mirror.yaml"
    bundle = tmp_path / "bundle.tar"
    spec.write_text("images:\n" + "".join(
        f"  - source: {registry.host}/acme/{name}\n    tags: ['1']\n    destination: {dest}/acme/{name}\n"
        for name in NAMES[:2] for dest in (f"oci-archive:{bundle}", f"oci:{tmp_path}/layout")))
    LayoutStore.create(str(tmp_path / "layout"))
    result = ocisift.sync(str(spec))
    assert result.exit_code == 0, [i.error.message for i in result.outcomes if i.error]
    for name in NAMES[:2]:
        for store in (f"oci-archive:{bundle}", f"oci:{tmp_path}/layout"):
            ref = f"{store}/acme/{name}:1"
            assert ocisift.resolve(ref).descriptor.digest == registry.digests[name]
            _read_back_whole(ref, tmp_path, name)


def test_a_docker_archive_holds_full_names_and_is_never_added_to(registry, tmp_path):
    """A docker archive is written whole, as skopeo writes one (skopeo refuses to modify one, and sync does
    not write them): the image goes under its full name, and a second copy is refused with the first kept."""
    docker = tmp_path / "docker.tar"
    ocisift.copy(f"{registry.host}/acme/one:1", f"docker-archive:{docker}:acme/one:1")
    before = docker.read_bytes()
    listing = json.loads(subprocess.run(["tar", "-xOf", str(docker), "manifest.json"], check=True,
                                        capture_output=True).stdout)
    assert [item["RepoTags"] for item in listing] == [["acme/one:1"]]
    with pytest.raises(ocisift.UsageError, match="written whole"):
        ocisift.copy(f"{registry.host}/acme/two:1", f"docker-archive:{docker}:acme/two:1")
    assert docker.read_bytes() == before
    _read_back_whole(f"docker-archive:{docker}:acme/one:1", tmp_path, "one")
    subprocess.run(["skopeo", "inspect", f"docker-archive:{docker}:acme/one:1"], check=True, capture_output=True,
                   timeout=60)


def test_processes_writing_one_archive_at_once_keep_every_image(registry, tmp_path):
    """Each writer holds a lock beside the archive (`.bundle.tar.lock`, removed as it is let go) from opening
    it to packing it, so the later one starts from what the earlier one wrote instead of packing over it."""
    import sys

    bundle = tmp_path / "bundle.tar"
    runs = [subprocess.Popen([sys.executable, "-m", "ocisift", "copy", f"{registry.host}/acme/{name}:1",
                              f"oci-archive:{bundle}/acme/{name}:1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for name in NAMES]
    for run in runs:
        _, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
    for name in NAMES:
        assert ocisift.resolve(f"oci-archive:{bundle}/acme/{name}:1").descriptor.digest == registry.digests[name]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle.tar"]  # no lock file, no staging left


def test_the_archive_lock_excludes_waits_and_refuses_a_link(tmp_path):
    from ocisift._core.errors import OcisiftError, UnsafeContentError
    from ocisift._stores.safefs import FileLock

    target = tmp_path / "bundle.tar"
    held = FileLock(str(target))
    with pytest.raises(OcisiftError, match="another writer"):
        FileLock(str(target), timeout=0.2)
    held.release()
    again = FileLock(str(target), timeout=0.2)  # the name was removed as it was let go: a new lock file
    again.release()
    assert list(tmp_path.iterdir()) == []
    secret = tmp_path / "secret"
    secret.write_text("keep")
    (tmp_path / ".bundle.tar.lock").symlink_to(secret)
    with pytest.raises(UnsafeContentError):
        FileLock(str(target), timeout=0.2)
    assert secret.read_text() == "keep"
