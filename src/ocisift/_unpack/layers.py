"""Which layers to take out of a manifest, and what to call them on disk."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from .._core.bounds import LAYER_INDEX
from .._core.errors import AmbiguousError, NotFoundError, UnsafeContentError, UsageError
from .._core.matching import annotations_match, glob_match, parse_annotation_filters
from .._core.mediatypes import extension_for
from .._core.models import Descriptor, Manifest

Mode = Literal["copy", "extract", "extract-all", "layer-per-dir"]
MODES: tuple[str, ...] = ("copy", "extract", "extract-all", "layer-per-dir")


@dataclass(frozen=True, slots=True)
class LayerSelector:
    media_type: str | None = None
    index: int | None = None
    all: bool = False
    annotations: tuple[tuple[str, str | None], ...] = ()
    title: str | None = None

    def __post_init__(self) -> None:
        if self.index is not None:
            LAYER_INDEX.check(self.index)

    @classmethod
    def build(
        cls,
        media_type: str | None = None,
        index: int | None = None,
        all: bool = False,
        annotations: Sequence[str] | None = None,
        title: str | None = None,
    ) -> LayerSelector:
        if all and index is not None:
            raise UsageError("--all-layers and --layer-index cannot be used together")
        return cls(media_type, index, all, parse_annotation_filters(annotations or ()), title)


def select_layers(manifest: Manifest, sel: LayerSelector, mode: Mode) -> list[tuple[int, Descriptor]]:
    """Positions and descriptors of the chosen layers, in manifest order.

    copy and extract take one layer: the only match, the `index`-th match, or
    with --all-layers (copy) every match. Several matches and neither flag is
    ambiguous (exit 4): never guess, as Flux's "first layer" did silently
    (`--layer-index 0` asks for that). extract-all and layer-per-dir take every
    match unless an index is given.
    """
    matches = [
        (pos, layer)
        for pos, layer in enumerate(manifest.layers)
        if glob_match(sel.media_type, layer.media_type)
        and annotations_match(sel.annotations, layer.annotations)
        and (sel.title is None or layer.title == sel.title)
    ]
    if not matches:
        held = ", ".join(f"[{i}] {d.media_type}" + (f" ({d.title})" if d.title else "") for i, d in enumerate(manifest.layers))
        raise NotFoundError(f"no layer matches the layer selectors; the manifest has: {held or 'no layers'}")
    take_all = sel.all or (mode in ("extract-all", "layer-per-dir") and sel.index is None)
    if take_all:
        if mode == "extract" and len(matches) > 1:
            raise UsageError("--mode extract unpacks one layer; use --mode extract-all or layer-per-dir for several")
        return matches
    if sel.index is None and len(matches) > 1:
        listing = [layer_candidate(n, pos, layer) for n, (pos, layer) in enumerate(matches)]
        lines = "\n".join(f"  --layer-index {c['layerIndex']}: layer {c['position']} {c['mediaType']} "
                          f"{c['size']} B" + (f" {c['title']}" if c.get("title") else "") for c in listing)
        takes = "--all-layers" if mode == "copy" else "--mode extract-all"
        raise AmbiguousError(f"{len(matches)} layers match; take one with --layer-index N, or all with {takes} "
                             f"(or narrow with --layer-media-type, --layer-annotation, --title):\n{lines}",
                             candidates=listing)
    index = sel.index or 0
    if index >= len(matches):
        raise NotFoundError(f"--layer-index {index} is out of range: {len(matches)} layer(s) match")
    return [matches[index]]


def layer_candidate(match_index: int, position: int, layer: Descriptor) -> dict[str, object]:
    out: dict[str, object] = {"layerIndex": match_index, "position": position, "mediaType": layer.media_type,
                              "digest": str(layer.digest), "size": layer.size}
    if layer.title:
        out["title"] = layer.title
    return out


_SAFE_NAME = re.compile(r"^[^/\\\0]+$")


def safe_name(name: str, what: str = "name") -> str:
    """A single path component we are willing to create: no separators, no dot-dot."""
    if not _SAFE_NAME.fullmatch(name) or name in (".", ".."):
        raise UnsafeContentError(f"refusing {what} {name!r}: it must be a plain file name")
    return name


def digest_name(layer: Descriptor) -> str:
    return f"{layer.digest.algorithm}-{layer.digest.hex}"


def blob_file_name(layer: Descriptor, name: str | None = None) -> str:
    """--name, else the title annotation, else the digest with an extension from the media type."""
    if name:
        return safe_name(name, "--name")
    if layer.title:
        return safe_name(layer.title, "title annotation")
    return digest_name(layer) + extension_for(layer.media_type)


_ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar.zst", ".tar.zstd", ".tar")


def layer_dir_name(layer: Descriptor) -> str:
    """layer-per-dir: title annotation (archive suffix dropped), else the digest."""
    if layer.title:
        name = layer.title
        for suffix in _ARCHIVE_SUFFIXES:
            if name.endswith(suffix) and len(name) > len(suffix):
                name = name[: -len(suffix)]
                break
        return safe_name(name, "title annotation")
    return digest_name(layer)
