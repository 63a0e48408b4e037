"""`oci-archive:` stores: a layout packed in a tar file.

Reading indexes the tar's members once and reads blobs as windows of the
file. Writing builds the layout in a private directory beside the target
(seeded from the existing archive, if any) and, only when `finish()` is called
after success, packs it to a temporary file and renames it into place, so the
archive is replaced whole or not at all.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import tarfile
import tempfile

from .._core.errors import NotFoundError, UnsafeContentError
from .._core.models import Descriptor
from .._core.permissions import file_mode
from .._core.sources import CHUNK
from .files import ArchiveFiles
from .layout import LayoutReader, LayoutStore, unlink_quietly
from .safefs import FileLock

_LAYOUT_MEMBER = re.compile(r"^(oci-layout|index\.json|blobs/(sha256|sha512)/[a-f0-9]{64,128})$")


class ArchiveReader(LayoutReader):
    """An archive opened for reading: it reads, lists and nothing else."""

    kind = "a layout archive opened for reading"

    def __init__(self, path: str) -> None:
        super().__init__(path, ArchiveFiles(path), scheme="oci-archive")


class ArchiveWriter(LayoutStore):
    """A writable oci-archive: every write lands in a private directory until finish()."""

    kind = "a layout archive"

    def __init__(self, path: str, *, create: bool = True) -> None:
        self.target = os.path.abspath(path)
        if not create and not os.path.isfile(self.target):
            raise NotFoundError(f"no archive at {path}")
        parent = os.path.dirname(self.target)
        os.makedirs(parent, exist_ok=True)
        self.lock = FileLock(self.target)  # another process's write of it ends first; we start from its result
        try:
            self.workdir = tempfile.mkdtemp(prefix=".ocisift-archive-", dir=parent)
        except BaseException:
            self.lock.release()
            raise
        try:
            if os.path.exists(self.target):
                self._seed(ArchiveFiles(self.target))
            LayoutStore.create(self.workdir)
            super().__init__(self.workdir, scheme="oci-archive")
        except BaseException:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.lock.release()
            raise
        self.location = f"oci-archive:{path}"
        self.display_path = path

    def _seed(self, files: ArchiveFiles) -> None:
        """Every layout file of the old archive, symlinked ones too (they are read through the link)."""
        for name in [*files.members, *files.links]:
            if not _LAYOUT_MEMBER.fullmatch(name) or files.resolve(name) is None:
                continue
            dest = os.path.join(self.workdir, *name.split("/"))  # names matched the layout pattern above
            if not os.path.realpath(dest).startswith(os.path.realpath(self.workdir) + os.sep):
                raise UnsafeContentError(f"refusing archive member {name!r}")
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            src = files.open(name)
            if src is None:
                continue
            with src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out, CHUNK)
            member = files.member(name)
            mtime = member.mtime if member is not None else 0.0
            try:
                os.utime(dest, (mtime, mtime))  # a blob's age survives the round trip, so gc's grace means the same
            except (OverflowError, ValueError, OSError):
                pass  # a date past what this system keeps (Go's int64 seconds are not): the blob counts as new

    def pinned(self, desc: Descriptor) -> str:
        return f"oci-archive:{self.display_path}@{desc.digest}"

    def finish(self) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".ocisift-archive-", suffix=".tar", dir=os.path.dirname(self.target))
        os.fchmod(fd, file_mode())  # the archive gets the user's modes, as skopeo's do
        os.close(fd)
        try:
            with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
                for name in ("oci-layout", "index.json"):
                    tar.add(os.path.join(self.workdir, name), arcname=name, recursive=False, filter=_whole_seconds)
                blobs = os.path.join(self.workdir, "blobs")
                for algorithm in sorted(os.listdir(blobs)) if os.path.isdir(blobs) else []:
                    for blob in sorted(os.listdir(os.path.join(blobs, algorithm))):
                        if not blob.startswith("."):
                            tar.add(os.path.join(blobs, algorithm, blob), arcname=f"blobs/{algorithm}/{blob}",
                                    filter=_whole_seconds)
            os.replace(tmp, self.target)
        except BaseException:
            unlink_quietly(tmp)
            raise

    def close(self) -> None:
        try:
            shutil.rmtree(self.workdir, ignore_errors=True)
            super().close()
        finally:
            self.lock.release()


def _whole_seconds(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """A member's time as whole seconds: tarfile writes a float time as str(float), which is `1e+18` or
    `-1e-05` at the edges, a PAX time Go (and so the next read of this archive) refuses."""
    info.mtime = math.floor(info.mtime)
    return info
