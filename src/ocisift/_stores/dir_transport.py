"""`dir:` stores: skopeo's directory transport (containers-transports(5)).

The format, as containers/image's `directory` package writes and reads it:

- `version`: `Directory Transport Version: 1.1\\n`;
- `manifest.json`: the root manifest or index, its exact bytes (its digest is theirs);
- every other blob in a file named by its digest's hex alone (the algorithm
  is not in the name; a sha512 name has 128 digits, a sha256 one 64);
- with an index copied whole (`skopeo copy --all`), each instance manifest as
  `HEX.manifest.json`;
- `signature-N` and `HEX.signature-N` files, which are ignored here.

There are no names: a directory holds one root, found without a tag. Reading
goes through `SafeDir`, so nothing is read through a link. Writing (copy's
destination) stages everything in a private directory beside the target and,
only when `finish()` is called after success, writes `version` and puts the
directory in place of the target (an atomic exchange where the system has
one). As skopeo does, a target that exists must be empty or a dir: directory
already (its `version` file says so); anything else is refused before a byte
is copied, and an old dir: directory is replaced only by a copy that succeeded.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from .._core import mediatypes as mt
from .._core.digest import Digest, VerifyingReader, verified, verify_bytes
from .._core.errors import MalformedDocument, NotFoundError, OcisiftError, UsageError
from .._core.models import MAX_MANIFEST_BYTES, Descriptor, Index, parse_document
from .._core.permissions import dir_mode, file_mode
from .._core.reference import Target
from .._core.sources import ByteSource
from .._core.streams import copy_stream
from .safefs import SafeDir, exchange_paths

VERSION = b"Directory Transport Version: 1.1\n"
ROOT_MANIFEST = "manifest.json"
MAX_NESTED_INSTANCES = 100_000  # manifests renamed to HEX.manifest.json when an index is written


def instance_name(digest: Digest) -> str:
    return f"{digest.hex}.manifest.json"


class _DirFiles:
    """What a dir: directory holds, by digest: the root in manifest.json, instances, then plain blobs."""

    location: str
    safe: SafeDir

    def _root_digest(self) -> Digest | None:
        raise NotImplementedError

    def _name(self, digest: Digest) -> str | None:
        if digest == self._root_digest():
            return ROOT_MANIFEST
        for name in (instance_name(digest), digest.hex):
            if self.safe.regular(name) is not None:
                return name
        return None

    @contextmanager
    def fetch(self, desc: Descriptor) -> Iterator[VerifyingReader]:
        name = self._name(desc.digest)
        fh = self.safe.open(name) if name is not None else None
        if fh is None:
            raise NotFoundError(f"blob {desc.digest} is missing from {self.location}")
        reader = VerifyingReader(fh, desc.digest, desc.size, what=f"blob {desc.digest.short}")
        try:
            yield reader
        finally:
            reader.close()

    def fetch_manifest(self, desc: Descriptor) -> bytes:
        if desc.size > MAX_MANIFEST_BYTES:
            raise MalformedDocument(
                f"manifest {desc.digest} claims {desc.size} bytes, over the {MAX_MANIFEST_BYTES}-byte limit")
        name = self._name(desc.digest)
        raw = self.safe.read(name, MAX_MANIFEST_BYTES) if name is not None else None
        if raw is None:
            raise NotFoundError(f"manifest {desc.digest} is missing from {self.location}")
        return verify_bytes(raw, desc.digest, desc.size, what=f"manifest {desc.digest.short}")

    def exists(self, desc: Descriptor) -> bool:
        return self._name(desc.digest) is not None

    def stat_blob(self, digest: Digest) -> Descriptor | None:
        name = self._name(digest)
        st = self.safe.regular(name) if name is not None else None
        return Descriptor(mt.OCTET_STREAM, digest, st.st_size) if st is not None else None

    def _pinned_document(self, digest: Digest) -> list[Descriptor]:
        """Rule 1's second half: any manifest or index the directory holds can be pinned."""
        name = self._name(digest)
        raw = self.safe.read(name, MAX_MANIFEST_BYTES) if name is not None else None
        if raw is None:
            return []
        verify_bytes(raw, digest, len(raw), what=f"blob {digest}")
        doc = parse_document(raw, None, what=f"blob {digest}")
        return [Descriptor(doc.media_type, digest, len(raw))]

    def pinned(self, desc: Descriptor) -> str:
        return f"{self.location}@{desc.digest}"


class DirReader(_DirFiles):
    """A dir: directory read in place: its one root (manifest.json), and its blobs by digest."""

    kind = "a dir: directory"

    def __init__(self, path: str) -> None:
        self.path = path
        self.location = f"dir:{path}"
        try:
            self.safe = SafeDir(path)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFoundError(f"no dir: directory at {path}") from None
        try:
            raw = self.safe.read(ROOT_MANIFEST, MAX_MANIFEST_BYTES)
            if raw is None:
                raise NotFoundError(f"{path} is not a dir: directory: it has no manifest.json")
            doc = parse_document(raw, None, what=f"{path}/manifest.json")
        except BaseException:
            self.safe.close()
            raise
        self._root = Descriptor(doc.media_type, Digest.of(raw), len(raw))

    def _root_digest(self) -> Digest | None:
        return self._root.digest

    def roots(self) -> list[Descriptor]:
        return [self._root]

    def resolve(self, target: Target) -> list[Descriptor]:
        if target.tagless:
            return [self._root]
        if target.digest is None:
            return []  # a dir: directory has no names
        if target.digest == self._root.digest:
            return [self._root]
        return self._pinned_document(target.digest)

    def close(self) -> None:
        self.safe.close()


def check_replaceable(target: str, shown: str) -> None:
    """skopeo's rule: a dir: destination that exists must be empty or a dir: directory already."""
    try:
        entries = os.listdir(target)
    except FileNotFoundError:
        return
    except NotADirectoryError:
        raise UsageError(f"{shown} exists and is not a directory; dir: writes a directory") from None
    if not entries:
        return
    old = SafeDir(target)
    try:
        version = old.read("version", 1024) if old.lstat("version") is not None else None
    except OcisiftError:
        version = None  # a link or a special file named version: not one skopeo wrote
    finally:
        old.close()
    if version != VERSION:
        raise UsageError(f"{shown} is not empty and is not a dir: directory (no version file saying "
                         f"{VERSION.decode().strip()!r}); refusing to replace it: write to a new or empty directory")


class DirWriter(_DirFiles):
    """copy's destination: staged in a private sibling directory, put in place of the target by finish()."""

    kind = "a dir: directory being written"

    def __init__(self, path: str) -> None:
        self.display_path = path
        self.location = f"dir:{path}"
        self.target = os.path.realpath(path)  # as skopeo: a link to a directory is written where it leads
        check_replaceable(self.target, path)
        parent = os.path.dirname(self.target)
        os.makedirs(parent, exist_ok=True)
        self.workdir = tempfile.mkdtemp(prefix=".ocisift-dir-", dir=parent)
        self.safe = SafeDir(self.workdir)
        self._root: Descriptor | None = None

    def _root_digest(self) -> Digest | None:
        return None  # until finish(), the root is staged under its hex like every blob

    # -- Reader and RootLister (what has been staged) ------------------------------------------

    def roots(self) -> list[Descriptor]:
        return [self._root] if self._root is not None else []

    def resolve(self, target: Target) -> list[Descriptor]:
        if target.tagless:
            return self.roots()
        return self._pinned_document(target.digest) if target.digest is not None else []

    # -- writing -------------------------------------------------------------------------------

    def push(self, desc: Descriptor, stream: ByteSource) -> None:
        """A verified temporary file renamed to the blob's hex (a manifest too, until finish names it)."""
        if self.exists(desc):
            return
        reader = verified(stream, desc.digest, desc.size, what=f"blob {desc.digest.short}")
        fd, tmp = self.safe.new_file("")
        try:
            os.fchmod(fd, file_mode())
            with os.fdopen(fd, "wb") as out:
                copy_stream(reader, out.write)
            self.safe.rename("", tmp, desc.digest.hex)
        except BaseException:
            self.safe.unlink(tmp)
            raise

    def add_root(self, desc: Descriptor, annotations: Mapping[str, str] | None = None) -> None:
        if self._root is not None and self._root.digest != desc.digest:
            raise UsageError(f"{self.location} holds one image or index: {self._root.digest} and {desc.digest} "
                             "cannot both be its root (it has no place for referrers: copy without --referrers, "
                             "or each image into a directory of its own)")
        self._root = desc

    def finish(self) -> None:
        if self._root is None:
            raise UsageError(f"nothing to write to {self.location}: no image or index was copied")
        root = self._root
        doc = parse_document(self.fetch_manifest(root), root.media_type, what=f"manifest {root.digest}")
        if isinstance(doc, Index):
            self._name_instances(doc)
        self.safe.rename("", root.digest.hex, ROOT_MANIFEST)
        self.safe.write_file("version", VERSION)
        check_replaceable(self.target, self.display_path)  # again: time has passed since the copy began
        os.chmod(self.workdir, dir_mode())
        self.safe.close()
        if not os.path.lexists(self.target):
            os.rename(self.workdir, self.target)
            return
        if not exchange_paths(self.workdir, self.target):
            aside = tempfile.mkdtemp(prefix=".ocisift-dir-old-", dir=os.path.dirname(self.target))
            os.rename(self.target, os.path.join(aside, "old"))
            os.rename(self.workdir, self.target)
            shutil.rmtree(aside, ignore_errors=True)
        # after the exchange the staging name holds the old directory; close() removes it

    def _name_instances(self, index: Index) -> None:
        """Every manifest and index under the root, where skopeo looks for it: `HEX.manifest.json`."""
        stack, seen = list(index.manifests), set[Digest]()
        while stack and len(seen) < MAX_NESTED_INSTANCES:
            child = stack.pop()
            if child.digest in seen or self.safe.regular(child.digest.hex) is None:
                continue  # seen, or not copied (a platform left out)
            seen.add(child.digest)
            if mt.is_index(child.media_type):
                nested = parse_document(self.fetch_manifest(child), child.media_type, what=f"index {child.digest}")
                if isinstance(nested, Index):
                    stack.extend(nested.manifests)
            self.safe.rename("", child.digest.hex, instance_name(child.digest))

    def pinned(self, desc: Descriptor) -> str:
        return f"dir:{self.display_path}@{desc.digest}"

    def close(self) -> None:
        self.safe.close()
        shutil.rmtree(self.workdir, ignore_errors=True)
