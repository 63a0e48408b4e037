"""Layouts written by skopeo and umoci are read and resolved; skopeo reads what ocisift built."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

import ocisift
from ocisift import Selector

pytestmark = pytest.mark.interop

need_skopeo = pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo is not installed")
need_umoci = pytest.mark.skipif(shutil.which("umoci") is None, reason="umoci is not installed")


def sh(*args: str, cwd: Path | None = None) -> str:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=cwd)
    assert proc.returncode == 0, f"{args}: {proc.stderr}"
    return proc.stdout


@need_skopeo
def test_skopeo_copy_of_a_multi_platform_index_is_resolved(sample, tmp_path):
    dest = tmp_path / "sk"
    sh("skopeo", "copy", "--multi-arch", "all", f"oci:{sample}:1.2", f"oci:{dest}:copied")
    index = json.loads((dest / "index.json").read_text())
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "copied"
    for plat in ("linux/amd64:el8", "linux/amd64:el9", "linux/arm64:el8", "linux/arm64/v8:el9"):
        ours = ocisift.resolve(f"oci:{sample}:1.2", select=Selector.build(platform=plat)).descriptor.digest
        theirs = ocisift.resolve(f"oci:{dest}:copied", select=Selector.build(platform=plat)).descriptor.digest
        assert ours == theirs
    out = tmp_path / "out"
    ocisift.pull(f"oci:{dest}:copied", str(out), mode="extract", select=Selector.build(platform="linux/arm64:el9"))
    assert (out / "repo" / "el9" / "arm64" / "repodata" / "repomd.xml").is_file()


@need_skopeo
def test_skopeo_oci_archive_is_read_in_place(sample, tmp_path):
    archive = tmp_path / "img.tar"
    sh("skopeo", "copy", f"oci:{sample}:7.2", f"oci-archive:{archive}:module")
    ours = ocisift.resolve(f"oci:{sample}:7.2").descriptor.digest
    assert ocisift.resolve(f"oci-archive:{archive}:module").descriptor.digest == ours
    assert ocisift.resolve(f"oci-archive:{archive}").descriptor.digest == ours  # one entry: tagless works
    ocisift.pull(f"oci-archive:{archive}:module", str(tmp_path / "m"), mode="extract-all")
    assert (tmp_path / "m" / "cue.mod" / "module.cue").is_file()


@need_skopeo
def test_skopeo_reads_the_exact_bytes_ocisift_reports(sample):
    raw = sh("skopeo", "inspect", "--raw", f"oci:{sample}:7.2").encode()
    assert raw == ocisift.manifest(f"oci:{sample}:7.2")
    index_raw = subprocess.run(["skopeo", "inspect", "--raw", f"oci:{sample}:1.2"], capture_output=True,
                               check=True, timeout=60).stdout
    assert index_raw == ocisift.manifest(f"oci:{sample}:1.2")


@need_umoci
def test_umoci_layout_is_resolved_with_config_platform(tmp_path):
    lay = tmp_path / "um"
    sh("umoci", "init", "--layout", str(lay))
    sh("umoci", "new", "--image", f"{lay}:base")
    sh("umoci", "config", "--image", f"{lay}:base", "--os", "linux", "--architecture", "arm64",
       "--config.cmd", "/bin/sh")
    hello = tmp_path / "hello.txt"
    hello.write_text("from umoci\n")
    sh("umoci", "insert", "--rootless", "--image", f"{lay}:base", str(hello), "/etc/hello.txt")
    index = json.loads((lay / "index.json").read_text())
    digest = index["manifests"][0]["digest"]
    assert str(ocisift.resolve(f"oci:{lay}:base").descriptor.digest) == digest
    # umoci writes no platform in index.json: the image config supplies it.
    assert str(ocisift.resolve(f"oci:{lay}:base", select=Selector.build(platform="linux/arm64/v8")).descriptor.digest) == digest
    with pytest.raises(ocisift.NotFoundError):
        ocisift.resolve(f"oci:{lay}:base", select=Selector.build(platform="linux/amd64"))
    tree = ocisift.tree(f"oci:{lay}")
    assert str(tree[0].platform) == "linux/arm64"
    out = tmp_path / "rootfs"
    ocisift.pull(f"oci:{lay}:base", str(out), mode="extract-all", include=["etc/hello.txt"])
    assert (out / "etc" / "hello.txt").read_text() == "from umoci\n"
