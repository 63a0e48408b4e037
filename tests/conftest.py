from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pytest

from ocisift._cli.main import run
from ocisift._core import mediatypes as mt
from ocisift._core.models import Descriptor
from ocisift._core.platform import Platform
from ocisift._demo import build_sample_layout, make_tar, push_index, push_manifest
from ocisift._stores.layout import LayoutStore


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self):
        return json.loads(self.out)


@pytest.fixture
def cli(capsys) -> Callable[..., CliResult]:
    def invoke(*args: str) -> CliResult:
        capsys.readouterr()
        code = run(list(args))
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return invoke


@pytest.fixture
def sample(tmp_path) -> str:
    path = str(tmp_path / "sample")
    build_sample_layout(path)
    return path


@pytest.fixture
def layout(tmp_path) -> LayoutStore:
    return LayoutStore.create(str(tmp_path / "layout"))


def artifact(store: LayoutStore, files: dict[str, bytes] | None = None, *, media_type: str = mt.OCI_LAYER_GZIP,
             platform: Platform | None = None, artifact_type: str | None = None,
             annotations: dict[str, str] | None = None, layers: list[tuple[bytes, str, dict]] | None = None,
             subject: Descriptor | None = None) -> Descriptor:
    """One manifest with one tar layer (or the given layers)."""
    if layers is None:
        layers = [(make_tar(files or {"hello.txt": b"hello\n"}), media_type, {})]
    return push_manifest(store, layers, platform=platform, artifact_type=artifact_type,
                         annotations=annotations, subject=subject)


def raw_tar(entries: Iterable[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    """A tar built member by member, hostile ones included."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return buf.getvalue()


def member(name: str, kind: bytes = tarfile.REGTYPE, *, linkname: str = "", mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.mode = mode
    return info


def write_index(store: LayoutStore, entries: list[dict]) -> None:
    with open(os.path.join(store.path, "index.json"), "w") as fh:
        json.dump({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": entries}, fh)


def entry(desc: Descriptor, **annotations: str) -> dict:
    out = desc.to_json()
    if annotations:
        out["annotations"] = {k.replace("__", "."): v for k, v in annotations.items()}
    return out


__all__ = ["artifact", "entry", "member", "push_index", "raw_tar", "write_index"]


def pytest_collection_modifyitems(config, items):
    """The real peers are part of the suite: a missing one is a loud failure, never a silent skip.

    OCISIFT_SKIP_INTEROP=1 is the opt-out, for a machine that cannot have them; the tests that need
    them are then skipped and say so.
    """
    import shutil

    if os.environ.get("OCISIFT_SKIP_INTEROP"):
        return
    peers = ("skopeo", "umoci", "docker-registry", "openssl", "squid", "tinyproxy", "buildah", "podman", "setcap",
             "bsdtar", "setpriv")
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    missing = [t for t in peers if shutil.which(t, path=search) is None]
    try:
        import oras.client  # noqa: F401
    except ImportError:
        missing.append("oras (Python SDK)")
    if missing:
        raise pytest.UsageError(
            f"the real peers the tests run against are missing: {', '.join(missing)}. "
            "Install them (.ci/run does: apt-get install skopeo umoci docker-registry buildah podman libcap2-bin "
            "libarchive-tools; the oras SDK comes "
            "with the test extras), or set OCISIFT_SKIP_INTEROP=1 to skip the tests that need them.")


@pytest.fixture(params=["native", "tarfile"])
def tar_reader(request, monkeypatch) -> str:
    """Every extraction test runs under both tar readers (ocisift's own and Python's tarfile, each with Go's
    rules), in this process and in the child processes it starts, so neither can be less safe than the other."""
    from ocisift._unpack import extract

    monkeypatch.setattr(extract, "TAR_READER", request.param)
    monkeypatch.setenv("OCISIFT_TAR_READER", request.param)
    return request.param
