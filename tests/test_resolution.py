"""The five resolution rules, on real layouts written the ways containerd, skopeo and others write them."""

from __future__ import annotations

import pytest

import ocisift
from conftest import artifact, entry, push_index, write_index
from ocisift import Selector
from ocisift._core import mediatypes as mt
from ocisift._core.errors import AmbiguousError, NotFoundError
from ocisift._core.platform import Platform

REF = "org.opencontainers.image.ref.name"
CTD = "io.containerd.image.name"


def test_rule1_digest_pins_index_entry_and_nested_child(layout):
    child = artifact(layout, platform=Platform.parse("linux/amd64"))
    idx = push_index(layout, [child])
    write_index(layout, [entry(idx)])
    assert ocisift.resolve(f"oci:{layout.path}@{idx.digest}").root.digest == idx.digest
    nested = ocisift.resolve(f"oci:{layout.path}@{child.digest}")
    assert nested.root.digest == child.digest and nested.root.media_type == mt.OCI_MANIFEST
    with pytest.raises(NotFoundError):
        ocisift.resolve(f"oci:{layout.path}@sha256:{'f' * 64}")


@pytest.mark.parametrize("written", [
    {CTD: "docker.io/library/alpine:3.16", REF: "3.16"},    # containerd / BuildKit
    {REF: "docker.io/library/alpine:3.16"},                  # full name in ref.name
    {REF: "alpine:3.16"},                                    # familiar name in ref.name
])
@pytest.mark.parametrize("asked", ["alpine:3.16", "library/alpine:3.16", "docker.io/library/alpine:3.16"])
def test_rule2_full_names_in_any_spelling(layout, written, asked):
    target = artifact(layout, annotations={"n": "alpine"})
    other = artifact(layout, annotations={"n": "other"})
    write_index(layout, [{**target.to_json(), "annotations": written},
                         {**other.to_json(), "annotations": {CTD: "docker.io/library/busybox:3.16", REF: "3.16"}}])
    assert ocisift.resolve(f"oci:{layout.path}/{asked}").root.digest == target.digest
    assert ocisift.resolve(f"oci:{layout.path}:{'docker.io/library/alpine:3.16'}").root.digest == target.digest


def test_rule2_containerd_name_wins_over_ref_name(layout):
    a = artifact(layout, annotations={"n": "a"})
    b = artifact(layout, annotations={"n": "b"})
    write_index(layout, [{**a.to_json(), "annotations": {REF: "docker.io/library/alpine:3.16"}},
                         {**b.to_json(), "annotations": {CTD: "docker.io/library/alpine:3.16"}}])
    assert ocisift.resolve(f"oci:{layout.path}/alpine:3.16").root.digest == b.digest


def test_rule2_full_name_does_not_guess_from_a_short_tag(layout):
    a = artifact(layout)
    write_index(layout, [entry(a, org__opencontainers__image__ref__name="3.16")])
    with pytest.raises(NotFoundError) as info:
        ocisift.resolve(f"oci:{layout.path}/nginx:3.16")
    assert f"oci:{layout.path}:3.16" in info.value.message


@pytest.mark.parametrize("written", [{REF: "3.16"}, {REF: "docker.io/library/alpine:3.16"},
                                     {CTD: "docker.io/library/alpine:3.16"}])
def test_rule3_short_tag(layout, written):
    a = artifact(layout)
    write_index(layout, [{**a.to_json(), "annotations": written}])
    assert ocisift.resolve(f"oci:{layout.path}:3.16").root.digest == a.digest
    with pytest.raises(NotFoundError) as info:
        ocisift.resolve(f"oci:{layout.path}:3.17")
    assert info.value.exit_code == 3


def test_rule4_tagless_single_entry(layout):
    a = artifact(layout)
    write_index(layout, [entry(a)])
    assert ocisift.resolve(f"oci:{layout.path}").root.digest == a.digest


def test_rule4_tagless_narrowed_by_selectors_with_os_version(layout):
    """The ORAS #1202 layout: several entries, no tags, one index whose platforms differ by os.version."""
    el8 = artifact(layout, {"el8.txt": b"8"}, platform=Platform.parse("linux/arm64/v8:el8"))
    el9 = artifact(layout, {"el9.txt": b"9"}, platform=Platform.parse("linux/arm64/v8:el9"))
    idx = push_index(layout, [el8, el9])
    write_index(layout, [entry(idx), entry(el8), entry(el9)])
    with pytest.raises(AmbiguousError) as info:
        ocisift.resolve(f"oci:{layout.path}")
    assert len(info.value.candidates) == 3
    assert all(c["reference"].startswith(f"oci:{layout.path}@sha256:") for c in info.value.candidates)
    chosen = ocisift.resolve(f"oci:{layout.path}", select=Selector.build(platform="linux/arm64/v8:el8"))
    assert chosen.descriptor.digest == el8.digest
    with pytest.raises(NotFoundError):
        ocisift.resolve(f"oci:{layout.path}", select=Selector.build(platform="linux/amd64"))


def test_rule4_tagless_one_index_pulls(layout, tmp_path):
    el8 = artifact(layout, {"el8.txt": b"8"}, platform=Platform.parse("linux/arm64/v8:el8"))
    el9 = artifact(layout, {"el9.txt": b"9"}, platform=Platform.parse("linux/arm64/v8:el9"))
    idx = push_index(layout, [el8, el9])
    write_index(layout, [entry(idx)])
    assert ocisift.resolve(f"oci:{layout.path}").root.digest == idx.digest
    result = ocisift.pull(f"oci:{layout.path}", str(tmp_path / "out"), mode="extract", select=Selector.build(platform="linux/arm64:el9"))
    assert (tmp_path / "out" / "el9.txt").read_bytes() == b"9"
    assert result.revision == str(el9.digest)


def test_rule5_duplicates_to_one_digest_are_one_match(layout):
    a = artifact(layout)
    b = artifact(layout, annotations={"n": "b"})
    write_index(layout, [entry(a, org__opencontainers__image__ref__name="1"),
                         {**a.to_json(), "annotations": {CTD: "docker.io/x/y:1"}}])
    assert ocisift.resolve(f"oci:{layout.path}:1").root.digest == a.digest
    write_index(layout, [entry(a, org__opencontainers__image__ref__name="docker.io/x/a:1"),
                         entry(b, org__opencontainers__image__ref__name="docker.io/x/b:1")])
    with pytest.raises(AmbiguousError) as info:
        ocisift.resolve(f"oci:{layout.path}:1")
    assert {c["digest"] for c in info.value.candidates} == {str(a.digest), str(b.digest)}
    assert ocisift.resolve(f"oci:{layout.path}/x/b:1").root.digest == b.digest


def test_resolve_without_selector_answers_the_index(sample):
    idx = ocisift.resolve(f"oci:{sample}:1.2")
    assert idx.descriptor.media_type == mt.OCI_INDEX
    leaf = ocisift.resolve(f"oci:{sample}:1.2", select=Selector.build(platform="linux/amd64:el8"))
    assert leaf.descriptor.media_type == mt.OCI_MANIFEST
    assert leaf.root.digest == idx.root.digest


def test_referrers_in_a_layout_are_selected_by_artifact_type(layout, tmp_path):
    amd = artifact(layout, {"bin": b"amd"}, platform=Platform.parse("linux/amd64"))
    arm = artifact(layout, {"bin": b"arm"}, platform=Platform.parse("linux/arm64"))
    idx = push_index(layout, [amd, arm])
    sbom_layers = [(b'{"sbom":"arm"}', "application/spdx+json", {mt.ANNOTATION_TITLE: "sbom.json"})]
    sbom = artifact(layout, layers=sbom_layers, artifact_type="application/spdx+json", subject=arm)
    write_index(layout, [entry(idx, org__opencontainers__image__ref__name="v1"), entry(sbom)])
    assert [str(d.digest) for d in layout.referrers(arm)] == [str(sbom.digest)]
    assert layout.referrers(amd) == []
    chosen = ocisift.resolve(f"oci:{layout.path}:v1", select=Selector.build(platform="linux/arm64", artifact_type="application/spdx+json", referrers=True))
    assert chosen.descriptor.digest == sbom.digest
    with pytest.raises(NotFoundError):
        ocisift.resolve(f"oci:{layout.path}:v1", select=Selector.build(platform="linux/amd64", artifact_type="application/spdx+json", referrers=True))

    ocisift.pull(f"oci:{layout.path}:v1", str(tmp_path / "sbom"),
                 select=Selector.build("linux/arm64", "application/spdx+json", referrers=True))
    assert (tmp_path / "sbom" / "sbom.json").read_bytes() == b'{"sbom":"arm"}'


def test_large_index_json_resolves(layout):
    """index.json is not a fetched manifest: a 100,000-entry layout (about 20 MiB) must still resolve."""
    a = artifact(layout)
    rows = [{"mediaType": mt.OCI_MANIFEST, "digest": "sha256:" + f"{i:064x}", "size": 1,
             "annotations": {REF: f"t{i}"}} for i in range(100_000)]
    rows[54_321] = entry(a, org__opencontainers__image__ref__name="t54321")
    write_index(layout, rows)
    assert ocisift.resolve(f"oci:{layout.path}:t54321").root.digest == a.digest
