"""Writing: ORAS-style push, index composition (the jq merge script as commands), tags, parallel writers."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from concurrent.futures import ThreadPoolExecutor

import pytest

import ocisift
from ocisift import LayerSelector, Selector
from ocisift._core import mediatypes as mt
from ocisift._core.models import parse_document


def test_tagless_push_then_pull_by_the_printed_reference(tmp_path, cli):
    (tmp_path / "app.yaml").write_text("replicas: 2\n")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "a.txt").write_text("a")
    res = cli("push", f"oci:{tmp_path}/out", str(tmp_path / "app.yaml") + ":application/yaml",
              str(tmp_path / "dir"), "--annotation", "com.acme.x=1", "--format", "json")
    assert res.code == 0, res.out + res.err
    body = res.json()
    assert body["reference"].startswith(f"oci:{tmp_path}/out@sha256:") and body["tags"] == []
    manifest = parse_document(ocisift.manifest(body["reference"]))
    assert [layer.title for layer in manifest.layers] == ["app.yaml", "dir"]
    assert manifest.layers[0].media_type == "application/yaml"
    assert manifest.layers[1].annotations[mt.ANNOTATION_ORAS_UNPACK] == "true"
    assert manifest.annotations["com.acme.x"] == "1"
    assert ocisift.resolve(f"oci:{tmp_path}/out").descriptor.digest == ocisift.Digest.parse(body["descriptor"]["digest"])
    ocisift.pull(body["reference"], str(tmp_path / "got"), layers=LayerSelector.build(title="app.yaml"))
    assert (tmp_path / "got" / "app.yaml").read_text() == "replicas: 2\n"
    ocisift.pull(body["reference"], str(tmp_path / "tree"), layers=LayerSelector.build(title="dir"), mode="extract")
    assert (tmp_path / "tree" / "dir" / "a.txt").read_text() == "a"


def test_directory_packing_is_reproducible(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "sub" / "f").write_text("x")
    a = ocisift.push(f"oci:{tmp_path}/one", [str(tmp_path / "d")])
    os.utime(tmp_path / "d" / "sub" / "f", (1, 1))
    b = ocisift.push(f"oci:{tmp_path}/two", [str(tmp_path / "d")])
    assert a.descriptor.digest == b.descriptor.digest


def test_compose_per_platform_layouts_that_differ_only_by_os_version(tmp_path, cli):
    """The CI flow: push each platform into its own tagless layout, compose one index, select each platform."""
    refs = {}
    for el in ("el8", "el9"):
        src = tmp_path / f"repo-{el}"
        src.mkdir()
        (src / "repomd.xml").write_text(el)
        res = cli("push", f"oci:{tmp_path}/{el}", str(src), "--platform", f"linux/arm64/v8:{el}", "--format", "json")
        refs[el] = res.json()["reference"]
    res = cli("index", "create", f"oci:{tmp_path}/merged:1.2", f"oci:{tmp_path}/el8", f"oci:{tmp_path}/el9",
              "--annotation", "org.opencontainers.image.version=1.2", "--format", "json")
    assert res.code == 0, res.out + res.err
    index = parse_document(ocisift.manifest(f"oci:{tmp_path}/merged:1.2"))
    assert [str(d.platform) for d in index.manifests] == ["linux/arm64/v8:el8", "linux/arm64/v8:el9"]
    assert index.annotations["org.opencontainers.image.version"] == "1.2"
    for el in ("el8", "el9"):
        chosen = ocisift.resolve(f"oci:{tmp_path}/merged:1.2", select=Selector.build(platform=f"linux/arm64:{el}"))
        assert str(chosen.descriptor.digest) == refs[el].rsplit("@", 1)[1]
        ocisift.pull(f"oci:{tmp_path}/merged:1.2", str(tmp_path / f"out-{el}"), mode="extract", select=Selector.build(platform=f"linux/arm64:{el}"))
        assert (tmp_path / f"out-{el}" / f"repo-{el}" / "repomd.xml").read_text() == el
    # Edit the index: add a third platform, remove the first.
    src = tmp_path / "repo-amd"
    src.mkdir()
    (src / "repomd.xml").write_text("amd")
    ocisift.push(f"oci:{tmp_path}/amd", [str(src)], platform="linux/amd64:el9")
    added = ocisift.index_add(f"oci:{tmp_path}/merged:1.2", f"oci:{tmp_path}/amd")
    assert len(parse_document(ocisift.manifest(f"oci:{tmp_path}/merged:1.2")).manifests) == 3
    removed = ocisift.index_remove(f"oci:{tmp_path}/merged:1.2", refs["el8"].rsplit("@", 1)[1])
    plats = {str(d.platform) for d in parse_document(ocisift.manifest(f"oci:{tmp_path}/merged:1.2")).manifests}
    assert plats == {"linux/arm64/v8:el9", "linux/amd64:el9"}
    assert added.descriptor.digest != removed.descriptor.digest


def test_platform_of_overrides_config(tmp_path):
    (tmp_path / "f").write_text("x")
    ocisift.push(f"oci:{tmp_path}/a", [str(tmp_path / "f")])
    ocisift.index_create(f"oci:{tmp_path}/m:1", [f"oci:{tmp_path}/a"],
                         platform_of={f"oci:{tmp_path}/a": "linux/riscv64"})
    assert ocisift.resolve(f"oci:{tmp_path}/m:1", select=Selector.build(platform="linux/riscv64")).descriptor.media_type == mt.OCI_MANIFEST


def test_tag_and_resolve(sample, cli):
    digest = cli("resolve", f"oci:{sample}:7.2").out.strip()
    assert cli("tag", f"oci:{sample}@{digest}", "stable", "v7").code == 0
    assert cli("resolve", f"oci:{sample}:stable").out.strip() == digest
    assert cli("resolve", f"oci:{sample}:v7").out.strip() == digest
    assert cli("resolve", f"oci:{sample}:7.2").out.strip() == digest  # the old tag stays


def test_referrers_in_a_layout(tmp_path, cli):
    (tmp_path / "bin").write_text("binary")
    (tmp_path / "sbom.json").write_text('{"spdxVersion": "SPDX-2.3"}')
    image = ocisift.push(f"oci:{tmp_path}/lay:1.0", [str(tmp_path / "bin")], platform="linux/amd64")
    sbom = ocisift.push(f"oci:{tmp_path}/lay", [str(tmp_path / "sbom.json")], artifact_type="application/spdx+json",
                        subject=f"oci:{tmp_path}/lay:1.0")
    store = ocisift.open(f"oci:{tmp_path}/lay")
    assert [d.digest for d in store.referrers(image.descriptor)] == [sbom.descriptor.digest]
    chosen = ocisift.resolve(f"oci:{tmp_path}/lay:1.0", select=Selector.build(artifact_type="application/spdx+json", referrers=True))
    assert chosen.descriptor.digest == sbom.descriptor.digest
    tree = cli("tree", f"oci:{tmp_path}/lay:1.0", "--referrers", "--format", "json").json()
    assert tree[0]["referrers"][0]["digest"] == str(sbom.descriptor.digest)


def _push_one(args):
    layout, n, file = args
    return subprocess.run([sys.executable, "-m", "ocisift", "push", f"oci:{layout}:t{n}", file,
                           "--annotation", f"n={n}"], capture_output=True, text=True, timeout=120)


def test_sixteen_parallel_processes_keep_every_tag(tmp_path):
    layout = tmp_path / "shared"
    files = []
    for n in range(16):
        f = tmp_path / f"f{n}.txt"
        f.write_text(f"payload {n}\n" * 1000)
        files.append(str(f))
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(_push_one, [(str(layout), n, files[n]) for n in range(16)]))
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results if r.returncode]
    index = json.loads((layout / "index.json").read_text())
    names = sorted(m["annotations"][mt.ANNOTATION_REF_NAME] for m in index["manifests"])
    assert names == sorted(f"t{n}" for n in range(16))
    for n in range(16):
        ocisift.pull(f"oci:{layout}:t{n}", str(tmp_path / f"o{n}"))
        assert (tmp_path / f"o{n}" / f"f{n}.txt").read_text() == f"payload {n}\n" * 1000
    assert not [p for p in (layout / "blobs" / "sha256").iterdir() if p.name.startswith(".tmp")]


def test_push_errors(tmp_path, cli):
    assert cli("push", f"oci:{tmp_path}/x", str(tmp_path / "missing")).code == 3
    assert cli("push", f"oci:{tmp_path}/x").code == 2
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "same").write_text("1")
    (tmp_path / "b" / "same").write_text("2")
    res = cli("push", f"oci:{tmp_path}/x", str(tmp_path / "a" / "same"), str(tmp_path / "b" / "same"))
    assert res.code == 2 and "titled" in res.err
    with pytest.raises(ocisift.UsageError):
        ocisift.push(f"oci:{tmp_path}/x", [str(tmp_path / "a" / "same")], tags=["bad tag"])


def test_untag_and_gc_keep_everything_reachable(sample, cli, tmp_path):
    before = {p.name for p in (tmp_path / "sample" / "blobs" / "sha256").iterdir()}
    digests = {ref: cli("resolve", f"oci:{sample}:{ref}").out.strip() for ref in ("1.2", "7.2")}
    dry = cli("gc", f"oci:{sample}", "--grace", "0", "--format", "json").json()
    assert dry["removed"] == []  # everything in the sample is reachable
    assert cli("untag", f"oci:{sample}:7.2").code == 0
    assert cli("resolve", f"oci:{sample}:7.2").code == 3
    assert cli("resolve", f"oci:{sample}/example.com/acme/modules/redis:7.2").code == 3
    young = cli("gc", f"oci:{sample}", "--format", "json").json()
    assert young["removed"] == []  # within the grace period nothing goes
    res = cli("gc", f"oci:{sample}", "--grace", "0", "--format", "json").json()
    assert str(digests["7.2"]) in res["removed"] and len(res["removed"]) == 4  # manifest, config, two layers
    after = {p.name for p in (tmp_path / "sample" / "blobs" / "sha256").iterdir()}
    assert before - after == {d.split(":")[1] for d in res["removed"]}
    # Everything still named resolves and pulls completely.
    ocisift.pull(f"oci:{sample}:1.2", str(tmp_path / "o"), mode="extract", select=Selector.build(platform="linux/arm64:el9"))
    ocisift.pull(f"oci:{sample}:example.com/acme/product:2.0", str(tmp_path / "p"), select=Selector.build(artifact_type="application/spdx+json"))
    assert cli("untag", f"oci:{sample}:7.2").code == 3


def test_annotation_file_in_the_oras_format(tmp_path):
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "ann.json").write_text(json.dumps({
        "$manifest": {"org.opencontainers.image.source": "https://example.invalid/repo"},
        "a.txt": {"com.acme.kind": "text"},
    }))
    pushed = ocisift.push(f"oci:{tmp_path}/x:1", [str(tmp_path / "a.txt")], annotation_file=str(tmp_path / "ann.json"),
                          annotations=["com.acme.build=7"])
    m = parse_document(ocisift.manifest(pushed.reference))
    assert m.annotations == {"com.acme.build": "7", "org.opencontainers.image.source": "https://example.invalid/repo"}
    assert m.layers[0].annotations == {mt.ANNOTATION_TITLE: "a.txt", "com.acme.kind": "text"}
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(ocisift.UsageError):
        ocisift.push(f"oci:{tmp_path}/x:2", [str(tmp_path / "a.txt")], annotation_file=str(tmp_path / "bad.json"))


def test_push_into_an_archive_with_several_tags(tmp_path):
    (tmp_path / "a.txt").write_text("a")
    archive = tmp_path / "out.tar"
    pushed = ocisift.push(f"oci-archive:{archive}:1.0", [str(tmp_path / "a.txt")], tags=["latest"])
    assert pushed.tags == ("1.0", "latest")
    for tag in ("1.0", "latest"):
        assert ocisift.resolve(f"oci-archive:{archive}:{tag}").descriptor.digest == pushed.descriptor.digest
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".ocisift")] == []


@pytest.mark.parametrize("args", [
    ("gc", "oci:{tmp}/typo"),
    ("gc", "oci-archive:{tmp}/missing.tar"),
    ("tag", "oci:{tmp}/typo:a", "b"),
    ("untag", "oci:{tmp}/typo:a"),
    ("untag", "oci-archive:{tmp}/missing.tar:a"),
    ("delete", "oci:{tmp}/typo@sha256:" + "0" * 64),
    ("index", "remove", "oci:{tmp}/typo:a", "sha256:" + "0" * 64),
], ids=lambda a: " ".join(a[:2]))
def test_commands_that_edit_content_never_create_a_layout(tmp_path, cli, args):
    res = cli(*[a.format(tmp=tmp_path) for a in args], "--format", "json")
    assert res.code == 3, res.out
    assert list(tmp_path.iterdir()) == []  # no typo'd layout, no new archive, no staging left


def test_archives_are_edited_in_place_atomically(sample, tmp_path, cli):
    (tmp_path / "out").mkdir()
    archive = tmp_path / "out" / "bundle.tar"
    assert cli("copy", f"oci:{sample}:7.2", f"oci-archive:{archive}:7.2").code == 0
    assert cli("tag", f"oci-archive:{archive}:7.2", "stable", "latest").code == 0
    assert set(ocisift.tags(f"oci-archive:{archive}")) >= {"7.2", "stable", "latest"}
    assert cli("untag", f"oci-archive:{archive}:latest").code == 0
    assert "latest" not in ocisift.tags(f"oci-archive:{archive}")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["bundle.tar"]  # staging gone
    # gc keeps the blobs' ages through the rewrite: an unreachable old blob goes, the reachable ones stay.
    assert cli("untag", f"oci-archive:{archive}:7.2").code == 0
    assert cli("untag", f"oci-archive:{archive}:stable").code == 0
    young = cli("gc", f"oci-archive:{archive}", "--format", "json").json()
    assert young["removed"] == []  # written seconds ago: within the grace period
    old = cli("gc", f"oci-archive:{archive}", "--grace", "0", "--format", "json").json()
    assert len(old["removed"]) == 4  # the module's manifest, config and two layers


def test_delete_refuses_a_manifest_an_index_still_lists(sample, cli):
    child = cli("resolve", f"oci:{sample}:1.2", "--platform", "linux/amd64:el8").out.strip()
    res = cli("delete", f"oci:{sample}@{child}", "--format", "json")
    assert res.code == 1 and "index remove" in res.json()["error"]["message"]
    assert cli("resolve", f"oci:{sample}@{child}").code == 0  # nothing was deleted
    top = cli("resolve", f"oci:{sample}:7.2").out.strip()
    deleted = cli("delete", f"oci:{sample}@{top}")
    assert deleted.code == 0 and f"ocisift gc oci:{sample}" in deleted.err  # says what drops the blobs
    assert cli("resolve", f"oci:{sample}:7.2").code == 3
    swept = cli("gc", f"oci:{sample}", "--grace", "0", "--format", "json").json()
    assert len(swept["removed"]) == 3  # its config and layers, once gc runs


@pytest.mark.parametrize("mask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750)])
def test_what_is_written_gets_the_users_modes(sample, tmp_path, mask, file_mode, dir_mode):
    """As skopeo writes them: files 0666 and directories 0777 under the umask; only staging is private."""
    import stat

    def mode(path):
        return stat.S_IMODE(os.stat(path).st_mode)

    old = os.umask(mask)
    try:
        ocisift.copy(f"oci:{sample}:7.2", f"oci:{tmp_path}/layout:7.2")
        ocisift.copy(f"oci:{sample}:7.2", f"oci-archive:{tmp_path}/bundle.tar:7.2")
        ocisift.pull(f"oci:{sample}:7.2", str(tmp_path / "files"), layers=LayerSelector.build(all=True))
        ocisift.pull(f"oci:{sample}:7.2", str(tmp_path / "tree"), mode="extract-all")
    finally:
        os.umask(old)
    layout = tmp_path / "layout"
    assert mode(layout) == dir_mode and mode(layout / "blobs" / "sha256") == dir_mode
    for name in ("oci-layout", "index.json"):
        assert mode(layout / name) == file_mode, name
    assert {mode(p) for p in (layout / "blobs" / "sha256").iterdir()} == {file_mode}
    assert mode(tmp_path / "bundle.tar") == file_mode
    assert mode(tmp_path / "files") == dir_mode and {mode(p) for p in (tmp_path / "files").iterdir()} == {file_mode}
    assert mode(tmp_path / "tree") == dir_mode and mode(tmp_path / "tree" / "cue.mod") == dir_mode
    assert mode(tmp_path / "tree" / "timoni.cue") == file_mode
    assert not list(tmp_path.glob(".ocisift-*"))  # no staging left


def test_index_add_and_remove_rewrite_an_archive(tmp_path):
    for el in ("el8", "el9"):
        d = tmp_path / el
        d.mkdir()
        (d / "repo.txt").write_text(el)
        ocisift.push(f"oci:{tmp_path}/{el}", [str(d)], platform=f"linux/amd64:{el}")
    archive = tmp_path / "out" / "merged.tar"
    ocisift.index_create(f"oci-archive:{archive}:1.2", [f"oci:{tmp_path}/el8"])
    added = ocisift.index_add(f"oci-archive:{archive}:1.2", f"oci:{tmp_path}/el9")
    assert ocisift.resolve(f"oci-archive:{archive}:1.2").descriptor.digest == added.descriptor.digest
    for el in ("el8", "el9"):
        assert ocisift.resolve(f"oci-archive:{archive}:1.2", Selector.build(platform=f"linux/amd64:{el}"))
    el8 = ocisift.resolve(f"oci-archive:{archive}:1.2", Selector.build(platform="linux/amd64:el8")).descriptor.digest
    removed = ocisift.index_remove(f"oci-archive:{archive}:1.2", str(el8))
    assert len(parse_document(ocisift.manifest(f"oci-archive:{archive}:1.2")).manifests) == 1
    assert removed.tags == ("1.2",)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["merged.tar"]


def test_rewriting_an_archive_keeps_members_that_are_symlinks(sample, tmp_path):
    """Some writers link index.json to another member; a rewrite must read through the link, not drop it."""
    src = tmp_path / "plain.tar"
    ocisift.copy(f"oci:{sample}:1.2", f"oci-archive:{src}:1.2")
    linked = tmp_path / "out" / "linked.tar"
    linked.parent.mkdir()
    with tarfile.open(src) as old, tarfile.open(linked, "w") as new:
        for member in old.getmembers():
            data = old.extractfile(member).read() if member.isfile() else None
            if member.name == "index.json":
                member.name = "real-index.json"
            new.addfile(member, io.BytesIO(data) if data is not None else None)
        link = tarfile.TarInfo("index.json")
        link.type, link.linkname = tarfile.SYMTYPE, "real-index.json"
        new.addfile(link)
    assert ocisift.tags(f"oci-archive:{linked}") == ["1.2"]
    ocisift.tag(f"oci-archive:{linked}:1.2", ["extra"])
    ocisift.copy(f"oci:{sample}:7.2", f"oci-archive:{linked}:new")
    assert set(ocisift.tags(f"oci-archive:{linked}")) == {"1.2", "extra", "new"}
