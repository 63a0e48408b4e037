"""Selection over plain data: the walk needs only a loader, so no store is involved."""

from __future__ import annotations

import json

import pytest

from ocisift._core import mediatypes as mt
from ocisift._core.digest import Digest
from ocisift._core.errors import AmbiguousError, MalformedDocument, NotFoundError
from ocisift._core.models import Descriptor, parse_document
from ocisift._core.platform import Platform
from ocisift._graph.select import Selector, select
from ocisift._graph.walk import walk


class Graph:
    def __init__(self):
        self.docs: dict[str, bytes] = {}

    def add(self, obj: dict) -> Descriptor:
        raw = json.dumps(obj).encode()
        d = Digest.of(raw)
        self.docs[str(d)] = raw
        return Descriptor(obj["mediaType"], d, len(raw))

    def manifest(self, artifact_type=None, annotations=None, config_type=mt.OCI_EMPTY) -> Descriptor:
        obj = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
               "config": {"mediaType": config_type, "digest": "sha256:" + "0" * 64, "size": 2}, "layers": []}
        if artifact_type:
            obj["artifactType"] = artifact_type
        if annotations:
            obj["annotations"] = annotations
        return self.add(obj)

    def index(self, children: list[Descriptor], media_type=mt.OCI_INDEX) -> Descriptor:
        return self.add({"schemaVersion": 2, "mediaType": media_type, "manifests": [c.to_json() for c in children]})

    def load(self, desc: Descriptor):
        return parse_document(self.docs[str(desc.digest)], desc.media_type)


def with_platform(d: Descriptor, text: str, **ann) -> Descriptor:
    return Descriptor(d.media_type, d.digest, d.size, ann, Platform.parse(text), d.artifact_type)


def test_nested_indexes_and_docker_lists_are_walked():
    g = Graph()
    a = g.manifest(artifact_type="application/a")
    b = g.manifest(artifact_type="application/b")
    inner = g.index([b], media_type=mt.DOCKER_LIST)
    middle = g.index([inner])
    root = g.index([a, middle])
    visited = [d.digest for d, _, _ in walk(root, g.load)]
    assert visited == [root.digest, a.digest, middle.digest, inner.digest, b.digest]
    chosen = select([root], g.load, Selector.build(artifact_type="application/b"))
    assert chosen.descriptor.digest == b.digest
    assert [p.digest for p in chosen.path] == [root.digest, middle.digest, inner.digest]


def test_platforms_differing_only_by_os_version():
    g = Graph()
    el8 = with_platform(g.manifest(), "linux/arm64/v8:el8")
    el9 = with_platform(g.manifest(annotations={"x": "9"}), "linux/arm64/v8:el9")
    root = g.index([el8, el9])
    assert select([root], g.load, Selector.build("linux/arm64:el9")).descriptor.digest == el9.digest
    assert select([root], g.load, Selector.build("linux/arm64/v8:el8")).descriptor.digest == el8.digest
    with pytest.raises(AmbiguousError) as info:
        select([root], g.load, Selector.build("linux/arm64"))
    assert {c["platform"] for c in info.value.candidates} == {"linux/arm64/v8:el8", "linux/arm64/v8:el9"}
    assert info.value.exit_code == 4


def test_none_lists_what_the_graph_holds():
    g = Graph()
    root = g.index([with_platform(g.manifest(), "linux/amd64")])
    with pytest.raises(NotFoundError) as info:
        select([root], g.load, Selector.build("linux/s390x"))
    assert info.value.exit_code == 3
    assert "linux/amd64" in info.value.message
    assert info.value.candidates[0]["platform"] == "linux/amd64"


def test_first_takes_graph_order_only_when_asked():
    g = Graph()
    a, b = g.manifest(artifact_type="t"), g.manifest(artifact_type="t", annotations={"n": "2"})
    root = g.index([a, b])
    with pytest.raises(AmbiguousError):
        select([root], g.load, Selector.build(artifact_type="t"))
    assert select([root], g.load, Selector.build(artifact_type="t", first=True)).descriptor.digest == a.digest


def test_annotation_globs_and_presence():
    g = Graph()
    a = g.manifest(annotations={"env": "production", "team": "x"})
    b = g.manifest(annotations={"env": "staging"})
    root = g.index([a, b])
    assert select([root], g.load, Selector.build(annotations=["env=prod*"])).descriptor.digest == a.digest
    assert select([root], g.load, Selector.build(annotations=["team"])).descriptor.digest == a.digest
    with pytest.raises(NotFoundError):
        select([root], g.load, Selector.build(annotations=["env=prod*", "team=y"]))


def test_artifact_type_glob_and_config_media_type_fallback():
    g = Graph()
    helm = g.manifest(config_type="application/vnd.cncf.helm.config.v1+json")
    sbom = g.manifest(artifact_type="application/spdx+json")
    root = g.index([helm, sbom])
    assert select([root], g.load, Selector.build(artifact_type="application/vnd.cncf.helm.*")).descriptor.digest == helm.digest
    assert select([root], g.load, Selector.build(media_type=mt.OCI_MANIFEST, artifact_type="*spdx*")).descriptor.digest == sbom.digest


def test_config_platform_used_when_descriptor_has_none():
    g = Graph()
    a, b = g.manifest(annotations={"n": "a"}), g.manifest(annotations={"n": "b"})
    root = g.index([a, b])
    platforms = {str(a.digest): Platform.parse("linux/amd64"), str(b.digest): Platform.parse("linux/arm64")}

    def from_config(manifest):
        return platforms[str(Digest.of(manifest.raw))]

    chosen = select([root], g.load, Selector.build("linux/arm64"), config_platform=from_config)
    assert chosen.descriptor.digest == b.digest


def test_same_leaf_reached_twice_is_one_match():
    g = Graph()
    leaf = with_platform(g.manifest(), "linux/amd64")
    root1 = g.index([leaf])
    # A layout listing the index and the image it contains (the tagless case).
    chosen = select([root1, leaf], g.load, Selector.build("linux/amd64"))
    assert chosen.descriptor.digest == leaf.digest


def test_cycle_and_depth_guards():
    g = Graph()
    # A self-referencing index cannot be built with real digests, so fake the loader.
    fake = Descriptor(mt.OCI_INDEX, Digest.of(b"x"), 1)
    looping = parse_document(json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX,
                                         "manifests": [fake.to_json()]}).encode())
    with pytest.raises(MalformedDocument, match="cycle"):
        list(walk(fake, lambda d: looping))
    leaf = g.manifest()
    node = leaf
    for _ in range(20):
        node = g.index([node])
    with pytest.raises(MalformedDocument, match="deeper"):
        list(walk(node, g.load, max_depth=16))
    assert len(list(walk(node, g.load, max_depth=32))) == 21
