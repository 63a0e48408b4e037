"""A platform field of the wrong JSON type is exit 5 wherever a platform is read: in an image config as in
an index entry, on every command that reads one.

A manifest whose index entry carries no platform has its platform read from its image config: by
resolve and pull with --platform, by tree, by index create and index add, by copy --platform, and when a
docker archive is opened. Each wrong-typed field (or a config that is no JSON object) must end there in
exit 5 naming the field, as the same field in an index entry does, with nothing written. A config that
declares no os or architecture declares no platform (--platform then finds nothing: exit 3), and an
artifact's config, which is no platform's authority, is not held to an image config's types.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = b"layer bytes"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _layout(root: Path, config: bytes, config_type: str = OCI_CONFIG, entry_extra: dict | None = None) -> str:
    """A layout with one manifest (config as given) tagged v1; its index.json entry has no platform unless
    `entry_extra` gives one."""
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": config_type, "digest": _digest(config), "size": len(config)},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                       "digest": _digest(LAYER), "size": len(LAYER)}]}).encode()
    (root / "blobs" / "sha256").mkdir(parents=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    for data in (config, manifest, LAYER):
        (root / "blobs" / "sha256" / _digest(data).split(":")[1]).write_bytes(data)
    entry = {"mediaType": OCI_MANIFEST, "digest": _digest(manifest), "size": len(manifest),
             "annotations": {"org.opencontainers.image.ref.name": "v1"}, **(entry_extra or {})}
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]}))
    return f"oci:{root}:v1"


GOOD = {"os": "linux", "architecture": "amd64", "rootfs": {"type": "layers", "diff_ids": []}}
WRONG = {
    "os.features": {**GOOD, "os.features": 5},
    "os.features ": {**GOOD, "os.features": ["sse4", 1]},
    "architecture": {**GOOD, "architecture": []},
    "os": {**GOOD, "os": 5},
    "variant": {**GOOD, "variant": {}},
    "os.version": {**GOOD, "os.version": 1},
}
NOT_AN_OBJECT = {"a list": b'["linux", "amd64"]', "a string": b'"linux/amd64"', "a number": b"12345",
                 "not JSON": b"os: linux\n"}


def reading_commands(ref: str, out: Path) -> list[tuple[str, ...]]:
    """Every command that reads a config's platform."""
    index = out / "idx"
    return [
        ("resolve", ref, "--platform", "linux/amd64"),
        ("pull", ref, "--platform", "linux/amd64", "-o", str(out / "pulled")),
        ("tree", ref),
        ("copy", ref, f"oci:{out}/copied:v1", "--platform", "linux/amd64"),
        ("index", "create", f"oci:{index}:i", ref),
    ]


def _refused_everywhere(cli, ref: str, out: Path, word: str) -> None:
    for args in reading_commands(ref, out):
        res = cli(*args, "--format", "json")
        assert res.code == 5, (args, res.code, res.out)
        message = res.json()["error"]["message"]
        assert word in message and "config" in message, (args, message)
        assert not (out / "pulled").exists() and not (out / "idx").exists()
        assert _nothing_listed(out / "copied")  # (copy makes its new layout before it reads the source)


def _nothing_listed(layout: Path) -> bool:
    index = layout / "index.json"
    return not index.exists() or json.loads(index.read_text()).get("manifests") in (None, [])


@pytest.mark.parametrize("field", sorted(WRONG))
def test_a_wrong_typed_platform_field_in_an_image_config_is_exit_5(tmp_path, cli, field):
    ref = _layout(tmp_path / "l", json.dumps(WRONG[field]).encode())
    _refused_everywhere(cli, ref, tmp_path / "out", field.strip())


@pytest.mark.parametrize("case", sorted(NOT_AN_OBJECT))
def test_an_image_config_that_is_no_json_object_is_exit_5(tmp_path, cli, case):
    ref = _layout(tmp_path / "l", NOT_AN_OBJECT[case])
    word = "not valid JSON" if case == "not JSON" else "JSON object"
    _refused_everywhere(cli, ref, tmp_path / "out", word)


@pytest.mark.parametrize("field", sorted(WRONG))
def test_index_add_reads_the_config_too(tmp_path, cli, field):
    good = _layout(tmp_path / "good", json.dumps(GOOD).encode())
    assert cli("index", "create", f"oci:{tmp_path}/idx:i", good).code == 0
    before = (tmp_path / "idx" / "index.json").read_bytes()
    bad = _layout(tmp_path / "bad", json.dumps(WRONG[field]).encode())
    res = cli("index", "add", f"oci:{tmp_path}/idx:i", bad, "--format", "json")
    assert res.code == 5 and field.strip() in res.json()["error"]["message"], res.out
    assert (tmp_path / "idx" / "index.json").read_bytes() == before


@pytest.mark.parametrize(("field", "platform"), [
    ("os.features", {"os": "linux", "architecture": "amd64", "os.features": 5}),
    ("variant", {"os": "linux", "architecture": "arm64", "variant": {}}),
    ("os.version", {"os": "linux", "architecture": "amd64", "os.version": 1}),
    ("architecture", {"os": "linux", "architecture": []}),
    ("os", {"os": 5, "architecture": "amd64"}),
    ("platform", "linux/amd64"),
    ("platform", []),
], ids=lambda v: v if isinstance(v, str) else "")
def test_the_same_field_in_an_index_entry_is_exit_5(tmp_path, cli, field, platform):
    ref = _layout(tmp_path / "l", json.dumps(GOOD).encode(), entry_extra={"platform": platform})
    for args in (("resolve", ref), ("tree", ref), ("pull", ref, "-o", str(tmp_path / "out"))):
        res = cli(*args, "--format", "json")
        assert res.code == 5, (args, res.out)
        assert field in res.json()["error"]["message"] or "platform" in res.json()["error"]["message"]
    assert not (tmp_path / "out").exists()


def test_a_config_without_a_platform_declares_none(tmp_path, cli):
    ref = _layout(tmp_path / "l", json.dumps({"rootfs": {"type": "layers", "diff_ids": []}, "os": None}).encode())
    assert cli("tree", ref).code == 0
    assert cli("resolve", ref, "--platform", "linux/amd64").code == 3


def test_null_optional_fields_are_absent(tmp_path, cli):
    config = {**GOOD, "variant": None, "os.version": None, "os.features": None}
    ref = _layout(tmp_path / "l", json.dumps(config).encode())
    res = cli("resolve", ref, "--platform", "linux/amd64", "--format", "json")
    assert res.code == 0, res.out


def test_an_artifact_config_is_not_held_to_an_image_configs_types(tmp_path, cli):
    config = json.dumps({"os": 5, "architecture": [], "name": "chart"}).encode()
    ref = _layout(tmp_path / "l", config, config_type="application/vnd.cncf.helm.config.v1+json")
    assert cli("tree", ref).code == 0
    assert cli("pull", ref, "-o", str(tmp_path / "out")).code == 0


def _docker_archive(path: Path, config: dict) -> str:
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        info = tarfile.TarInfo("f")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    data = layer.getvalue()
    config = {**config, "rootfs": {"type": "layers", "diff_ids": [_digest(data)]}}
    raw = json.dumps(config).encode()
    with tarfile.open(path, "w") as tar:
        for name, body in (("c.json", raw), ("l.tar", data),
                           ("manifest.json", json.dumps([{"Config": "c.json", "RepoTags": ["app:1"],
                                                          "Layers": ["l.tar"]}]).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return f"docker-archive:{path}"


@pytest.mark.parametrize("field", sorted(WRONG))
def test_a_docker_archive_whose_config_has_a_wrong_typed_platform_is_exit_5(tmp_path, cli, field):
    ref = _docker_archive(tmp_path / "saved.tar", WRONG[field])
    for args in (("resolve", ref), ("tree", ref), ("pull", f"{ref}@0", "-o", str(tmp_path / "out")),
                 ("copy", f"{ref}@0", f"oci:{tmp_path}/copied:v1")):
        res = cli(*args, "--format", "json")
        assert res.code == 5, (args, res.out)
        message = res.json()["error"]["message"]
        assert field.strip() in message and "c.json" in message, message
    assert not (tmp_path / "out").exists() and _nothing_listed(tmp_path / "copied")
