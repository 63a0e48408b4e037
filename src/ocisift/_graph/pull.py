"""pull: one manifest, chosen layers, written as files or unpacked, all or nothing."""

from __future__ import annotations

import os

from .._core import mediatypes as mt
from .._core.errors import NotFoundError, UsageError
from .._core.models import Manifest
from .._core.progress import NoProgress, Progress
from .._core.reference import Target
from .._stores.base import Reader, RemoteReader
from .._unpack.extract import ImageTreeBuilder, PathFilter, TreeBuilder
from .._unpack.layers import MODES, LayerSelector, Mode, blob_file_name, layer_dir_name, select_layers
from .._unpack.limits import ExtractLimits
from .._unpack.metadata import RootfsMetadata
from .._unpack.staging import Staging
from .fetch import Prefetcher, fetch_all
from .resolve import resolve_in
from .results import PlannedBlob, PullResult
from .select import Selector
from .trustresults import TrustCheck


def plan_pull(manifest: Manifest, layers: LayerSelector, mode: Mode, output: str, name: str | None) -> list[PlannedBlob]:
    chosen = select_layers(manifest, layers, mode)
    if name and len(chosen) > 1:
        raise UsageError("--name names one file; it cannot be used when several layers are selected")
    plan = []
    for pos, layer in chosen:
        if mode == "copy":
            dest = os.path.join(output, blob_file_name(layer, name))
        elif mode == "layer-per-dir":
            dest = os.path.join(output, layer_dir_name(layer))
        else:
            dest = output
        plan.append(PlannedBlob(pos, layer, dest))
    if mode in ("copy", "layer-per-dir"):
        seen: dict[str, int] = {}
        for p in plan:
            if p.destination in seen:
                raise UsageError(
                    f"layers {seen[p.destination]} and {p.position} would both be written to {p.destination}"
                )
            seen[p.destination] = p.position
    return plan


def pull_from(
    store: Reader,
    target: Target,
    output: str,
    *,
    selector: Selector | None = None,
    layers: LayerSelector | None = None,
    mode: Mode = "copy",
    name: str | None = None,
    include: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
    overwrite: bool = False,
    dry_run: bool = False,
    limits: ExtractLimits | None = None,
    progress: Progress | None = None,
    reference: str | None = None,
    hint: str = "",
    concurrency: int = 4,
    require_xattrs: bool = False,
    trust: TrustCheck | None = None,
) -> PullResult:
    """Select, plan, then fetch the chosen blobs `concurrency` at a time while unpacking goes on (fetch.py).

    Image layers unpack as a root filesystem with its metadata (_unpack/metadata.py); what could not be
    kept (attributes only root may set, device nodes without root) comes back as the result's notes, and
    `require_xattrs` makes a lost extended attribute an error instead. With `trust`, a signature must vouch
    for the root resolved (or the manifest selected under it) before a blob is fetched: the digest verified
    is the digest pulled, since the reference is resolved once (a dry run checks no signature)."""
    progress = progress or NoProgress()
    if mode not in MODES:
        raise UsageError(f"unknown mode {mode!r}: copy, extract, extract-all or layer-per-dir")
    if (include or exclude) and mode == "copy":
        raise UsageError("--include/--exclude apply to extract, extract-all and layer-per-dir")
    resolved = resolve_in(store, target, selector, descend=True, reference=reference, hint=hint)
    assert resolved.selected is not None
    manifest = resolved.selected.manifest
    plan = plan_pull(manifest, layers or LayerSelector(), mode, output, name)
    if dry_run:
        return PullResult(resolved, mode, output, tuple(plan), (), True)
    verification = None
    if trust is not None:
        verification = trust.check(store, resolved.vouched_by, reference=reference)
    for p in plan:
        if p.descriptor.urls and not store.exists(p.descriptor):
            raise NotFoundError(
                f"layer {p.position} ({p.descriptor.digest}) is non-distributable and not in {store.location}: it "
                f"lives at {', '.join(p.descriptor.urls)[:500]}; copy the image with --include-nondistributable to "
                "bring it into the store")
    limits = limits or ExtractLimits()
    path_filter = PathFilter(include, exclude)
    # Several at once, and ahead of unpacking, where fetching waits on a network; one at a time from disk.
    concurrency = max(1, concurrency) if isinstance(store, RemoteReader) else 1
    staging = Staging(output)
    unpacked = _Unpacked()
    try:
        if mode == "copy":
            fetch_all(store, [(p.descriptor, os.path.join(staging.root, os.path.basename(p.destination)))
                              for p in plan], concurrency, progress)
        else:
            blobs = Prefetcher(store, [p.descriptor for p in plan], staging.scratch, concurrency, progress)
            try:
                if mode == "layer-per-dir":
                    budget = [limits.max_bytes]
                    for p in plan:
                        sub = os.path.join(staging.root, os.path.basename(p.destination))
                        os.mkdir(sub)
                        _unpack(blobs, [p], sub, limits, path_filter, overwrite, budget, require_xattrs, unpacked)
                else:
                    unpacked.root_metadata = _unpack(blobs, plan, staging.root, limits, path_filter, overwrite,
                                                     [limits.max_bytes], require_xattrs, unpacked)
            finally:
                blobs.close()
        missing = path_filter.unmatched()
        if missing:
            raise NotFoundError(f"--include {' '.join(missing)} matched nothing in the selected layer(s); "
                                "nothing was written")
        files = staging.commit(keep_root_metadata=unpacked.root_metadata)
    except BaseException:
        staging.abort()
        raise
    return PullResult(resolved, mode, output, tuple(plan), tuple(files), False, tuple(unpacked.notes), verification)


class _Unpacked:
    """What the unpacking of every layer reports: notes of metadata not kept, and whether the output root
    took its metadata from a rootfs's own `./` entry."""

    def __init__(self) -> None:
        self.notes: list[str] = []
        self.root_metadata = False


def _unpack(
    blobs: Prefetcher,
    plan: list[PlannedBlob],
    root: str,
    limits: ExtractLimits,
    path_filter: PathFilter,
    overwrite: bool,
    budget: list[int],
    require_xattrs: bool,
    unpacked: _Unpacked,
) -> bool:
    """Unpack `plan` into `root`; True when the root took a rootfs's `./` metadata."""
    builder: TreeBuilder
    if all(mt.is_image_layer(p.descriptor.media_type) for p in plan):
        image = ImageTreeBuilder(root, metadata=RootfsMetadata(require_xattrs=require_xattrs), limits=limits,
                                 path_filter=path_filter, overwrite=overwrite, budget=budget)
        builder = image
    else:
        image = None
        builder = TreeBuilder(root, limits=limits, path_filter=path_filter, overwrite=overwrite, budget=budget)
    for p in plan:
        with blobs.open(p.descriptor) as stream:
            builder.apply(stream, p.descriptor.media_type, p.position,
                          image_layer=mt.is_image_layer(p.descriptor.media_type))
    builder.finish()
    if image is None:
        return False
    unpacked.notes.extend(image.notes())
    return image.root_metadata_applied
