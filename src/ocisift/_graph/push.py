"""push, index create and tag: writing artifacts and indexes into any store.

Artifacts follow ORAS: file layers carry org.opencontainers.image.title, a
directory becomes a reproducible tar+gzip marked with the ORAS unpack
annotation, and an artifact with no config gets the empty config.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
import tempfile
from collections.abc import Mapping, Sequence

from .._core import mediatypes as mt
from .._core.builders import manifest_bytes, platform_config
from .._core.digest import Digest
from .._core.errors import NotFoundError, UsageError
from .._core.models import Descriptor
from .._core.platform import Platform
from .._core.progress import CountingReader, NoProgress, Progress
from .._core.reference import Target
from .._core.sources import CHUNK
from .._stores.base import Pusher, Reader, require
from .naming import record_name
from .results import Pushed

DEFAULT_FILE_TYPE = "application/vnd.oci.image.layer.v1.tar"
DEFAULT_ARTIFACT_TYPE = "application/vnd.unknown.artifact.v1"
EMPTY_CONFIG = b"{}"


def split_file_arg(arg: str) -> tuple[str, str | None]:
    """`FILE[:MEDIATYPE]`; a path that exists wins over a colon split."""
    if os.path.exists(arg) or ":" not in arg:
        return arg, None
    path, _, media_type = arg.rpartition(":")
    if not path or "/" not in media_type:
        return arg, None
    return path, media_type


def _digest_file(path: str) -> tuple[Digest, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return Digest("sha256", h.hexdigest()), size


def _tar_directory(path: str, out: str) -> None:
    """Reproducible: sorted names, fixed times and owners, gzip without a timestamp."""
    base = os.path.basename(os.path.normpath(path))
    with open(out, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        entries = [path]
        for root, dirs, files in os.walk(path):
            dirs.sort()
            entries += [os.path.join(root, d) for d in dirs] + [os.path.join(root, f) for f in sorted(files)]
        for full in entries:
            rel = os.path.relpath(full, os.path.dirname(os.path.normpath(path)))
            info = tar.gettarinfo(full, arcname=rel if full != path else base)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0
            if info.isreg():
                with open(full, "rb") as fh:
                    tar.addfile(info, fh)
            else:
                tar.addfile(info)


def _push_file(store: Reader, pusher: Pusher, path: str, media_type: str,
               annotations: Mapping[str, str], progress: Progress) -> Descriptor:
    digest, size = _digest_file(path)
    desc = Descriptor(media_type, digest, size, dict(annotations))
    if not store.exists(desc):
        advance = progress.begin(desc, "push")
        with open(path, "rb") as fh:
            pusher.push(desc, CountingReader(fh, advance))
        progress.end(desc)
    return desc


def push_bytes(store: Reader, pusher: Pusher, data: bytes, media_type: str,
               annotations: Mapping[str, str] | None = None) -> Descriptor:
    """Bytes already in memory, pushed unless the store has them."""
    desc = Descriptor(media_type, Digest.of(data), len(data), dict(annotations or {}))
    if not store.exists(desc):
        pusher.push(desc, io.BytesIO(data))
    return desc


def push_artifact(
    store: Reader,
    target: Target,
    files: Sequence[str],
    *,
    artifact_type: str | None = None,
    annotations: Mapping[str, str] | None = None,
    file_annotations: Mapping[str, Mapping[str, str]] | None = None,
    config: str | None = None,
    platform: Platform | None = None,
    subject: Descriptor | None = None,
    tags: Sequence[str] = (),
    progress: Progress | None = None,
) -> Pushed:
    if not files and config is None:
        raise UsageError("nothing to push: give at least one FILE or DIR, or --config")
    pusher = require(store, Pusher, "be pushed to")
    progress = progress or NoProgress()
    file_annotations = file_annotations or {}
    layers: list[Descriptor] = []
    titles: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="ocisift-push-") as tmp:
        for arg in files:
            path, media_type = split_file_arg(arg)
            if not os.path.exists(path):
                raise NotFoundError(f"no such file or directory: {path}")
            title = os.path.basename(os.path.normpath(path))
            if title in titles:
                raise UsageError(f"two files would both be titled {title!r}")
            titles.add(title)
            ann = {mt.ANNOTATION_TITLE: title, **file_annotations.get(title, {})}
            if os.path.isdir(path):
                packed = os.path.join(tmp, f"{len(layers)}.tar.gz")
                _tar_directory(path, packed)
                ann[mt.ANNOTATION_ORAS_UNPACK] = "true"
                layers.append(_push_file(store, pusher, packed, media_type or mt.OCI_LAYER_GZIP, ann, progress))
            else:
                layers.append(_push_file(store, pusher, path, media_type or DEFAULT_FILE_TYPE, ann, progress))
        if config is not None:
            cpath, ctype = split_file_arg(config)
            with open(cpath, "rb") as fh:
                data = fh.read()
            cfg = push_bytes(store, pusher, data, ctype or mt.OCI_CONFIG, file_annotations.get("$config", {}))
        elif platform is not None:
            cfg = push_bytes(store, pusher, platform_config(platform), mt.OCI_CONFIG)
        else:
            cfg = push_bytes(store, pusher, EMPTY_CONFIG, mt.OCI_EMPTY)
        if artifact_type is None and cfg.media_type in (mt.OCI_EMPTY, mt.OCI_CONFIG):
            artifact_type = DEFAULT_ARTIFACT_TYPE
        merged = {**(annotations or {}), **file_annotations.get("$manifest", {})}
        raw = manifest_bytes(cfg, layers, artifact_type=artifact_type, annotations=merged, subject=subject)
        desc = Descriptor(mt.OCI_MANIFEST, Digest.of(raw), len(raw), platform=platform, artifact_type=artifact_type)
        pusher.push(desc, io.BytesIO(raw))
    applied = record_name(store, target, desc, tags)
    return Pushed(desc, store.pinned(desc), tuple(applied))
