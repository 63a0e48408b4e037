"""Content other tools write, built exactly as their format documents (and code) say, cited per fixture."""

from __future__ import annotations

import json
import os

import ocisift
from conftest import artifact, entry, push_index, write_index
from ocisift import Selector
from ocisift._core import mediatypes as mt
from ocisift._core.models import parse_document
from ocisift._core.platform import Platform


def ctr_export_one_platform(layout):
    """What `ctr export --platform linux/amd64` writes (containerd images/archive/exporter.go): the image's
    whole index blob, only the manifests (and their blobs) of the platforms asked for, and an index.json
    entry for the index named by io.containerd.image.name (full name) and org.opencontainers.image.ref.name
    (the tag). Docker 25+ `docker save` from the containerd image store writes the same.
    """
    amd = artifact(layout, {"bin/app": b"amd64\n"}, media_type=mt.OCI_LAYER_GZIP, platform=Platform("linux", "amd64"))
    arm = artifact(layout, {"bin/app": b"arm64\n"}, media_type=mt.OCI_LAYER_GZIP, platform=Platform("linux", "arm64"))
    index = push_index(layout, [amd, arm])
    arm_doc = parse_document(layout.fetch_manifest(arm), arm.media_type)
    for gone in (arm, *arm_doc.blobs):  # the other platform's manifest, config and layer are not exported
        os.unlink(layout.directory.path(f"blobs/sha256/{gone.digest.hex}"))
    write_index(layout, [entry(index, io__containerd__image__name="docker.io/library/app:1.0",
                               org__opencontainers__image__ref__name="1.0")])
    return index, amd, arm


def test_absent_siblings_select_what_is_there_and_say_what_is_not(layout, tmp_path, cli):
    _, amd, arm = ctr_export_one_platform(layout)
    ref = f"oci:{layout.path}/app:1.0"
    assert ocisift.resolve(ref, Selector.build(platform="linux/amd64")).descriptor.digest == amd.digest
    result = ocisift.pull(ref, str(tmp_path / "amd"), Selector.build(platform="linux/amd64"), mode="extract")
    assert (tmp_path / "amd" / "bin" / "app").read_bytes() == b"amd64\n"
    assert result.resolved.descriptor.digest == amd.digest
    # No selector: the only manifest present is the only candidate (an absent one cannot be pulled).
    assert ocisift.pull(ref, str(tmp_path / "any"), mode="extract").resolved.descriptor.digest == amd.digest
    res = cli("pull", ref, "--platform", "linux/arm64", "-o", str(tmp_path / "arm"), "--format", "json")
    assert res.code == 3 and "absent" in res.json()["error"]["message"] and str(arm.digest) in res.json()["error"]["message"]
    tree = cli("tree", ref, "--format", "json")
    assert tree.code == 0
    kinds = {c["digest"]: c["kind"] for c in tree.json()[0]["manifests"]}
    assert kinds == {str(amd.digest): "manifest", str(arm.digest): "absent"}
    text = cli("tree", ref)
    assert text.code == 0 and "absent" in text.out and "not held in this store" in text.out
    whole = cli("copy", ref, f"oci:{tmp_path}/copy:1.0", "--format", "json")
    assert whole.code == 3 and "--platform" in whole.json()["error"]["message"]
    one = cli("copy", ref, f"oci:{tmp_path}/copy:1.0", "--platform", "linux/amd64", "--format", "json")
    assert one.code == 0 and one.json()["digest"] == str(amd.digest)
    gc = cli("gc", f"oci:{layout.path}", "--grace", "0", "--format", "json")
    assert gc.code == 0 and gc.json()["removed"] == []


def test_manifests_null_in_index_json_reads_as_empty(layout, cli):
    with open(layout.directory.path("index.json"), "w") as fh:
        json.dump({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": None}, fh)  # as Docker 25 writes
    assert cli("tags", f"oci:{layout.path}").out == ""
    res = cli("tree", f"oci:{layout.path}")
    assert res.code == 0 and "(empty)" in res.out
    assert cli("resolve", f"oci:{layout.path}:x").code == 3
    artifact(layout, {"a": b"a"})  # and a writer adds to it
    assert cli("push", f"oci:{layout.path}:v1", "--config", str(layout.directory.path("oci-layout")) + ":application/json").code == 0
    assert "v1" in ocisift.tags(f"oci:{layout.path}")


def regclient_referrer(layout, subject, artifact_type: str):
    """A referrer as regclient records it in a layout: the referrers tag schema of the distribution spec
    (an image index tagged `sha256-<subject hex>` listing each referrer with its artifactType), in
    index.json; the referrer's own manifest carries `subject`."""
    sbom = artifact(layout, layers=[(b'{"spdx": true}', "application/spdx+json", {})], subject=subject,
                    artifact_type=artifact_type)
    listed = push_index(layout, [ocisift.Descriptor(sbom.media_type, sbom.digest, sbom.size,
                                                    artifact_type=artifact_type)])
    return sbom, listed


def test_referrers_of_an_index_under_the_fallback_tag_as_regclient_writes_them(layout, cli):
    amd = artifact(layout, {"a": b"amd"}, platform=Platform("linux", "amd64"))
    arm = artifact(layout, {"a": b"arm"}, platform=Platform("linux", "arm64"))
    index = push_index(layout, [amd, arm])
    sbom, listed = regclient_referrer(layout, index, "application/spdx+json")
    fallback = f"sha256-{index.digest.hex}"
    write_index(layout, [entry(index, org__opencontainers__image__ref__name="v1"),
                         entry(listed, org__opencontainers__image__ref__name=fallback)])
    (top,) = ocisift.tree(f"oci:{layout.path}:v1", referrers=True)
    assert [(r.descriptor.digest, r.artifact_type) for r in top.referrers] == [(sbom.digest, "application/spdx+json")]
    chosen = ocisift.resolve(f"oci:{layout.path}:v1", Selector.build(artifact_type="application/spdx+json",
                                                                     referrers=True))
    assert chosen.descriptor.digest == sbom.digest
    assert ocisift.tags(f"oci:{layout.path}") == ["v1"]  # the fallback tag lists referrers, it names nothing
    assert cli("tags", f"oci:{layout.path}", "--all").out.split() == ["v1", fallback]


def test_a_document_that_disagrees_with_its_descriptor_is_refused_by_every_command(layout, tmp_path, cli):
    image = artifact(layout, {"a": b"a"})
    claimed = ocisift.Descriptor(mt.OCI_INDEX, image.digest, image.size)  # index.json says index; it is an image
    write_index(layout, [entry(claimed, org__opencontainers__image__ref__name="v1")])
    ref = f"oci:{layout.path}:v1"
    for args in (("resolve", ref), ("tree", ref), ("manifest", "get", ref), ("pull", ref, "-o", str(tmp_path / "o")),
                 ("copy", ref, f"oci:{tmp_path}/c:v1")):
        res = cli(*args, "--format", "json")
        assert res.code == 5, (args, res.out)
        assert "descriptor says" in res.json()["error"]["message"]
    assert not (tmp_path / "o").exists()


def test_copy_carries_only_the_destination_names(sample, tmp_path, cli):
    src = f"oci:{sample}/example.com/acme/modules/redis:7.2"  # named by containerd name and short tag
    assert cli("copy", src, f"oci:{tmp_path}/unnamed").code == 0
    (plain,) = json.loads((tmp_path / "unnamed" / "index.json").read_text())["manifests"]
    assert "annotations" not in plain
    assert cli("copy", src, f"oci:{tmp_path}/named:mine").code == 0
    (named,) = json.loads((tmp_path / "named" / "index.json").read_text())["manifests"]
    assert named["annotations"] == {mt.ANNOTATION_REF_NAME: "mine"}
    # A full name as the destination (the layout exists, so the path splits where it is on disk).
    assert cli("copy", src, f"oci:{tmp_path}/named/docker.io/library/redis:7").code == 0
    entries = json.loads((tmp_path / "named" / "index.json").read_text())["manifests"]
    assert [e["annotations"] for e in entries] == [
        {mt.ANNOTATION_REF_NAME: "mine"},
        {mt.ANNOTATION_REF_NAME: "docker.io/library/redis:7", mt.ANNOTATION_CONTAINERD_NAME: "docker.io/library/redis:7"}]
