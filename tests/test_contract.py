"""One contract, every store: the same behavioural tests over memory, layout directory, layout archive, registry.

Each store is written through its writable form and read back through its
reading form (an archive is packed, then read in place), per capability. A
store that lacks a capability must say so through `require` (exit 2, naming
the store), never pretend.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ocisift._core import mediatypes as mt
from ocisift._core.builders import manifest_bytes
from ocisift._core.digest import Digest
from ocisift._core.errors import IntegrityError, NotFoundError, UnsupportedError
from ocisift._core.meter import metering
from ocisift._core.models import Descriptor
from ocisift._core.reference import Target, parse_image_name
from ocisift._graph.naming import record_name
from ocisift._stores.archive import ArchiveReader, ArchiveWriter
from ocisift._stores.base import (
    BlobSweeper,
    Deleter,
    Finisher,
    Mounter,
    NameBatcher,
    Pusher,
    Reader,
    ReferrerIndexAdopter,
    ReferrerLister,
    ReferrerPeeker,
    RemoteReader,
    RootLister,
    RootRecorder,
    Tagger,
    TagLister,
    TagPeeker,
    Untagger,
    require,
)
from ocisift._stores.dir_transport import DirReader, DirWriter
from ocisift._stores.layout import LayoutStore
from ocisift._stores.memory import MemoryStore
from ocisift._stores.registry.store import RegistryStore
from registry import run_registry

CAPABILITIES = (RootLister, Pusher, Tagger, RootRecorder, Untagger, TagLister, ReferrerLister, Mounter, Deleter,
                Finisher, BlobSweeper, RemoteReader, TagPeeker, NameBatcher, ReferrerPeeker, ReferrerIndexAdopter)
# What each store can do: the table in ARCHITECTURE.md and in _stores/base.py, checked here.
EXPECTED = {
    "memory": {RootLister, Pusher, Tagger, RootRecorder, Untagger, TagLister, ReferrerLister, Mounter, Deleter,
               BlobSweeper, ReferrerPeeker},
    "layout": {RootLister, Pusher, Tagger, RootRecorder, Untagger, TagLister, ReferrerLister, Deleter, BlobSweeper,
               NameBatcher, ReferrerPeeker, ReferrerIndexAdopter},
    "archive-writer": {RootLister, Pusher, Tagger, RootRecorder, Untagger, TagLister, ReferrerLister, Deleter,
                       Finisher, BlobSweeper, NameBatcher, ReferrerPeeker, ReferrerIndexAdopter},
    "archive-reader": {RootLister, TagLister, ReferrerLister, ReferrerPeeker},
    "registry": {Pusher, Tagger, Untagger, TagLister, ReferrerLister, Mounter, Deleter, RemoteReader, TagPeeker,
                 ReferrerPeeker, ReferrerIndexAdopter},
    "dir-writer": {RootLister, Pusher, RootRecorder, Finisher},
    "dir-reader": {RootLister},
}
READING_KIND = {ArchiveReader: "archive-reader", DirReader: "dir-reader"}


@dataclass
class Subject:
    """A store under test: where writes go, how to read them back, how to damage a blob, a sibling to mount from."""

    kind: str
    writer: Reader
    read_back: Callable[[], Reader]
    corrupt: Callable[[Digest], None]
    sibling: Callable[[], Reader] | None = None  # another store a Mounter can mount from


def _damage(data: bytes) -> bytes:
    """Other bytes of the same length: the last digit changed (a manifest stays a manifest a registry still
    serves: that digit is a layer size), else a flipped byte."""
    out = bytearray(data)
    for i in range(len(out) - 1, -1, -1):
        c = out[i]
        if 0x30 <= c <= 0x39:
            out[i] = 0x30 + (c - 0x30 + 1) % 10
            return bytes(out)
    out[-1] ^= 0xFF
    return bytes(out)


def _flip_last_byte(path: Path, offset: int = 0, size: int | None = None) -> None:
    data = path.read_bytes()
    end = offset + (size if size is not None else len(data) - offset)
    path.write_bytes(data[:offset] + _damage(data[offset:end]) + data[end:])


@pytest.fixture(scope="module")
def registry_host(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    work = tmp_path_factory.mktemp("contract-registry")
    with run_registry(work) as reg:
        yield reg.host, work / "data" / "docker" / "registry" / "v2" / "blobs"


def _memory(tmp_path: Path, registry_host: tuple[str, Path]) -> Subject:
    store = MemoryStore("contract", registry="memory-registry")

    def corrupt(digest: Digest) -> None:
        store.blobs[digest] = _damage(store.blobs[digest])

    return Subject("memory", store, lambda: store, corrupt, lambda: MemoryStore("sibling", registry="memory-registry"))


def _layout(tmp_path: Path, registry_host: tuple[str, Path]) -> Subject:
    store = LayoutStore.create(str(tmp_path / "layout"))
    return Subject("layout", store, lambda: LayoutStore(store.path),
                   lambda d: _flip_last_byte(tmp_path / "layout" / "blobs" / d.algorithm / d.hex))


def _archive(tmp_path: Path, registry_host: tuple[str, Path]) -> Subject:
    path = tmp_path / "layout.tar"
    writer = ArchiveWriter(str(path))

    def read_back() -> Reader:
        writer.finish()
        return ArchiveReader(str(path))

    def corrupt(digest: Digest) -> None:
        with tarfile.open(path) as tar:
            m = tar.getmember(f"blobs/{digest.algorithm}/{digest.hex}")
        _flip_last_byte(path, m.offset_data, m.size)

    return Subject("archive-writer", writer, read_back, corrupt)


def _registry(tmp_path: Path, registry_host: tuple[str, Path]) -> Subject:
    host, blobs = registry_host
    repo = f"contract/{uuid.uuid4().hex[:12]}"
    store = RegistryStore(parse_image_name(f"{host}/{repo}"))

    def corrupt(digest: Digest) -> None:
        _flip_last_byte(blobs / digest.algorithm / digest.hex[:2] / digest.hex / "data")

    def sibling() -> Reader:
        return RegistryStore(parse_image_name(f"{host}/contract/{uuid.uuid4().hex[:12]}"))

    return Subject("registry", store, lambda: RegistryStore(parse_image_name(f"{host}/{repo}")), corrupt, sibling)


def _dir(tmp_path: Path, registry_host: tuple[str, Path]) -> Subject:
    path = tmp_path / "dir"
    writer = DirWriter(str(path))

    def read_back() -> Reader:
        writer.finish()
        return DirReader(str(path))

    def corrupt(digest: Digest) -> None:
        for name in (digest.hex, f"{digest.hex}.manifest.json", "manifest.json"):
            if (path / name).is_file() and (name != "manifest.json" or Digest.of((path / name).read_bytes()) == digest):
                _flip_last_byte(path / name)
                return
        raise AssertionError(f"{digest} is not in {path}")

    return Subject("dir-writer", writer, read_back, corrupt)


@pytest.fixture(params=[_memory, _layout, _archive, _registry, _dir],
                ids=["memory", "layout", "archive", "registry", "dir"])
def subject(request, tmp_path, registry_host) -> Iterator[Subject]:
    made = request.param(tmp_path, registry_host)
    try:
        yield made
    finally:
        made.writer.close()


def push_blob(store: Reader, data: bytes, media_type: str = "application/octet-stream") -> Descriptor:
    desc = Descriptor(media_type, Digest.of(data), len(data))
    require(store, Pusher, "be written to").push(desc, io.BytesIO(data))
    return desc


def name_root(store: Reader, image: Descriptor, tag: str) -> Target:
    """Name `image` as `tag` where the store has names; a store without them (dir:) holds it as its one
    root. Returns the target that finds it."""
    target = Target(tag=tag) if isinstance(store, Tagger) else Target()
    record_name(store, target, image)
    return target


def lacks(store: Reader, capability: type) -> bool:
    """True (having checked that `require` says so) when the store does not have the capability."""
    if isinstance(store, capability):
        return False
    with pytest.raises(UnsupportedError):
        require(store, capability, "do it")
    return True


def push_image(store: Reader, payload: bytes, *, subject: Descriptor | None = None,
               artifact_type: str | None = None) -> Descriptor:
    config = push_blob(store, b"{}", mt.OCI_EMPTY)
    layer = push_blob(store, payload, mt.OCI_LAYER_TAR)
    raw = manifest_bytes(config, [layer], artifact_type=artifact_type, subject=subject)
    return push_blob(store, raw, mt.OCI_MANIFEST)


# -- what each store is ------------------------------------------------------------------


def test_each_store_has_exactly_the_documented_capabilities(subject, tmp_path):
    held = {c for c in CAPABILITIES if isinstance(subject.writer, c)}
    assert held == EXPECTED[subject.kind]
    name_root(subject.writer, push_image(subject.writer, b"something to read back"), "v1")
    reading = subject.read_back()
    kind = READING_KIND.get(type(reading), subject.kind)
    assert {c for c in CAPABILITIES if isinstance(reading, c)} == EXPECTED[kind]


def test_a_missing_capability_is_a_clear_usage_error_naming_the_store(subject):
    lacking = [c for c in CAPABILITIES if not isinstance(subject.writer, c)]
    assert lacking, "every store lacks something: the table says so"
    for capability in lacking:
        with pytest.raises(UnsupportedError) as caught:
            require(subject.writer, capability, "do it")
        assert caught.value.exit_code == 2
        assert subject.writer.location in caught.value.message and "cannot do it" in caught.value.message


# -- reading and writing ---------------------------------------------------------------------


def test_push_then_fetch_returns_the_verified_bytes(subject):
    data = os.urandom(3 * 1024 * 1024 + 17)  # more than one read chunk
    desc = push_blob(subject.writer, data)
    image = push_image(subject.writer, b"payload")
    name_root(subject.writer, image, "v1")
    reading = subject.read_back()
    with reading.fetch(desc) as reader:
        assert reader.read() == data
        reader.drain()
        assert reader.verified
    assert json.loads(reading.fetch_manifest(image))["mediaType"] == mt.OCI_MANIFEST


def test_exists_before_and_after(subject):
    data = b"exists " + uuid.uuid4().bytes
    desc = Descriptor("application/octet-stream", Digest.of(data), len(data))
    assert not subject.writer.exists(desc)
    push_blob(subject.writer, data)
    image = push_image(subject.writer, data)
    name_root(subject.writer, image, "v1")
    reading = subject.read_back()
    assert reading.exists(desc) and reading.exists(image)
    absent = Descriptor(mt.OCI_MANIFEST, Digest.of(b"absent"), 6)
    assert not reading.exists(absent)


def test_resolve_by_tag_and_by_digest(subject):
    image = push_image(subject.writer, b"resolve me")
    by_name = name_root(subject.writer, image, "v1")
    reading = subject.read_back()
    assert [d.digest for d in reading.resolve(by_name)] == [image.digest]
    assert [d.digest for d in reading.resolve(Target(digest=image.digest))] == [image.digest]
    assert reading.resolve(Target(tag="no-such-tag")) == []


def test_a_tag_moves_when_it_is_given_again(subject):
    if lacks(subject.writer, Tagger):
        return
    first, second = push_image(subject.writer, b"one"), push_image(subject.writer, b"two")
    tagger = require(subject.writer, Tagger, "tag")
    tagger.tag(first, "moving")
    tagger.tag(second, "moving")
    assert [d.digest for d in subject.read_back().resolve(Target(tag="moving"))] == [second.digest]


def test_tags_are_listed(subject):
    if lacks(subject.writer, Tagger):
        return
    for tag, payload in (("a", b"A"), ("b", b"B")):
        record_name(subject.writer, Target(tag=tag), push_image(subject.writer, payload))
    tags = require(subject.read_back(), TagLister, "list tags").tags()
    assert {"a", "b"} <= set(tags)


def test_untag_where_the_store_can(subject):
    image = push_image(subject.writer, b"untag")
    name_root(subject.writer, image, "gone")
    if not isinstance(subject.writer, Untagger):
        with pytest.raises(UnsupportedError):
            require(subject.writer, Untagger, "remove tags")
        return
    assert subject.writer.untag("gone") == 1
    with pytest.raises(NotFoundError):
        subject.writer.untag("gone")
    reading = subject.read_back()
    assert reading.resolve(Target(tag="gone")) == []
    if isinstance(reading, RootLister):
        assert reading.exists(image)  # content stays until gc
    # A registry that cannot delete a tag alone (distribution 2.x) had the tag moved to a throw-away
    # manifest, deleted by digest; tests/test_transfers.py checks that the image and its other tags stay.
    assert reading.resolve(Target(digest=image.digest)) != []


def test_referrers_are_listed_with_their_artifact_type(subject):
    if lacks(subject.writer, ReferrerLister):
        return
    base = push_image(subject.writer, b"subject")
    record_name(subject.writer, Target(tag="v1"), base)
    sbom = push_image(subject.writer, b'{"spdx": 1}', subject=base, artifact_type="application/spdx+json")
    record_name(subject.writer, Target(), sbom)  # no tag: a layout records it unnamed, a registry needs nothing
    found = require(subject.read_back(), ReferrerLister, "list referrers").referrers(base)
    assert [(d.digest, d.artifact_type) for d in found] == [(sbom.digest, "application/spdx+json")]


def test_a_referrer_index_is_peeked_for_one_request_and_adopted_byte_for_byte(subject):
    """What a mirror compares at both ends of an unchanged tag: the digest of the index listing a subject's
    referrers, for at most one request, and, where the store keeps a fallback tag, another store's index
    kept as it is, so that the two ends' digests agree."""
    if lacks(subject.writer, ReferrerPeeker):
        return
    base = push_image(subject.writer, b"peeked subject " + uuid.uuid4().bytes)
    record_name(subject.writer, Target(tag="v1"), base)
    lonely = push_image(subject.writer, b"nothing refers to this " + uuid.uuid4().bytes)
    record_name(subject.writer, Target(tag="v2"), lonely)
    sbom = push_image(subject.writer, b'{"spdx": 2}', subject=base, artifact_type="application/spdx+json")
    record_name(subject.writer, Target(), sbom)
    # an index as another tool writes it (indented, its own field order): the same referrer
    theirs = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [
        {"mediaType": mt.OCI_MANIFEST, "digest": str(sbom.digest), "size": sbom.size,
         "artifactType": "application/spdx+json"}]}, indent=3).encode()
    adopted = isinstance(subject.writer, ReferrerIndexAdopter) and \
        subject.writer.adopt_referrer_index(base, theirs)
    reading = subject.read_back()
    peeker = require(reading, ReferrerPeeker, "peek at referrers")
    peeker.peek_referrers(lonely)  # a registry learns here that it has no referrers API
    with metering() as meter:
        digest = peeker.peek_referrers(base)
        assert peeker.peek_referrers(lonely) is None
    assert meter.total == (2 if subject.kind == "registry" else 0)  # one request each, and none in a layout
    raw = peeker.referrer_index(base)
    assert raw is not None and digest == Digest.of(raw)
    assert [m["digest"] for m in json.loads(raw)["manifests"]] == [str(sbom.digest)]
    assert (raw == theirs) is adopted  # kept byte for byte where adopted; else the store's own index
    assert [d.digest for d in require(reading, ReferrerLister, "list").referrers(base)] == [sbom.digest]


def test_mount_where_the_store_can(subject):
    if subject.sibling is None:
        assert not isinstance(subject.writer, Mounter)
        return
    source = subject.sibling()
    try:
        desc = push_blob(source, b"mount me " + uuid.uuid4().bytes)
        mounter = require(subject.writer, Mounter, "mount")
        assert mounter.mount(desc, source) is True
        assert subject.writer.exists(desc)
        unknown = Descriptor("application/octet-stream", Digest.of(b"never pushed"), 12)
        assert mounter.mount(unknown, source) is False
    finally:
        source.close()


def test_delete_where_the_store_can(subject):
    if lacks(subject.writer, Deleter):
        return
    image = push_image(subject.writer, b"delete me")
    record_name(subject.writer, Target(tag="doomed"), image)
    deleter = require(subject.writer, Deleter, "delete")
    deleter.delete(image)
    reading = subject.read_back()
    assert not reading.exists(image)
    assert reading.resolve(Target(tag="doomed")) == []


# -- failures ------------------------------------------------------------------------------


def test_a_missing_digest_is_not_found(subject):
    name_root(subject.writer, push_image(subject.writer, b"something"), "v1")  # an archive needs content at all
    reading = subject.read_back()
    blob = Descriptor("application/octet-stream", Digest.of(b"never"), 5)
    with pytest.raises(NotFoundError), reading.fetch(blob) as reader:
        reader.read()
    with pytest.raises(NotFoundError):
        reading.fetch_manifest(Descriptor(mt.OCI_MANIFEST, Digest.of(b"never"), 5))


def test_corrupted_bytes_are_an_integrity_error(subject):
    data = os.urandom(4096)
    desc = push_blob(subject.writer, data)
    image = push_image(subject.writer, b"manifest to corrupt")
    name_root(subject.writer, image, "v1")
    reading = subject.read_back()
    subject.corrupt(desc.digest)
    subject.corrupt(image.digest)
    with pytest.raises(IntegrityError), reading.fetch(desc) as reader:
        reader.read()
        reader.drain()
    fresh = subject.read_back() if subject.kind == "registry" else reading  # no cached manifest bytes
    with pytest.raises(IntegrityError):
        fresh.fetch_manifest(image)


def test_pushing_bytes_that_do_not_match_leaves_nothing(subject):
    claimed = Descriptor("application/octet-stream", Digest.of(b"what the descriptor says"), 24)
    with pytest.raises(IntegrityError):
        require(subject.writer, Pusher, "be written to").push(claimed, io.BytesIO(b"something else entirely"))
    assert not subject.writer.exists(claimed)


def test_docker_archives_have_exactly_their_capabilities(tmp_path):
    """Not in the behavioural suite: a docker archive holds no manifests, so one is made on reading and
    digests do not round-trip; tests/test_docker_archive.py covers it against skopeo instead."""
    from ocisift._stores.docker_archive import DockerArchiveReader, DockerArchiveWriter

    writer = DockerArchiveWriter(str(tmp_path / "d.tar"))
    try:
        assert {c for c in CAPABILITIES if isinstance(writer, c)} == {Pusher, Tagger, RootRecorder, Finisher}
        writer.finish()  # nothing staged: an archive of no images
    finally:
        writer.close()
    reader = DockerArchiveReader(str(tmp_path / "d.tar"))
    assert {c for c in CAPABILITIES if isinstance(reader, c)} == {RootLister, TagLister}
    assert reader.roots() == [] and reader.tags() == []
