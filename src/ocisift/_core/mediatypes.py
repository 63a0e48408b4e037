"""Media types ocisift understands, and what each means for walking and unpacking."""

from __future__ import annotations

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_NONDIST_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"  # uncompressed, as docker save holds them
DOCKER_LAYER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
OCTET_STREAM = "application/octet-stream"  # a blob known by digest alone

INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
GRAPH_TYPES = INDEX_TYPES | MANIFEST_TYPES
CONFIG_TYPES = frozenset({OCI_CONFIG, DOCKER_CONFIG})

ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_TITLE = "org.opencontainers.image.title"
ANNOTATION_CONTAINERD_NAME = "io.containerd.image.name"
ANNOTATION_ORAS_UNPACK = "io.deis.oras.content.unpack"


def is_index(media_type: str) -> bool:
    return media_type in INDEX_TYPES


def is_manifest(media_type: str) -> bool:
    return media_type in MANIFEST_TYPES


def is_image_layer(media_type: str) -> bool:
    """Image layers carry OCI whiteouts; artifact layers do not."""
    return media_type.startswith(("application/vnd.oci.image.layer.", "application/vnd.docker.image.rootfs."))


def compression_of(media_type: str) -> str | None:
    """'gzip', 'zstd', 'none' for tar-like layers; None when the type is not a tar."""
    mt = media_type.lower()
    if mt in (DOCKER_LAYER_GZIP, DOCKER_LAYER_FOREIGN):
        return "gzip"
    if "tar+gzip" in mt or "tar.gzip" in mt or mt.endswith(("tar+gz", ".tgz", "tar.gz")):
        return "gzip"
    if "tar+zstd" in mt or mt.endswith("tar.zstd"):
        return "zstd"
    if mt.endswith((".tar", "+tar")) or mt == OCI_LAYER_TAR or mt.endswith("v1.tar"):
        return "none"
    return None


_FORMATS = ("json", "yaml", "xml", "tar", "txt", "cbor", "toml", "wasm")
_COMPRESSION_SUFFIXES = {"gzip": ".gz", "gz": ".gz", "zstd": ".zst", "zst": ".zst", "bzip2": ".bz2", "xz": ".xz"}


def extension_for(media_type: str) -> str:
    """File extension for a blob written in `copy` mode, from its media type (the SPEC's naming table).

    A type is read as a base and its structured suffixes (RFC 6839): `+json`
    names the format, a final `+gzip`/`+zstd` its compression, so
    `…+json+gzip` and `….json+gzip` are `.json.gz`, `tar+gzip` is `.tar.gz`.
    """
    mt = media_type.lower().split(";")[0].strip()
    if mt in (DOCKER_LAYER_GZIP, DOCKER_LAYER_FOREIGN):
        return ".tar.gz"
    base, *suffixes = mt.split("+")
    compression = ""
    if suffixes and suffixes[-1] in _COMPRESSION_SUFFIXES:
        compression = _COMPRESSION_SUFFIXES[suffixes.pop()]
    elif base.endswith((".tgz", ".tar.gz", ".tar.gzip")):
        return ".tar.gz"
    elif base.endswith((".tar.zst", ".tar.zstd")):
        return ".tar.zst"
    fmt = next((s for s in reversed(suffixes) if s in _FORMATS), None)
    if fmt is None:
        for candidate in _FORMATS:
            if base.endswith(("." + candidate, "/" + candidate, "-" + candidate)):
                fmt = candidate
                break
    if fmt is None and base == "text/plain":
        fmt = "txt"
    if fmt is None:
        return compression or ".bin"
    return f".{fmt}{compression}"
