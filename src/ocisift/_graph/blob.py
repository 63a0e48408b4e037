"""blob get: one blob by digest, verified as it streams, to a file (whole or not at all) or a stream."""

from __future__ import annotations

import os
import tempfile
from typing import BinaryIO

from .._core.digest import Digest
from .._core.errors import NotFoundError
from .._core.models import Descriptor
from .._core.permissions import file_mode
from .._core.progress import NoProgress, Progress
from .._core.streams import copy_stream
from .._stores.base import BlobStatter, Reader, require


def blob_descriptor(store: Reader, digest: Digest) -> Descriptor:
    found = require(store, BlobStatter, "fetch blobs by digest").stat_blob(digest)
    if found is None:
        raise NotFoundError(f"blob {digest} is not in {store.location}")
    return found


def blob_to_stream(store: Reader, desc: Descriptor, out: BinaryIO, progress: Progress | None = None) -> None:
    """Bytes go out as they arrive and are checked; a mismatch is raised after the last of them (exit 5),
    so whoever reads the stream must look at the exit status, as with `curl | tar`."""
    progress = progress or NoProgress()
    with store.fetch(desc) as reader:
        reader.on_read = progress.begin(desc, "fetch")
        copy_stream(reader, out.write)
    out.flush()
    progress.end(desc)


def blob_to_file(store: Reader, desc: Descriptor, path: str, progress: Progress | None = None) -> None:
    """Written beside `path` under a temporary name and renamed once verified: `path` is never partial."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".ocisift-blob-", dir=folder)
    try:
        os.fchmod(fd, file_mode())
        with os.fdopen(fd, "wb") as out:
            blob_to_stream(store, desc, out, progress)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
