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
import stat
import tarfile
import tempfile
from collections import deque
from collections.abc import Mapping, Sequence

from .._core import mediatypes as mt
from .._core.builders import manifest_bytes, platform_config
from .._core.digest import Digest
from .._core.errors import NotFoundError, OcisiftError, UnsafeContentError, UsageError
from .._core.models import Descriptor
from .._core.platform import Platform
from .._core.progress import CountingReader, NoProgress, Progress
from .._core.reference import Target
from .._core.sources import CHUNK
from .._stores.base import Pusher, Reader, require
from .._unpack.extract import WHITEOUT_PREFIX
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


MAX_LINK_HOPS = 40  # as pull follows links inside what it unpacks
MAX_LISTED = 10  # refusals named in one message


def _leaves(root: str, rel: str, target: str) -> bool:
    """Does the symlink at `rel` (inside `root`) point outside `root`? Its target is resolved through the
    tree's own links, lexically above them, as pull resolves an artifact's links: `..` past the top, an
    absolute target, or a link on the way that does either, leaves."""
    queue = deque([*rel.split("/")[:-1], *target.split("/")])
    stack: list[str] = []
    hops = 0
    while queue:
        part = queue.popleft()
        if part in ("", "."):
            continue
        if part == "..":
            if not stack:
                return True
            stack.pop()
            continue
        stack.append(part)
        here = os.path.join(root, *stack)
        if os.path.islink(here):
            hops += 1
            inner = os.readlink(here)
            if hops > MAX_LINK_HOPS or inner.startswith("/"):
                return True
            stack.pop()
            queue.extendleft(reversed(inner.split("/")))
    return False


def _refusal(root: str, full: str, rel: str, st: os.stat_result, image_layer: bool) -> str | None:
    """Why pull would not give this entry back, or None when it would."""
    mode = st.st_mode
    if stat.S_ISLNK(mode):
        target = os.readlink(full)
        if target.startswith("/"):
            return f"{rel!r} -> {target!r} is an absolute symlink"
        if _leaves(root, rel, target):
            return f"{rel!r} -> {target!r} is a symlink that leaves the directory"
    elif stat.S_ISFIFO(mode):
        return f"{rel!r} is a FIFO"
    elif stat.S_ISSOCK(mode):
        return f"{rel!r} is a socket"
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return f"{rel!r} is a device node"
    elif not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        return f"{rel!r} is not a file, a directory or a symlink"
    if image_layer and os.path.basename(rel).startswith(WHITEOUT_PREFIX):
        return f"{rel!r} is named as a whiteout, which pull applies to an image layer instead of writing it"
    return None


def _packable(path: str, image_layer: bool) -> list[tuple[str, str]]:
    """Every entry of the directory as (path on disk, name in the tar), sorted; refused whole, naming what
    pull would refuse or not give back, so nothing is published that cannot be read back."""
    root = os.path.realpath(path)  # a directory named through a symlink is packed as the directory
    base = os.path.basename(os.path.normpath(path))
    entries = [(root, base)]
    refused: list[str] = []

    def unreadable(exc: OSError) -> None:
        raise OcisiftError(f"cannot read {exc.filename}: {exc.strerror}")

    for current, dirs, files in os.walk(root, onerror=unreadable):
        dirs.sort()
        for name in [*dirs, *sorted(files)]:
            full = os.path.join(current, name)
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            why = _refusal(root, full, rel, os.lstat(full), image_layer)
            if why is not None:
                refused.append(why)
            entries.append((full, f"{base}/{rel}"))
    if refused:
        more = f"; and {len(refused) - MAX_LISTED} more" if len(refused) > MAX_LISTED else ""
        raise UnsafeContentError(
            f"refusing to push {path}: pull would refuse it or not give it back as it is: "
            f"{'; '.join(refused[:MAX_LISTED])}{more} (move these out, or push the files you mean)")
    return entries


def _tar_directory(path: str, out: str, image_layer: bool = True) -> None:
    """Reproducible: sorted names, fixed times and owners, gzip without a timestamp. Hardlinks inside the
    directory are kept as tar hardlinks; a file whose other names are outside it is packed as its content."""
    entries = _packable(path, image_layer)
    with open(out, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for full, arcname in entries:
            info = tar.gettarinfo(full, arcname=arcname)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0
            if info.isreg():
                with open(full, "rb") as fh:
                    tar.addfile(info, fh)
            else:
                tar.addfile(info)


def _checked_arg(arg: str) -> tuple[str, str | None]:
    """FILE[:MEDIATYPE] as a path that exists and is a regular file or a directory (a FIFO would be waited
    on forever, /dev/zero read forever), and its media type if given."""
    path, media_type = split_file_arg(arg)
    if not os.path.exists(path):
        raise NotFoundError(f"no such file or directory: {path}")
    if not os.path.isdir(path) and not stat.S_ISREG(os.stat(path).st_mode):
        raise UsageError(f"{path} is not a regular file or a directory; push takes files and directories")
    return path, media_type


def check_pushable(files: Sequence[str]) -> None:
    """Refuse, before any store is opened or made, what push would refuse: a missing or special file, a
    directory holding what pull would refuse or not give back."""
    for arg in files:
        path, media_type = _checked_arg(arg)
        if os.path.isdir(path):
            _packable(path, mt.is_image_layer(media_type or mt.OCI_LAYER_GZIP))


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
            path, media_type = _checked_arg(arg)
            title = os.path.basename(os.path.normpath(path))
            if title in titles:
                raise UsageError(f"two files would both be titled {title!r}")
            titles.add(title)
            ann = {mt.ANNOTATION_TITLE: title, **file_annotations.get(title, {})}
            if os.path.isdir(path):
                packed = os.path.join(tmp, f"{len(layers)}.tar.gz")
                layer_type = media_type or mt.OCI_LAYER_GZIP
                _tar_directory(path, packed, mt.is_image_layer(layer_type))
                ann[mt.ANNOTATION_ORAS_UNPACK] = "true"
                layers.append(_push_file(store, pusher, packed, layer_type, ann, progress))
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
