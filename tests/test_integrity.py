"""Every byte is checked against its descriptor; bad documents are refused with clear messages."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import ocisift
from conftest import artifact, entry, write_index
from ocisift import Selector
from ocisift._core import mediatypes as mt
from ocisift._core.digest import Digest, VerifyingReader
from ocisift._core.errors import IntegrityError, MalformedDocument
from ocisift._core.models import Descriptor, parse_document
from ocisift._demo import make_tar


def blob_path(layout, digest) -> str:
    return os.path.join(layout.path, "blobs", digest.algorithm, digest.hex)


def corrupt(path: str) -> None:
    p = Path(path)
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    p.write_bytes(bytes(data))


@pytest.mark.parametrize("mode", ["copy", "extract"])
def test_corrupted_layer_exits_5_and_leaves_nothing(layout, tmp_path, cli, mode):
    desc = artifact(layout, {"f.txt": os.urandom(2048).hex().encode()})
    write_index(layout, [entry(desc, org__opencontainers__image__ref__name="v1")])
    manifest = parse_document(layout.fetch_manifest(desc))
    corrupt(blob_path(layout, manifest.layers[0].digest))
    out = tmp_path / "out"
    res = cli("pull", f"oci:{layout.path}:v1", "-o", str(out), "--mode", mode, "--format", "json")
    assert res.code == 5, res.out
    assert res.json()["error"]["code"] == 5
    assert "digest" in res.json()["error"]["message"]
    assert not out.exists()
    assert [n for n in os.listdir(tmp_path) if n.startswith(".ocisift")] == []


def test_truncated_and_overlong_blobs(layout, tmp_path):
    desc = artifact(layout)
    write_index(layout, [entry(desc)])
    layer = parse_document(layout.fetch_manifest(desc)).layers[0]
    path = blob_path(layout, layer.digest)
    good = Path(path).read_bytes()
    for bad in (good[:-5], good + b"extra"):
        Path(path).write_bytes(bad)
        with pytest.raises(IntegrityError):
            ocisift.pull(f"oci:{layout.path}", str(tmp_path / "out"))
        assert not (tmp_path / "out").exists()


def test_corrupted_manifest_is_refused(layout):
    desc = artifact(layout)
    write_index(layout, [entry(desc)])
    corrupt(blob_path(layout, desc.digest))
    with pytest.raises(IntegrityError):
        ocisift.resolve(f"oci:{layout.path}", select=Selector.build(artifact_type="*"))


def test_sha512_descriptors_are_verified():
    import io

    data = b"hello sha512"
    d = Digest.of(data, "sha512")
    assert VerifyingReader(io.BytesIO(data), d, len(data)).read() == data
    with pytest.raises(IntegrityError):
        VerifyingReader(io.BytesIO(b"hello sha513"), d, len(data)).read()


def test_memory_does_not_grow_with_blob_size(layout, tmp_path):
    """A 64 MiB blob streams through a fixed buffer: peak traced allocation stays far below the blob size."""
    import tracemalloc

    big = os.urandom(1 << 20) * 64
    desc = artifact(layout, layers=[(big, "application/octet-stream", {})])
    write_index(layout, [entry(desc)])
    tracemalloc.start()
    ocisift.pull(f"oci:{layout.path}", str(tmp_path / "out"))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del big
    assert peak < 8 << 20, f"peak {peak} bytes while copying a 64 MiB blob"


@pytest.mark.parametrize(("doc", "message"), [
    (b"{not json", "not valid JSON"),
    (b"[]", "not a JSON object"),
    (json.dumps({"schemaVersion": 2, "config": {}, "layers": [], "manifests": []}).encode(), "both"),
    (json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "layers": []}).encode(), "without config"),
    (json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX,
                 "manifests": [{"mediaType": mt.OCI_MANIFEST, "digest": "sha256:xyz", "size": 1}]}).encode(), "digest"),
    (json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX,
                 "manifests": [{"mediaType": mt.OCI_MANIFEST, "digest": "sha256:" + "a" * 64, "size": -1}]}).encode(), "size"),
    (b" " * (4 * 1024 * 1024 + 1), "limit"),
])
def test_malformed_documents(doc, message):
    with pytest.raises(MalformedDocument, match=message):
        parse_document(doc)


def test_descriptor_media_type_must_agree_with_document():
    raw = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": []}).encode()
    with pytest.raises(MalformedDocument, match="descriptor says"):
        parse_document(raw, mt.OCI_MANIFEST)


def test_oversized_manifest_descriptor_is_refused_before_reading(layout):
    fake = Descriptor(mt.OCI_MANIFEST, Digest.of(b"x"), 5 * 1024 * 1024)
    with pytest.raises(MalformedDocument, match="limit"):
        layout.fetch_manifest(fake)


def test_plain_tar_blob_in_copy_mode_is_byte_exact(layout, tmp_path):
    data = make_tar({"a": b"1"}, compression="none")
    desc = artifact(layout, layers=[(data, mt.OCI_LAYER_TAR, {"org.opencontainers.image.title": "a.tar"})])
    write_index(layout, [entry(desc)])
    ocisift.pull(f"oci:{layout.path}", str(tmp_path / "out"))
    assert (tmp_path / "out" / "a.tar").read_bytes() == data
