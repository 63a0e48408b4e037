"""Documents ocisift writes, serialised once: their digest is taken over exactly these bytes."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from . import mediatypes as mt
from .models import Descriptor
from .platform import Platform


def platform_config(platform: Platform) -> bytes:
    """A minimal image config that records a platform, so indexes can be composed from it."""
    body = {**platform.to_json(), "rootfs": {"type": "layers", "diff_ids": []}}
    return json.dumps(body, separators=(",", ":")).encode()


def manifest_bytes(
    config: Descriptor,
    layers: Sequence[Descriptor],
    *,
    artifact_type: str | None = None,
    annotations: Mapping[str, str] | None = None,
    subject: Descriptor | None = None,
) -> bytes:
    """An OCI image manifest, serialised once; its digest is taken over exactly these bytes."""
    body: dict[str, Any] = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST}
    if artifact_type:
        body["artifactType"] = artifact_type
    body["config"] = config.to_json()
    body["layers"] = [d.to_json() for d in layers]
    if subject is not None:
        body["subject"] = {"mediaType": subject.media_type, "digest": str(subject.digest), "size": subject.size}
    if annotations:
        body["annotations"] = dict(annotations)
    return json.dumps(body, separators=(",", ":")).encode()


def build_index(
    entries: Sequence[Descriptor],
    *,
    annotations: Mapping[str, str] | None = None,
    artifact_type: str | None = None,
) -> bytes:
    """An OCI image index listing `entries`."""
    body: dict[str, Any] = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX}
    if artifact_type:
        body["artifactType"] = artifact_type
    body["manifests"] = [e.to_json() for e in entries]
    if annotations:
        body["annotations"] = dict(annotations)
    return json.dumps(body, separators=(",", ":")).encode()
