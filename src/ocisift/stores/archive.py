"""`oci-archive:` stores: a layout packed in a tar file.

Reading indexes the tar's members once and reads blobs as windows of the
file. Writing builds the layout in a private directory (seeded from the
existing archive, if any) and, only when `finish()` is called after success,
packs it to a temporary file beside the target and renames it into place.
"""

from __future__ import annotations

import os
import re
import shutil
import tarfile
import tempfile

from ..digest import CHUNK
from ..errors import UnsafeContentError
from .layout import ArchiveFiles, LayoutStore

_LAYOUT_MEMBER = re.compile(r"^(oci-layout|index\.json|blobs/(sha256|sha512)/[a-f0-9]{64,128})$")


def open_archive(path: str) -> LayoutStore:
    return LayoutStore(path, ArchiveFiles(path), scheme="oci-archive", writable=False)


class ArchiveWriter(LayoutStore):
    """A writable oci-archive: all writes land in a private directory until finish()."""

    def __init__(self, path: str) -> None:
        self.target = os.path.abspath(path)
        parent = os.path.dirname(self.target)
        os.makedirs(parent, exist_ok=True)
        self.workdir = tempfile.mkdtemp(prefix=".ocisift-archive-", dir=parent)
        try:
            if os.path.exists(self.target):
                self._seed(ArchiveFiles(self.target))
            store = LayoutStore.create_directory(self.workdir)
        except BaseException:
            shutil.rmtree(self.workdir, ignore_errors=True)
            raise
        super().__init__(store.path, store.files, scheme="oci-archive", writable=True)
        self.path = self.workdir
        self.location = f"oci-archive:{path}"
        self.display_path = path

    def _seed(self, files: ArchiveFiles) -> None:
        for name in list(files._members):
            if not _LAYOUT_MEMBER.match(name):
                continue
            dest = os.path.join(self.workdir, *name.split("/"))  # names matched the layout pattern above
            if not os.path.realpath(dest).startswith(os.path.realpath(self.workdir) + os.sep):
                raise UnsafeContentError(f"refusing archive member {name!r}")
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            src = files.open(name)
            assert src is not None
            with src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out, CHUNK)

    def pinned(self, desc) -> str:  # type: ignore[no-untyped-def]
        return f"oci-archive:{self.display_path}@{desc.digest}"

    def finish(self) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".ocisift-archive-", suffix=".tar", dir=os.path.dirname(self.target))
        os.close(fd)
        try:
            with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
                for name in ("oci-layout", "index.json"):
                    tar.add(os.path.join(self.workdir, name), arcname=name, recursive=False)
                blobs = os.path.join(self.workdir, "blobs")
                for algorithm in sorted(os.listdir(blobs)):
                    for blob in sorted(os.listdir(os.path.join(blobs, algorithm))):
                        if not blob.startswith("."):
                            tar.add(os.path.join(blobs, algorithm, blob), arcname=f"blobs/{algorithm}/{blob}")
            os.replace(tmp, self.target)
        except BaseException:
            os.unlink(tmp)
            raise

    def close(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)
        super().close()
