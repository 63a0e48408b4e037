"""Platforms: parsing `os/arch[/variant][:os.version]` and containerd-style matching.

`os.version` is part of the grammar because CI pipelines ship el8 and el9
builds of one architecture under one index, and nothing else tells them apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .errors import MalformedDocument, UsageError

_ARCH_ALIASES = {
    "x86_64": ("amd64", None),
    "x86-64": ("amd64", None),
    "aarch64": ("arm64", None),
    "armhf": ("arm", "v7"),
    "armel": ("arm", "v6"),
    "i386": ("386", None),
    "i686": ("386", None),
}
_OS_ALIASES = {"macos": "darwin"}
_PART = re.compile(r"^[A-Za-z0-9_.-]+$")


def normalize_arch(arch: str, variant: str | None) -> tuple[str, str]:
    """containerd's rules: arm64 = arm64/v8, amd64 = amd64/v1, arm = arm/v7."""
    arch = arch.lower()
    variant = (variant or "").lower()
    if arch in _ARCH_ALIASES:
        arch, implied = _ARCH_ALIASES[arch]
        variant = variant or (implied or "")
    if variant and variant[0].isdigit():
        variant = "v" + variant
    if (arch == "arm64" and variant in ("v8", "v8.0")) or (arch == "amd64" and variant == "v1"):
        variant = ""
    elif arch == "arm" and variant == "":
        variant = "v7"
    return arch, variant


@dataclass(frozen=True, slots=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None
    os_version: str | None = None
    os_features: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Platform:
        """`linux/arm64`, `linux/arm64/v8`, `linux/arm64/v8:el9`, `windows/amd64:10.0.17763.1`."""
        spec, sep, os_version = text.partition(":")
        parts = spec.split("/")
        if (
            not 2 <= len(parts) <= 3
            or not all(p and _PART.fullmatch(p) for p in parts)
            or (sep and not os_version)
        ):
            raise UsageError(
                f"invalid platform {text!r}: expected os/arch[/variant][:os.version], "
                "for example linux/amd64, linux/arm64/v8, linux/amd64:el9"
            )
        return cls(
            os=parts[0].lower(),
            architecture=parts[1].lower(),
            variant=parts[2].lower() if len(parts) == 3 else None,
            os_version=os_version or None,
        )

    @classmethod
    def from_json(cls, obj: Any, where: str = "platform") -> Platform:
        """An index entry's platform: an object whose every field has its type (an absent or null optional
        field is absent; a wrong-typed one is malformed, as Go's JSON decoding in containerd finds it)."""
        if not isinstance(obj, dict):
            raise MalformedDocument(f"{where}: platform must be an object")
        if not isinstance(obj.get("os"), str) or not isinstance(obj.get("architecture"), str):
            raise MalformedDocument(f"{where}: platform needs string os and architecture")
        return cls._typed(obj, where)

    @classmethod
    def _typed(cls, obj: dict[str, Any], where: str) -> Platform:
        features = obj.get("os.features")
        if features is not None and (not isinstance(features, list) or not all(isinstance(f, str) for f in features)):
            raise MalformedDocument(f"{where}: os.features must be a list of strings")
        for key in ("variant", "os.version"):
            if obj.get(key) is not None and not isinstance(obj[key], str):
                raise MalformedDocument(f"{where}: {key} must be a string")
        return cls(
            os=obj["os"],
            architecture=obj["architecture"],
            variant=obj.get("variant") or None,
            os_version=obj.get("os.version") or None,
            os_features=tuple(features or ()),
        )

    @classmethod
    def from_config(cls, obj: Any, where: str = "config") -> Platform | None:
        """The platform an image config declares at its top level, None when it declares none (no os or no
        architecture); a platform field of the wrong type is malformed, as it is in an index entry."""
        if not isinstance(obj, dict):
            raise MalformedDocument(f"{where}: an image config must be a JSON object")
        for key in ("os", "architecture"):
            if obj.get(key) is not None and not isinstance(obj[key], str):
                raise MalformedDocument(f"{where}: {key} must be a string")
        platform = cls._typed({**obj, "os": obj.get("os") or "", "architecture": obj.get("architecture") or ""},
                              where)
        return platform if platform.os and platform.architecture else None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        if self.os_version:
            out["os.version"] = self.os_version
        if self.os_features:
            out["os.features"] = list(self.os_features)
        return out

    def normalized(self) -> tuple[str, str, str]:
        arch, variant = normalize_arch(self.architecture, self.variant)
        os_name = self.os.lower()
        return _OS_ALIASES.get(os_name, os_name), arch, variant

    def __str__(self) -> str:
        text = f"{self.os}/{self.architecture}"
        if self.variant:
            text += f"/{self.variant}"
        if self.os_version:
            text += f":{self.os_version}"
        return text


def platform_matches(wanted: Platform, candidate: Platform) -> bool:
    """Does `candidate` satisfy what the user asked for in `wanted`?

    os and architecture exact, variant after normalisation, os.version exact
    only when asked for, asked-for os.features a subset of the candidate's.
    """
    if wanted.normalized() != candidate.normalized():
        return False
    if wanted.os_version is not None and wanted.os_version != candidate.os_version:
        return False
    return set(wanted.os_features) <= set(candidate.os_features)
