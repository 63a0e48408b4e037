"""Interop with the ORAS Python SDK over a real registry: each side pulls what the other pushed."""

from __future__ import annotations

import shutil

import pytest

import ocisift
from ocisift import LayerSelector
from registry import run_registry

oras_client = pytest.importorskip("oras.client")

pytestmark = pytest.mark.skipif(shutil.which("docker-registry") is None, reason="docker-registry is needed")


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    with run_registry(tmp_path_factory.mktemp("oras")) as reg:
        yield reg.host


def test_oras_pulls_what_ocisift_pushed(host, tmp_path):
    (tmp_path / "notes.txt").write_text("hello oras\n")
    (tmp_path / "bundle").mkdir()
    (tmp_path / "bundle" / "inner.yaml").write_text("k: v\n")
    ocisift.push(f"{host}/acme/from-ocisift:1", [str(tmp_path / "notes.txt"), str(tmp_path / "bundle")])
    client = oras_client.OrasClient(hostname=host, insecure=True)
    out = tmp_path / "out"
    client.pull(target=f"{host}/acme/from-ocisift:1", outdir=str(out))
    assert (out / "notes.txt").read_text() == "hello oras\n"
    assert (out / "bundle" / "inner.yaml").read_text() == "k: v\n"


def test_ocisift_pulls_what_oras_pushed(host, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.json").write_text('{"a": 1}')
    (tmp_path / "b.txt").write_text("b\n")
    client = oras_client.OrasClient(hostname=host, insecure=True)
    client.push(target=f"{host}/acme/from-oras:1", files=["a.json", "b.txt"])
    result = ocisift.pull(f"{host}/acme/from-oras:1", str(tmp_path / "got"), layers=LayerSelector.build(all=True))
    assert sorted(result.files) == ["a.json", "b.txt"]
    assert (tmp_path / "got" / "a.json").read_text() == '{"a": 1}'
    one = ocisift.pull(f"{host}/acme/from-oras:1", str(tmp_path / "one"), layers=LayerSelector.build(title="b.txt"))
    assert one.files == ("b.txt",)
