"""What the algorithms return: plain values, importable without the algorithms themselves."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .._core.models import Descriptor
from .resolve import Resolved
from .trustresults import Verification


@dataclass(frozen=True, slots=True)
class PlannedBlob:
    position: int
    descriptor: Descriptor
    destination: str

    def to_json(self) -> dict[str, Any]:
        return {
            "layer": self.position,
            "digest": str(self.descriptor.digest),
            "size": self.descriptor.size,
            "mediaType": self.descriptor.media_type,
            "destination": self.destination,
        }


@dataclass(frozen=True, slots=True)
class Deleted:
    """A deleted manifest, and whether its blobs stay behind until `gc` (stores that collect their own)."""

    descriptor: Descriptor
    blobs_stay: bool

    @property
    def digest(self) -> str:
        return str(self.descriptor.digest)

    def to_json(self) -> dict[str, Any]:
        return {**self.descriptor.to_json(), "blobsNeedGc": self.blobs_stay}


@dataclass(frozen=True, slots=True)
class PullResult:
    resolved: Resolved
    mode: str
    output: str
    plan: tuple[PlannedBlob, ...]
    files: tuple[str, ...] = field(default=())
    dry_run: bool = False
    notes: tuple[str, ...] = field(default=())  # what a rootfs unpack could not keep (metadata.py)
    verification: Verification | None = None  # the signature that vouched for what was pulled, when asked

    @property
    def revision(self) -> str:
        """Flux's form: `<tag>@sha256:…`, a bare digest when pulled by digest or tagless."""
        digest = str(self.resolved.descriptor.digest)
        tag = self.resolved.target.named_tag
        return f"{tag}@{digest}" if tag else digest

    def to_json(self) -> dict[str, Any]:
        return {
            "reference": self.resolved.reference,
            "revision": self.revision,
            "digest": str(self.resolved.descriptor.digest),
            "root": str(self.resolved.root.digest),
            "pinned": self.resolved.pinned,
            "mode": self.mode,
            "output": self.output,
            "dryRun": self.dry_run,
            "blobs": [p.to_json() for p in self.plan],
            "files": list(self.files),
            "notes": list(self.notes),
            "verification": self.verification.to_json() if self.verification else None,
        }


@dataclass
class CopyResult:
    """What moved. Each blob and manifest is counted once, however often the graph mentions it."""

    source: str
    destination: str
    root: Descriptor | None = None
    copied: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    mounted: list[str] = field(default_factory=list)
    referrers: list[str] = field(default_factory=list)  # referrer manifests carried along (copied or there)
    referrer_indexes: list[str] = field(default_factory=list)  # subjects whose source referrer index was adopted
    bytes_copied: int = 0
    unchanged: bool = False  # the destination's tag named the source's content already: nothing was read
    # (with referrers, those that arrived since are in `referrers` even so)
    tag: str | None = None  # the tag copied, when a range or a repository's tags chose it
    external: list[str] = field(default_factory=list)  # non-distributable blobs left at their URLs (not copied)
    converted: dict[str, str] = field(default_factory=dict)  # --format oci: source digest -> new digest
    docker_documents: int = 0  # Docker-typed manifests and lists written as they are
    notes: list[str] = field(default_factory=list)  # what the user should know: said on stderr and in JSON
    verification: Verification | None = None  # the signature that vouched for the source, when asked

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source, "destination": self.destination,
                               "copied": self.copied, "skipped": self.skipped, "mounted": self.mounted,
                               "referrers": self.referrers, "referrerIndexes": self.referrer_indexes,
                               "bytesCopied": self.bytes_copied,
                               "unchanged": self.unchanged, "external": self.external,
                               "converted": self.converted, "notes": self.notes}
        if self.tag is not None:
            out["tag"] = self.tag
        if self.verification is not None:
            out["verification"] = self.verification.to_json()
        if self.root is not None:
            out.update({"digest": str(self.root.digest), "mediaType": self.root.media_type, "size": self.root.size})
        return out


@dataclass(frozen=True, slots=True)
class Pushed:
    descriptor: Descriptor
    reference: str
    tags: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"descriptor": self.descriptor.to_json(), "reference": self.reference, "tags": list(self.tags)}


@dataclass(frozen=True, slots=True)
class GcResult:
    removed: tuple[str, ...]
    kept: int
    dry_run: bool

    def to_json(self) -> dict[str, object]:
        return {"removed": list(self.removed), "kept": self.kept, "dryRun": self.dry_run}
