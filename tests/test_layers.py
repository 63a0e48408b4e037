from __future__ import annotations

import pytest

from ocisift._core import mediatypes as mt
from ocisift._core.digest import Digest
from ocisift._core.errors import AmbiguousError, NotFoundError, UnsafeContentError, UsageError
from ocisift._core.models import Descriptor, Manifest
from ocisift._unpack.layers import LayerSelector, blob_file_name, layer_dir_name, select_layers


def layer(media_type: str, n: int, **ann: str) -> Descriptor:
    return Descriptor(media_type, Digest.of(str(n).encode()), n, {k.replace("_", "."): v for k, v in ann.items()})


def manifest(*layers: Descriptor) -> Manifest:
    cfg = Descriptor(mt.OCI_EMPTY, Digest.of(b"{}"), 2)
    return Manifest(b"{}", mt.OCI_MANIFEST, cfg, layers, {}, None, None)


@pytest.mark.parametrize(
    ("media_type", "ext"),
    [
        ("application/vnd.oci.image.layer.v1.tar+gzip", ".tar.gz"),
        ("application/vnd.cncf.flux.content.v1.tar+gzip", ".tar.gz"),
        ("application/vnd.docker.image.rootfs.diff.tar.gzip", ".tar.gz"),
        ("application/vnd.oci.image.layer.v1.tar+zstd", ".tar.zst"),
        ("application/vnd.oci.image.layer.v1.tar", ".tar"),
        ("application/vnd.acme.config.v1.json+gzip", ".json.gz"),
        ("application/vnd.acme.config.v1+json+gzip", ".json.gz"),  # structured suffixes, RFC 6839
        ("application/vnd.acme.values+yaml+zstd", ".yaml.zst"),
        ("application/vnd.cncf.helm.chart.content.v1.tar+gzip", ".tar.gz"),
        ("application/yaml", ".yaml"),
        ("application/vnd.acme.thing+zstd", ".zst"),
        ("application/spdx+json", ".json"),
        ("application/json", ".json"),
        ("application/vnd.in-toto+json", ".json"),
        ("text/plain", ".txt"),
        ("application/octet-stream", ".bin"),
    ],
)
def test_extension_from_media_type(media_type, ext):
    d = layer(media_type, 1)
    assert blob_file_name(d) == f"sha256-{d.digest.hex}{ext}"


def test_name_precedence_and_safety():
    d = layer(mt.OCI_LAYER_GZIP, 1, org_opencontainers_image_title="module.tar.gz")
    assert blob_file_name(d) == "module.tar.gz"
    assert blob_file_name(d, "x.tgz") == "x.tgz"
    assert layer_dir_name(d) == "module"
    for bad in ("../x", "/etc/passwd", "a/b", "..", "."):
        with pytest.raises(UnsafeContentError):
            blob_file_name(layer("text/plain", 2, org_opencontainers_image_title=bad))


def test_selection_by_media_type_index_annotation_title():
    a = layer("application/vnd.timoni.content.v1.tar+gzip", 1, sh_timoni_content_type="module/vendor")
    b = layer("application/vnd.timoni.content.v1.tar+gzip", 2, sh_timoni_content_type="module")
    c = layer("application/json", 3, org_opencontainers_image_title="c.json")
    m = manifest(a, b, c)
    with pytest.raises(AmbiguousError) as caught:  # three match, none named: never a guess
        select_layers(m, LayerSelector(), "copy")
    assert [c["position"] for c in caught.value.candidates] == [0, 1, 2]
    assert caught.value.candidates[2]["title"] == "c.json"
    with pytest.raises(AmbiguousError):
        select_layers(m, LayerSelector.build("*timoni*"), "extract")
    assert select_layers(m, LayerSelector.build(index=0), "copy") == [(0, a)]  # Flux's "first layer", asked for
    assert select_layers(m, LayerSelector.build(all=True), "copy") == [(0, a), (1, b), (2, c)]
    assert select_layers(m, LayerSelector.build("*timoni*", index=1), "copy") == [(1, b)]
    assert select_layers(m, LayerSelector.build("*timoni*"), "extract-all") == [(0, a), (1, b)]
    assert select_layers(m, LayerSelector.build(annotations=["sh.timoni.content.type=module"]), "copy") == [(1, b)]
    assert select_layers(m, LayerSelector.build(title="c.json"), "copy") == [(2, c)]
    assert select_layers(m, LayerSelector.build(all=True), "copy") == [(0, a), (1, b), (2, c)]
    with pytest.raises(NotFoundError):
        select_layers(m, LayerSelector.build("image/png"), "copy")
    with pytest.raises(NotFoundError):
        select_layers(m, LayerSelector.build("*timoni*", index=2), "copy")
    with pytest.raises(UsageError):
        LayerSelector.build(index=1, all=True)
    with pytest.raises(UsageError):
        select_layers(m, LayerSelector.build(all=True), "extract")
