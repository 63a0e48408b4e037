"""The demo's content: a sample layout built on the spot, so the demo and the tests need no server.

It holds what our users argue about: a multi-platform index whose platforms
differ only in os.version, a product index nesting related artifacts, and a
Timoni-style module whose layers share one media type.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from collections.abc import Mapping, Sequence

from ._core import mediatypes as mt
from ._core.builders import build_index, manifest_bytes, platform_config
from ._core.models import Descriptor
from ._core.platform import Platform
from ._stores.layout import LayoutStore

FIXED_MTIME = 1_700_000_000


def make_tar(files: Mapping[str, bytes], compression: str = "gzip") -> bytes:
    """A reproducible tar (sorted, fixed times and owners), optionally gzip or zstd compressed."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs: set[str] = set()
        for name in sorted(files):
            parts = name.split("/")[:-1]
            for i in range(len(parts)):
                d = "/".join(parts[: i + 1])
                if d not in dirs:
                    dirs.add(d)
                    info = tarfile.TarInfo(d)
                    info.type = tarfile.DIRTYPE
                    info.mode = 0o755
                    info.mtime = FIXED_MTIME
                    tar.addfile(info)
            info = tarfile.TarInfo(name)
            info.size = len(files[name])
            info.mode = 0o644
            info.mtime = FIXED_MTIME
            tar.addfile(info, io.BytesIO(files[name]))
    data = buf.getvalue()
    if compression == "gzip":
        return gzip.compress(data, mtime=0)
    if compression == "zstd":
        import zstandard

        return zstandard.ZstdCompressor().compress(data)
    return data


def canonical_json(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


def push_manifest(
    store: LayoutStore,
    layers: Sequence[tuple[bytes, str, Mapping[str, str]]],
    *,
    config: tuple[bytes, str] | None = None,
    artifact_type: str | None = None,
    annotations: Mapping[str, str] | None = None,
    platform: Platform | None = None,
    subject: Descriptor | None = None,
) -> Descriptor:
    """Write blobs, config and an image manifest; returns the manifest's descriptor."""
    if config is None:
        config = (platform_config(platform), mt.OCI_CONFIG) if platform is not None else (b"{}", mt.OCI_EMPTY)
    cfg = store.push_bytes(config[0], config[1])
    layer_descs = [store.push_bytes(data, media_type, ann) for data, media_type, ann in layers]
    raw = manifest_bytes(cfg, layer_descs, artifact_type=artifact_type, annotations=annotations, subject=subject)
    desc = store.push_bytes(raw, mt.OCI_MANIFEST)
    return Descriptor(desc.media_type, desc.digest, desc.size, platform=platform, artifact_type=artifact_type)


def push_index(
    store: LayoutStore,
    manifests: Sequence[Descriptor],
    *,
    annotations: Mapping[str, str] | None = None,
    artifact_type: str | None = None,
) -> Descriptor:
    return store.push_bytes(build_index(manifests, annotations=annotations, artifact_type=artifact_type), mt.OCI_INDEX)


REPO_TYPE = "application/vnd.acme.rpm-repo.v1"
TIMONI_CONTENT = "application/vnd.timoni.content.v1.tar+gzip"


def build_sample_layout(path: str) -> LayoutStore:
    """Create (or extend) the sample layout at `path`."""
    store = LayoutStore.create(path)

    # 1. CI: one tag, four platforms, el8 and el9 told apart only by os.version.
    per_platform = []
    for arch, variant in (("amd64", None), ("arm64", "v8")):
        for el in ("el8", "el9"):
            plat = Platform("linux", arch, variant, el)
            repo = make_tar({
                f"repo/{el}/{arch}/repodata/repomd.xml": f"<repomd arch='{arch}' release='{el}'/>\n".encode(),
                f"repo/{el}/{arch}/acme-tools-1.2-1.{el}.rpm": f"rpm payload for {el} {arch}\n".encode(),
            })
            per_platform.append(push_manifest(
                store, [(repo, mt.OCI_LAYER_GZIP, {mt.ANNOTATION_TITLE: f"repo-{el}-{arch}.tar.gz"})],
                artifact_type=REPO_TYPE, platform=plat,
                annotations={"org.opencontainers.image.version": "1.2"},
            ))
    repo_index = push_index(store, per_platform, annotations={"org.opencontainers.image.version": "1.2"})
    store.tag(repo_index, "1.2", {mt.ANNOTATION_CONTAINERD_NAME: "example.com/acme/yum-repo:1.2"})

    # 2. A product: an index of related artifacts, one of them itself an index.
    configs = [
        push_manifest(store, [(gzip.compress(canonical_json({"env": env, "replicas": n}), mtime=0),
                               "application/vnd.acme.config.v1.json+gzip", {})],
                      artifact_type="application/vnd.acme.config.v1",
                      annotations={"com.acme.env": env})
        for env, n in (("staging", 1), ("production", 3))
    ]
    config_index = push_index(store, [
        Descriptor(c.media_type, c.digest, c.size, {"com.acme.env": env}, None, c.artifact_type)
        for c, env in zip(configs, ("staging", "production"), strict=True)
    ], artifact_type="application/vnd.acme.config.v1")
    sbom = push_manifest(store, [(canonical_json({"spdxVersion": "SPDX-2.3", "name": "acme-product"}),
                                  "application/spdx+json", {mt.ANNOTATION_TITLE: "sbom.spdx.json"})],
                         artifact_type="application/spdx+json")
    attestation = push_manifest(store, [(canonical_json({"_type": "https://in-toto.io/Statement/v1"}),
                                         "application/vnd.in-toto+json", {})],
                                artifact_type="application/vnd.in-toto+json")
    product = push_index(store, [
        Descriptor(config_index.media_type, config_index.digest, config_index.size,
                   {"com.acme.part": "configs"}, None, "application/vnd.acme.config.v1"),
        Descriptor(sbom.media_type, sbom.digest, sbom.size, {"com.acme.part": "sbom"}, None, sbom.artifact_type),
        Descriptor(attestation.media_type, attestation.digest, attestation.size,
                   {"com.acme.part": "attestation"}, None, attestation.artifact_type),
    ])
    store.tag(product, "example.com/acme/product:2.0")

    # 3. A Timoni-style module: two layers of one media type, unified at pull time.
    vendor = make_tar({"cue.mod/module.cue": b'module: "timoni.sh/redis"\n',
                       "cue.mod/pkg/timoni.sh/core/v1alpha1/image.cue": b"package v1alpha1\n"})
    module = make_tar({"timoni.cue": b"package main\n", "values.cue": b"values: replicas: 1\n",
                       "templates/config.cue": b"package templates\n"})
    redis = push_manifest(
        store,
        [(vendor, TIMONI_CONTENT, {"sh.timoni.content.type": "module/vendor"}),
         (module, TIMONI_CONTENT, {"sh.timoni.content.type": "module"})],
        config=(canonical_json({"name": "redis"}), "application/vnd.timoni.config.v1+json"),
        annotations={"org.opencontainers.image.revision": "7.2.0"},
    )
    store.tag(redis, "7.2", {mt.ANNOTATION_CONTAINERD_NAME: "example.com/acme/modules/redis:7.2"})
    return store
