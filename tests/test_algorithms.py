"""The graph algorithms over the in-memory store: copy, naming, composition, gc, resolution, tree."""

from __future__ import annotations

import io
import threading
import time

import pytest

from ocisift._core import mediatypes as mt
from ocisift._core.builders import build_index, manifest_bytes
from ocisift._core.digest import Digest
from ocisift._core.errors import AmbiguousError, AuthError, IntegrityError, NotFoundError, UnsupportedError, UsageError
from ocisift._core.models import Descriptor
from ocisift._core.platform import Platform
from ocisift._core.reference import Target, parse_image_name
from ocisift._graph.compose import bring_entry, write_index
from ocisift._graph.copy import GraphCopier, copy_between
from ocisift._graph.gc import collect_garbage
from ocisift._graph.naming import record_name
from ocisift._graph.resolve import resolve_in
from ocisift._graph.results import CopyResult
from ocisift._graph.select import Selector
from ocisift._graph.tree import build_tree
from ocisift._stores.archive import ArchiveReader, ArchiveWriter
from ocisift._stores.memory import MemoryStore


def blob(store: MemoryStore, data: bytes, media_type: str = mt.OCI_LAYER_TAR) -> Descriptor:
    desc = Descriptor(media_type, Digest.of(data), len(data))
    store.push(desc, io.BytesIO(data))
    return desc


def image(store: MemoryStore, *layers: bytes, config: bytes = b"{}", platform: Platform | None = None,
          subject: Descriptor | None = None, artifact_type: str | None = None) -> Descriptor:
    cfg = blob(store, config, mt.OCI_CONFIG if platform else mt.OCI_EMPTY)
    raw = manifest_bytes(cfg, [blob(store, data) for data in layers], subject=subject, artifact_type=artifact_type)
    desc = blob(store, raw, mt.OCI_MANIFEST)
    return Descriptor(desc.media_type, desc.digest, desc.size, platform=platform)


def index(store: MemoryStore, *entries: Descriptor) -> Descriptor:
    return blob(store, build_index(entries), mt.OCI_INDEX)


class CountingStore(MemoryStore):
    """Counts what the algorithms ask of it, and how many fetches run at once."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.manifest_reads: dict[Digest, int] = {}
        self.blob_reads: dict[Digest, int] = {}
        self.in_flight = 0
        self.most_in_flight = 0
        self._count_lock = threading.Lock()

    def fetch_manifest(self, desc: Descriptor) -> bytes:
        self.manifest_reads[desc.digest] = self.manifest_reads.get(desc.digest, 0) + 1
        return super().fetch_manifest(desc)

    def fetch(self, desc: Descriptor):  # type: ignore[no-untyped-def]
        with self._count_lock:
            self.blob_reads[desc.digest] = self.blob_reads.get(desc.digest, 0) + 1
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        time.sleep(0.02)  # long enough for the pool's other workers to start
        with self._count_lock:
            self.in_flight -= 1
        return super().fetch(desc)


def test_copy_moves_each_blob_once_in_one_pool_and_reads_each_manifest_once():
    src, dst = CountingStore("src"), MemoryStore("dst")
    shared = b"a layer both platforms share"
    amd = image(src, shared, b"amd only", config=b'{"os":"linux","architecture":"amd64"}',
                platform=Platform("linux", "amd64"))
    arm = image(src, shared, b"arm only", config=b'{"os":"linux","architecture":"arm64"}',
                platform=Platform("linux", "arm64"))
    root = index(src, amd, arm)
    record_name(src, Target(tag="v1"), root)
    result = copy_between(src, Target(tag="v1"), dst, Target(tag="mirror"), concurrency=4)
    # index, two manifests, two configs, three distinct layers: each counted once
    assert len(result.copied) == 8 and len(set(result.copied)) == 8
    assert result.skipped == [] and result.mounted == []
    assert all(n == 1 for n in src.blob_reads.values()) and len(src.blob_reads) == 5
    assert all(n == 1 for n in src.manifest_reads.values())
    assert src.most_in_flight > 1  # both manifests' blobs went through one pool at once
    assert result.bytes_copied == sum(len(dst.blobs[Digest.parse(d)]) for d in result.copied)
    assert [e.digest for e in dst.resolve(Target(tag="mirror"))] == [root.digest]


def test_copy_skips_a_sub_graph_whose_root_the_destination_has_without_reading_it():
    src, dst = CountingStore("src"), MemoryStore("dst")
    amd = image(src, b"amd", config=b'{"os":"linux","architecture":"amd64"}', platform=Platform("linux", "amd64"))
    arm = image(src, b"arm", config=b'{"os":"linux","architecture":"arm64"}', platform=Platform("linux", "arm64"))
    GraphCopier(src, dst, CopyResult("a", "b")).copy(amd)  # the destination already has one platform
    src.manifest_reads.clear()
    src.blob_reads.clear()
    root = index(src, amd, arm)
    result = CopyResult("src", "dst")
    GraphCopier(src, dst, result).copy(root)
    assert result.skipped == [str(amd.digest)]
    assert amd.digest not in src.manifest_reads  # not even read: its presence vouches for its content
    assert set(result.copied) == {str(root.digest), str(arm.digest)} | {
        str(b.digest) for b in _blobs(src, arm)}


def _blobs(store: MemoryStore, desc: Descriptor) -> list[Descriptor]:
    from ocisift._stores.base import load_document

    doc = load_document(store, desc)
    return list(doc.blobs)  # type: ignore[union-attr]


def test_copy_mounts_where_the_destination_can_and_counts_them_apart():
    src, dst = MemoryStore("src", registry="one"), MemoryStore("dst", registry="one")
    root = image(src, b"to be mounted")
    record_name(src, Target(tag="v1"), root)
    result = copy_between(src, Target(tag="v1"), dst, Target(tag="v1"))
    assert len(result.mounted) == 2 and result.copied == [str(root.digest)]  # blobs mounted, manifest pushed


def test_copy_carries_no_source_names():
    src, dst = MemoryStore("src"), MemoryStore("dst")
    root = image(src, b"named")
    src.tag(root, "3.16", {mt.ANNOTATION_CONTAINERD_NAME: "docker.io/library/alpine:3.16"})
    copy_between(src, Target(tag="3.16"), dst, Target())
    (entry,) = dst.roots()
    assert mt.ANNOTATION_REF_NAME not in entry.annotations
    assert mt.ANNOTATION_CONTAINERD_NAME not in entry.annotations


def test_copy_into_a_store_that_cannot_be_written_says_which_and_why(tmp_path):
    src = MemoryStore("src")
    root = image(src, b"x")
    record_name(src, Target(tag="v1"), root)
    writer = ArchiveWriter(str(tmp_path / "a.tar"))
    record_name(writer, Target(tag="seed"), image_into(writer))
    writer.finish()
    writer.close()
    reader = ArchiveReader(str(tmp_path / "a.tar"))
    with pytest.raises(UnsupportedError) as caught:
        copy_between(src, Target(tag="v1"), reader, Target(tag="v1"))
    assert caught.value.exit_code == 2
    assert f"oci-archive:{tmp_path}/a.tar cannot be written to" in caught.value.message


def image_into(store: ArchiveWriter) -> Descriptor:
    cfg = store.push_bytes(b"{}", mt.OCI_EMPTY)
    return store.push_bytes(manifest_bytes(cfg, []), mt.OCI_MANIFEST)


def test_a_corrupted_source_blob_stops_the_copy_and_nothing_of_it_lands():
    src, dst = MemoryStore("src"), MemoryStore("dst")
    root = image(src, b"good bytes")
    layer = _blobs(src, root)[1]
    src.blobs[layer.digest] = b"bad bytes!"
    with pytest.raises(IntegrityError):
        GraphCopier(src, dst, CopyResult("a", "b")).copy(root)
    assert layer.digest not in dst.blobs and root.digest not in dst.blobs  # the manifest never follows


def test_record_name_without_a_tag_records_a_root_only_where_roots_are_listed():
    store = MemoryStore()
    desc = image(store, b"unnamed")
    assert record_name(store, Target(), desc) == []
    assert [e.digest for e in store.roots()] == [desc.digest]
    assert record_name(store, Target(tag="v2"), desc, ["stable"]) == ["v2", "stable"]
    assert {"v2", "stable"} <= set(store.tags())
    full = Target(name=parse_image_name("example.com/acme/app:1.0"))
    record_name(store, full, desc)
    # A full name is recorded whole, in ref.name and where containerd looks: another image's 1.0 stays.
    named = [e for e in store.roots() if e.annotations.get(mt.ANNOTATION_REF_NAME) == "example.com/acme/app:1.0"]
    assert named[0].annotations[mt.ANNOTATION_CONTAINERD_NAME] == "example.com/acme/app:1.0"


def test_compose_an_index_from_two_stores():
    el8, el9, dst = MemoryStore("el8"), MemoryStore("el9"), MemoryStore("dst")
    for store, version in ((el8, "el8"), (el9, "el9")):
        config = f'{{"os":"linux","architecture":"arm64","os.version":"{version}"}}'.encode()
        record_name(store, Target(), image(store, version.encode(), config=config))
    entries = [bring_entry(s, Target(), dst, None) for s in (el8, el9)]
    pushed = write_index(dst, Target(tag="1.2"), entries)
    assert pushed.tags == ("1.2",)
    chosen = resolve_in(dst, Target(tag="1.2"), Selector.build("linux/arm64:el9"))
    assert chosen.selected is not None and chosen.selected.platform == Platform("linux", "arm64", None, "el9")


def test_gc_keeps_what_is_reachable_and_what_is_young():
    store = MemoryStore()
    kept = image(store, b"kept")
    record_name(store, Target(tag="v1"), kept)
    dropped = image(store, b"dropped")
    young = collect_garbage(store, grace_seconds=600)
    assert young.removed == ()
    result = collect_garbage(store, grace_seconds=0)
    assert str(dropped.digest) in result.removed and len(result.removed) == 2  # its manifest and its layer
    assert store.exists(kept) and not store.exists(dropped)
    assert all(store.exists(b) for b in _blobs(store, kept))


def test_resolve_rules_over_the_memory_store():
    store = MemoryStore()
    a, b = image(store, b"a"), image(store, b"b")
    store.add_root(a)
    store.add_root(b)
    with pytest.raises(AmbiguousError):
        resolve_in(store, Target())
    with pytest.raises(NotFoundError) as caught:
        resolve_in(store, Target(tag="nope"))
    assert str(a.digest) in caught.value.message  # the listing says what the store holds
    assert resolve_in(store, Target(digest=b.digest)).root.digest == b.digest


def test_tree_over_the_memory_store_shows_referrers():
    store = MemoryStore()
    base = image(store, b"base", platform=Platform("linux", "amd64"))
    root = index(store, base)
    record_name(store, Target(tag="v1"), root)
    sbom = image(store, b"{}", subject=base, artifact_type="application/spdx+json")
    (top,) = build_tree(store, Target(tag="v1"), referrers=True)
    (child,) = top.children
    assert child.platform == Platform("linux", "amd64")
    assert [(r.descriptor.digest, r.artifact_type) for r in child.referrers] == [(sbom.digest, "application/spdx+json")]


def test_gc_keeps_what_a_young_manifest_reaches_even_when_its_layers_are_old():
    store = MemoryStore()
    desc = image(store, b"old layer")
    for digest in list(store.written):
        if digest != desc.digest:
            store.written[digest] -= 3600  # the layers were written an hour ago; the manifest just now
    assert collect_garbage(store, grace_seconds=600).removed == ()
    store.written[desc.digest] -= 3600
    assert len(collect_garbage(store, grace_seconds=600).removed) == 3  # now all of it is old and unreachable


def test_a_copy_to_a_wrong_pin_writes_nothing():
    src, dst = MemoryStore("src"), MemoryStore("dst")
    root = image(src, b"x")
    record_name(src, Target(tag="v1"), root)
    with pytest.raises(UsageError, match="pins"):
        copy_between(src, Target(tag="v1"), dst, Target(digest=Digest.of(b"something else")))
    assert dst.blobs == {}


def test_a_registry_that_will_not_list_tags_still_answers_not_found():
    class PullOnly:
        """Resolves nothing and may not list tags, as a pull-only robot account on a registry."""

        location = "memory:pull-only"

        def resolve(self, target: Target) -> list[Descriptor]:
            return []

        def tags(self, limit: int | None = None) -> list[str]:
            raise AuthError("listing tags is not allowed for this account")

    with pytest.raises(NotFoundError) as caught:
        resolve_in(PullOnly(), Target(tag="typo"))  # type: ignore[arg-type]
    assert caught.value.exit_code == 3 and "could not be listed" in caught.value.message
