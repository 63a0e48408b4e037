"""Typed, frozen views of OCI documents that keep the exact bytes they came from.

A digest is always computed over `Document.raw`; the parsed fields are for
reading only and are never serialised back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from . import jsontext
from . import mediatypes as mt
from .digest import Digest
from .errors import MalformedDocument, OcisiftError
from .platform import Platform

MAX_MANIFEST_BYTES = 4 * 1024 * 1024
_EMPTY: Mapping[str, str] = MappingProxyType({})


def _annotations(value: Any, where: str) -> Mapping[str, str]:
    if value is None:
        return _EMPTY
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise MalformedDocument(f"{where}: annotations must be an object of strings")
    return MappingProxyType(dict(value))


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: Digest
    size: int
    annotations: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    platform: Platform | None = None
    artifact_type: str | None = None
    urls: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, obj: Any, where: str = "descriptor") -> Descriptor:
        if not isinstance(obj, dict):
            raise MalformedDocument(f"{where}: expected an object")
        media_type = obj.get("mediaType")
        digest = obj.get("digest")
        size = obj.get("size")
        if not isinstance(media_type, str) or not media_type:
            raise MalformedDocument(f"{where}: missing mediaType")
        if not isinstance(digest, str):
            raise MalformedDocument(f"{where}: missing digest")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise MalformedDocument(f"{where}: size must be a non-negative integer")
        try:
            parsed = Digest.parse(digest)
        except OcisiftError as exc:
            raise MalformedDocument(f"{where}: {exc.message}") from None
        platform = obj.get("platform")
        artifact_type = obj.get("artifactType")
        if artifact_type is not None and not isinstance(artifact_type, str):
            raise MalformedDocument(f"{where}: artifactType must be a string")
        urls = obj.get("urls") or []
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise MalformedDocument(f"{where}: urls must be a list of strings")
        return cls(
            media_type=media_type,
            digest=parsed,
            size=size,
            annotations=_annotations(obj.get("annotations"), where),
            platform=Platform.from_json(platform, where) if platform is not None else None,
            artifact_type=artifact_type,
            urls=tuple(urls),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": str(self.digest), "size": self.size}
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform:
            out["platform"] = self.platform.to_json()
        if self.urls:
            out["urls"] = list(self.urls)
        return out

    @property
    def title(self) -> str | None:
        return self.annotations.get(mt.ANNOTATION_TITLE)


@dataclass(frozen=True, slots=True)
class Manifest:
    raw: bytes
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    annotations: Mapping[str, str]
    artifact_type: str | None
    subject: Descriptor | None

    @property
    def blobs(self) -> tuple[Descriptor, ...]:
        """Config first, then the layers: every blob this manifest needs."""
        return (self.config, *self.layers)

    @property
    def effective_artifact_type(self) -> str | None:
        """artifactType, else the config media type (the OCI 1.1 rule)."""
        if self.artifact_type:
            return self.artifact_type
        if self.config.media_type not in mt.CONFIG_TYPES:
            return self.config.media_type
        return None


@dataclass(frozen=True, slots=True)
class Index:
    raw: bytes
    media_type: str
    manifests: tuple[Descriptor, ...]
    annotations: Mapping[str, str]
    artifact_type: str | None
    subject: Descriptor | None

    @property
    def effective_artifact_type(self) -> str | None:
        """An index has no config to fall back on: its artifactType or nothing."""
        return self.artifact_type

    @property
    def children(self) -> tuple[Descriptor, ...]:
        """The entries that are themselves manifests or indexes (what a graph walk descends into)."""
        return tuple(d for d in self.manifests if mt.is_index(d.media_type) or mt.is_manifest(d.media_type))


Document = Manifest | Index


def _optional_str(obj: dict[str, Any], key: str, what: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise MalformedDocument(f"{what}: {key} must be a string")
    return value


def _load_json(raw: bytes, what: str, max_bytes: int = MAX_MANIFEST_BYTES) -> dict[str, Any]:
    if len(raw) > max_bytes:
        raise MalformedDocument(f"{what} is {len(raw)} bytes, over the {max_bytes}-byte limit for manifests")
    obj = jsontext.document(raw, what)
    if not isinstance(obj, dict):
        raise MalformedDocument(f"{what} is not a JSON object")
    return obj


def parse_document(raw: bytes, media_type: str | None = None, what: str = "document",
                   max_bytes: int = MAX_MANIFEST_BYTES) -> Document:
    """Parse manifest or index bytes; `media_type` is the descriptor's claim, checked against the body.

    `max_bytes` is raised only for a layout's own index.json, which is not a fetched manifest.
    """
    obj = _load_json(raw, what, max_bytes)
    has_layers = "layers" in obj or "config" in obj
    has_manifests = "manifests" in obj
    if has_layers and has_manifests:
        raise MalformedDocument(f"{what} claims to be both an image manifest and an index")
    body_type = obj.get("mediaType")
    if body_type is not None and not isinstance(body_type, str):
        raise MalformedDocument(f"{what}: mediaType must be a string")
    if body_type and media_type and body_type != media_type:
        raise MalformedDocument(f"{what}: descriptor says {media_type} but the document says {body_type}")
    kind = body_type or media_type
    if kind is None:
        kind = mt.OCI_INDEX if has_manifests else mt.OCI_MANIFEST
    if mt.is_index(kind) or (kind not in mt.MANIFEST_TYPES and has_manifests):
        if has_layers:
            raise MalformedDocument(f"{what}: an index must not carry config or layers")
        entries = obj.get("manifests")
        if entries is None:  # Docker 25 writes "manifests": null for an empty layout
            entries = []
        if not isinstance(entries, list):
            raise MalformedDocument(f"{what}: manifests must be a list")
        return Index(
            raw=raw,
            media_type=kind,
            manifests=tuple(Descriptor.from_json(e, f"{what} manifests[{i}]") for i, e in enumerate(entries)),
            annotations=_annotations(obj.get("annotations"), what),
            artifact_type=_optional_str(obj, "artifactType", what),
            subject=Descriptor.from_json(obj["subject"], f"{what} subject") if obj.get("subject") else None,
        )
    if mt.is_manifest(kind) or has_layers:
        if has_manifests:
            raise MalformedDocument(f"{what}: an image manifest must not carry manifests")
        if "config" not in obj:
            raise MalformedDocument(f"{what}: image manifest without config")
        layers = obj.get("layers", [])
        if not isinstance(layers, list):
            raise MalformedDocument(f"{what}: layers must be a list")
        return Manifest(
            raw=raw,
            media_type=kind,
            config=Descriptor.from_json(obj["config"], f"{what} config"),
            layers=tuple(Descriptor.from_json(e, f"{what} layers[{i}]") for i, e in enumerate(layers)),
            annotations=_annotations(obj.get("annotations"), what),
            artifact_type=_optional_str(obj, "artifactType", what),
            subject=Descriptor.from_json(obj["subject"], f"{what} subject") if obj.get("subject") else None,
        )
    raise MalformedDocument(f"{what}: media type {kind!r} is neither an image manifest nor an index")


def parse_config_platform(raw: bytes, media_type: str | None = None, what: str = "config") -> Platform | None:
    """The platform a config declares. An image config (`media_type` one of CONFIG_TYPES) is held to its
    types: not JSON, not an object, or a platform field of the wrong type is malformed (exit 5), as the
    same field in an index entry is; one without os or architecture declares no platform. Any other
    config (an artifact's) is no platform's authority: what it holds is read if it fits, else ignored."""
    if media_type in mt.CONFIG_TYPES:
        return Platform.from_config(jsontext.document(raw, what), what)
    try:
        obj = jsontext.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("os"), str) or not isinstance(obj.get("architecture"), str):
        return None
    features = obj.get("os.features")
    if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
        features = []
    return Platform(
        os=obj["os"],
        architecture=obj["architecture"],
        variant=obj.get("variant") if isinstance(obj.get("variant"), str) else None,
        os_version=obj.get("os.version") if isinstance(obj.get("os.version"), str) else None,
        os_features=tuple(features),
    )


def referrer_descriptor(desc: Descriptor, doc: Manifest | Index) -> Descriptor:
    """How a referrer is listed (the referrers API's form): its artifactType and annotations on the descriptor."""
    return Descriptor(desc.media_type, desc.digest, desc.size, doc.annotations, None, doc.effective_artifact_type)
