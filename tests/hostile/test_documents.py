"""Malformed documents: a wrong-typed field ends in exit 5 naming it, and nothing else ever comes out.

The property test feeds arbitrary JSON and arbitrary bytes, as index.json and as
a manifest or index that index.json names (digest and size right, so the bytes
are read and parsed), to every reading command's API: the only outcomes allowed
are success and one of ocisift's own errors.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ocisift
from ocisift import LayerSelector, Selector

CONFIG = b"{}"
EMPTY = "application/vnd.oci.empty.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _layout(root: Path, blobs: dict[str, bytes], index: bytes) -> str:
    (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    for data in blobs.values():
        (root / "blobs" / "sha256" / _digest(data).split(":")[1]).write_bytes(data)
    (root / "index.json").write_bytes(index)
    return f"oci:{root}"


def _entry(data: bytes, media_type: str = OCI_MANIFEST, **extra: object) -> dict[str, object]:
    return {"mediaType": media_type, "digest": _digest(data), "size": len(data), **extra}


def _index_json(*entries: dict[str, object]) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": list(entries)}).encode()


def _manifest(**fields: object) -> bytes:
    body: dict[str, object] = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                               "config": {"mediaType": EMPTY, "digest": _digest(CONFIG), "size": 2}, "layers": []}
    body.update(fields)
    return json.dumps(body).encode()


GOOD_LAYER = {"mediaType": "application/octet-stream", "digest": _digest(b"x"), "size": 1}


@pytest.mark.parametrize("field, manifest, entry_extra", [
    ("artifactType", _manifest(artifactType=5), {}),
    ("annotations", _manifest(annotations=[]), {}),
    ("mediaType", _manifest(mediaType=5), {}),
    ("layers", _manifest(layers={"a": 1}), {}),
    ("size", _manifest(layers=[{**GOOD_LAYER, "size": -1}]), {}),
    ("digest", _manifest(layers=[{**GOOD_LAYER, "digest": GOOD_LAYER["digest"] + "\n"}]), {}),
    ("algorithm", _manifest(layers=[{**GOOD_LAYER, "digest": "md5:" + "0" * 32}]), {}),
    ("urls", _manifest(layers=[{**GOOD_LAYER, "urls": 5}]), {}),
    ("os.features", _manifest(), {"platform": {"os": "linux", "architecture": "amd64", "os.features": 5}}),
    ("annotations", _manifest(), {"annotations": []}),
    ("artifactType", _manifest(), {"artifactType": 5}),
], ids=lambda v: v if isinstance(v, str) else "")
def test_a_wrong_typed_field_is_exit_5_naming_it(tmp_path, cli, field, manifest, entry_extra):
    ref = _layout(tmp_path / "l", {"m": manifest, "c": CONFIG, "x": b"x"},
                  _index_json(_entry(manifest, annotations={"org.opencontainers.image.ref.name": "v1"}, **entry_extra)
                              if "annotations" not in entry_extra else _entry(manifest, **entry_extra)))
    target = f"{ref}:v1" if "annotations" not in entry_extra else ref
    for args in (("resolve", target), ("tree", target), ("pull", target, "-o", str(tmp_path / "out"))):
        res = cli(*args, "--format", "json")
        assert res.code == 5, (args, res.out)
        message = res.json()["error"]["message"]
        named = "algorithm" if field == "algorithm" else field
        assert named in message, message
    assert not (tmp_path / "out").exists()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(
        st.sampled_from(["mediaType", "digest", "size", "manifests", "layers", "config", "annotations",
                         "artifactType", "subject", "platform", "urls", "schemaVersion", "os", "architecture",
                         "os.features", "x"]) | st.text(max_size=8), children, max_size=6),
    max_leaves=25,
)
documents = st.one_of(
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
    st.builds(lambda m: json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, **m}).encode(),
              st.dictionaries(st.sampled_from(["config", "layers", "subject", "annotations", "artifactType"]),
                              json_values, max_size=4)),
    st.builds(lambda m: json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, **m}).encode(),
              st.dictionaries(st.sampled_from(["manifests", "subject", "annotations", "artifactType"]),
                              json_values, max_size=3)),
)


def _every_reading_command(ref: str, out: Path) -> None:
    calls = [
        lambda: ocisift.resolve(ref),
        lambda: ocisift.resolve(ref, Selector.build(platform="linux/amd64")),
        lambda: ocisift.tree(ref, referrers=True),
        lambda: ocisift.tags(ref),
        lambda: ocisift.manifest(ref),
        lambda: ocisift.pull(ref, str(out / "pull"), layers=LayerSelector.build(all=True)),
        lambda: ocisift.pull(ref, str(out / "tree"), mode="extract-all"),
        lambda: ocisift.copy(ref, f"oci:{out}/copy"),
    ]
    for call in calls:
        try:
            call()
        except ocisift.OcisiftError:
            pass


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(index=documents)
def test_any_index_json_is_success_or_an_ocisift_error(index):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _every_reading_command(_layout(root / "l", {}, index), root / "out")
        assert not list(root.glob(".ocisift-*"))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=documents, as_index=st.booleans())
def test_any_manifest_or_index_is_success_or_an_ocisift_error(document, as_index):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        entry = _entry(document, OCI_INDEX if as_index else OCI_MANIFEST)
        ref = _layout(root / "l", {"doc": document, "config": CONFIG}, _index_json(entry))
        _every_reading_command(ref, root / "out")
        for staged in root.rglob(".ocisift-staging-*"):
            raise AssertionError(f"staging left behind: {staged}")
        assert os.path.isdir(root / "l")
