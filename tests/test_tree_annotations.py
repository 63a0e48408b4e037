"""tree shows a root's own annotations, as it shows the annotations its children are listed with.

A child is listed by its index with annotations; a root is listed by index.json with its name (or, on a
registry, with nothing), so its own `annotations` (revision, source, created…) were shown nowhere. The
text tree now puts them on the root's line beside those of its entry; `--format json` gives every
manifest and index its `ownAnnotations` beside the `annotations` it is listed with.
"""

from __future__ import annotations

import shutil

import pytest

from conftest import artifact, entry, push_index, write_index
from ocisift._core.platform import Platform

OWN = {"org.opencontainers.image.revision": "abc123", "com.acme.note": "[bold red]shout[/bold red] \x1b[2J"}


def _image_layout(layout):
    """A root manifest with its own annotations, listed in index.json with a name and one more."""
    desc = artifact(layout, {"a.txt": b"a"}, annotations=OWN)
    write_index(layout, [entry(desc, org__opencontainers__image__ref__name="v1", com__acme__entry="listed")])
    return f"oci:{layout.path}:v1"


def test_a_root_manifests_own_annotations_are_shown(layout, cli):
    ref = _image_layout(layout)
    text = cli("tree", ref)
    assert text.code == 0
    first = text.out.splitlines()[0]
    assert "org.opencontainers.image.revision=abc123" in first and "com.acme.entry=listed" in first
    assert "com.acme.note=[bold red]shout[/bold red] \\u001b[2J" in first  # data, escaped, never markup
    assert "\x1b" not in text.out
    as_json = cli("tree", ref, "--format", "json").json()[0]
    assert as_json["ownAnnotations"] == OWN
    assert as_json["annotations"] == {"org.opencontainers.image.ref.name": "v1", "com.acme.entry": "listed"}


def test_a_root_index_and_its_children(layout, cli):
    amd = artifact(layout, {"a": b"1"}, platform=Platform("linux", "amd64"), annotations={"com.acme.child": "own"})
    arm = artifact(layout, {"a": b"2"}, platform=Platform("linux", "arm64"))
    index = push_index(layout, [amd, arm], annotations={"com.acme.release": "2024.1"})
    write_index(layout, [entry(index, org__opencontainers__image__ref__name="multi")])
    tree = cli("tree", f"oci:{layout.path}:multi", "--format", "json").json()[0]
    assert tree["ownAnnotations"] == {"com.acme.release": "2024.1"}
    first, second = tree["manifests"]
    assert first["ownAnnotations"] == {"com.acme.child": "own"} and "ownAnnotations" not in second
    text = cli("tree", f"oci:{layout.path}:multi").out.splitlines()
    assert "com.acme.release=2024.1" in text[0]
    assert not any("com.acme.child=own" in line for line in text[1:])  # children: what they are listed with


def test_a_root_with_no_annotations_shows_none(layout, cli):
    desc = artifact(layout, {"a.txt": b"a"})
    write_index(layout, [entry(desc, org__opencontainers__image__ref__name="v1")])
    assert "ownAnnotations" not in cli("tree", f"oci:{layout.path}:v1", "--format", "json").json()[0]


def test_an_archive_root_shows_them_too(layout, cli, tmp_path):
    ref = _image_layout(layout)
    archive = tmp_path / "image.tar"
    assert cli("copy", ref, f"oci-archive:{archive}:v1").code == 0
    assert "org.opencontainers.image.revision=abc123" in cli("tree", f"oci-archive:{archive}:v1").out.splitlines()[0]
    assert cli("tree", f"oci-archive:{archive}:v1", "--format", "json").json()[0]["ownAnnotations"] == OWN


@pytest.mark.skipif(shutil.which("docker-registry") is None, reason="docker-registry is needed")
def test_a_registry_root_shows_them(layout, cli, tmp_path):
    """A registry lists a root with nothing: its own annotations are all there is to show."""
    from registry import run_registry

    ref = _image_layout(layout)
    with run_registry(tmp_path / "reg") as reg:
        assert cli("copy", ref, f"{reg.host}/acme/app:v1").code == 0
        first = cli("tree", f"{reg.host}/acme/app:v1").out.splitlines()[0]
        assert "org.opencontainers.image.revision=abc123" in first
        node = cli("tree", f"{reg.host}/acme/app:v1", "--format", "json").json()[0]
        assert node["ownAnnotations"] == OWN and "annotations" not in node
