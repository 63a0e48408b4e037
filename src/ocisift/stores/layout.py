"""OCI image layouts: directories, and tar archives read in place.

Both share one adapter; only the file access differs. Writes (directories
only) go to a temporary file that is verified and renamed, and index.json is
rewritten under a file lock and replaced atomically.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import IO, Protocol

from .. import mediatypes as mt
from ..digest import CHUNK, Digest, VerifyingReader, verify_bytes
from ..errors import NotFoundError, OcisiftError, UsageError
from ..models import MAX_MANIFEST_BYTES, Descriptor, Index, MalformedDocument, parse_document
from ..reference import LayoutReference, Reference
from ..resolution import match_index_entries
from ..streams import copy_stream
from .base import load_document

MAX_INDEX_JSON_BYTES = 512 * 1024 * 1024


class LayoutFiles(Protocol):
    """Read access to the files of a layout, wherever they are kept."""

    description: str

    def read(self, name: str, limit: int) -> bytes | None: ...

    def open(self, name: str) -> IO[bytes] | None: ...

    def exists(self, name: str) -> bool: ...


class DirectoryFiles:
    def __init__(self, root: str) -> None:
        self.root = root
        self.description = root

    def _path(self, name: str) -> str:
        return os.path.join(self.root, *name.split("/"))

    def read(self, name: str, limit: int) -> bytes | None:
        try:
            with open(self._path(name), "rb") as fh:
                # Check the size first: read(limit) would allocate the whole limit up front.
                if os.fstat(fh.fileno()).st_size > limit:
                    raise MalformedDocument(f"{name} in {self.root} is larger than {limit} bytes")
                data = fh.read()
        except FileNotFoundError:
            return None
        if len(data) > limit:
            raise MalformedDocument(f"{name} in {self.root} is larger than {limit} bytes")
        return data

    def open(self, name: str) -> IO[bytes] | None:
        try:
            return open(self._path(name), "rb")
        except FileNotFoundError:
            return None

    def exists(self, name: str) -> bool:
        return os.path.isfile(self._path(name))


class _Slice(io.RawIOBase):
    """A window on an open file: one tar member's data."""

    def __init__(self, fh: IO[bytes], offset: int, size: int) -> None:
        super().__init__()
        self._fh = fh
        self._left = size
        fh.seek(offset)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        if self._left <= 0:
            return 0
        view = memoryview(buffer)[: min(len(buffer), self._left)]
        n = self._fh.readinto(view)
        self._left -= n or 0
        return n or 0

    def close(self) -> None:
        try:
            self._fh.close()
        finally:
            super().close()


class ArchiveFiles:
    """A layout inside a plain tar file, indexed once by header, never unpacked."""

    def __init__(self, path: str) -> None:
        import tarfile

        self.path = path
        self.description = path
        self._members: dict[str, tuple[int, int]] = {}
        try:
            with open(path, "rb") as fh:
                magic = fh.read(4)
                if magic[:2] == b"\x1f\x8b" or magic == b"\x28\xb5\x2f\xfd":
                    raise UsageError(
                        f"{path} is a compressed file; oci-archive: reads plain tar files (decompress it first)"
                    )
            with tarfile.open(path, "r:") as tar:
                for member in tar:
                    if not member.isfile():
                        continue
                    name = member.name
                    while name.startswith("./"):
                        name = name[2:]
                    self._members[name] = (member.offset_data, member.size)
        except tarfile.TarError as exc:
            raise MalformedDocument(f"{path} is not a readable tar archive: {exc}") from None
        except FileNotFoundError:
            raise NotFoundError(f"no archive at {path}") from None

    def read(self, name: str, limit: int) -> bytes | None:
        entry = self._members.get(name)
        if entry is None:
            return None
        if entry[1] > limit:
            raise MalformedDocument(f"{name} in {self.path} is larger than {limit} bytes")
        fh = self.open(name)
        assert fh is not None
        with fh:
            data = fh.read()
        if len(data) > limit:
            raise MalformedDocument(f"{name} in {self.path} is larger than {limit} bytes")
        return data

    def open(self, name: str) -> IO[bytes] | None:
        entry = self._members.get(name)
        if entry is None:
            return None
        return io.BufferedReader(_Slice(open(self.path, "rb"), *entry), CHUNK)

    def exists(self, name: str) -> bool:
        return name in self._members


def blob_name(digest: Digest) -> str:
    return f"blobs/{digest.algorithm}/{digest.hex}"


class LayoutStore:
    """A layout directory or archive behind the Store protocol."""

    def __init__(self, path: str, files: LayoutFiles, *, scheme: str, writable: bool) -> None:
        self.path = path
        self.files = files
        self.scheme = scheme
        self.location = f"{scheme}:{path}"
        self.writable = writable
        self._index: Index | None = None
        layout = files.read("oci-layout", 64 * 1024)
        if layout is None:
            raise NotFoundError(f"{path} is not an OCI layout: no oci-layout file")
        try:
            version = json.loads(layout).get("imageLayoutVersion")
        except (ValueError, AttributeError):
            raise MalformedDocument(f"{path}/oci-layout is not valid JSON") from None
        if not isinstance(version, str):
            raise MalformedDocument(f"{path}/oci-layout has no imageLayoutVersion")

    # -- opening -------------------------------------------------------------

    @classmethod
    def open_directory(cls, path: str) -> LayoutStore:
        if not os.path.isdir(path):
            raise NotFoundError(f"no OCI layout directory at {path}")
        return cls(path, DirectoryFiles(path), scheme="oci", writable=True)

    @classmethod
    def create_directory(cls, path: str) -> LayoutStore:
        """Open a layout directory, creating an empty one if nothing is there."""
        os.makedirs(path, exist_ok=True)
        marker = os.path.join(path, "oci-layout")
        if not os.path.exists(marker):
            _atomic_write(marker, b'{"imageLayoutVersion":"1.0.0"}')
        if not os.path.exists(os.path.join(path, "index.json")):
            _atomic_write(os.path.join(path, "index.json"), _index_bytes([]))
        return cls.open_directory(path)

    # -- reading ---------------------------------------------------------------

    def index(self) -> Index:
        if self._index is None:
            raw = self.files.read("index.json", MAX_INDEX_JSON_BYTES)
            if raw is None:
                raise NotFoundError(f"{self.path} is not an OCI layout: no index.json")
            doc = parse_document(raw, None, what=f"{self.path}/index.json", max_bytes=MAX_INDEX_JSON_BYTES)
            if not isinstance(doc, Index):
                raise MalformedDocument(f"{self.path}/index.json is not an image index")
            self._index = doc
        return self._index

    def roots(self) -> list[Descriptor]:
        return list(self.index().manifests)

    def _candidates(self, ref: LayoutReference) -> list[Descriptor]:
        """index.json entries that could match, typed; huge indexes are pre-filtered on the raw JSON.

        The filter only drops entries that cannot match (no annotation mentions the tag, or another
        digest), so the exact rules in match_index_entries still decide.
        """
        if self._index is not None or ref.tagless:
            return self.roots()
        raw = self.files.read("index.json", MAX_INDEX_JSON_BYTES)
        if raw is None or len(raw) < 1 << 20:
            return self.roots()
        try:
            rows = json.loads(raw).get("manifests") or []
        except (ValueError, AttributeError):
            return self.roots()  # let the full parser report the problem
        if ref.digest is not None:
            needle = str(ref.digest)
            keep = [r for r in rows if isinstance(r, dict) and r.get("digest") == needle]
        else:
            needle = ref.tag if ref.tag is not None else (ref.image.tag if ref.image else None) or ""
            keep = [r for r in rows if isinstance(r, dict) and any(
                isinstance(v, str) and needle in v for v in (r.get("annotations") or {}).values())]
        return [Descriptor.from_json(r, f"{self.path}/index.json entry") for r in keep]

    def resolve(self, ref: Reference) -> list[Descriptor]:
        if not isinstance(ref, LayoutReference):
            raise UsageError(f"{ref} is not a layout reference")
        entries = self._candidates(ref)
        found = match_index_entries(entries, ref)
        if found or ref.digest is None:
            return found
        # Rule 1, second half: any manifest or index in the blob store can be pinned.
        raw = self.files.read(blob_name(ref.digest), MAX_MANIFEST_BYTES)
        if raw is None:
            return []
        verify_bytes(raw, ref.digest, len(raw), what=f"blob {ref.digest}")
        doc = parse_document(raw, None, what=f"blob {ref.digest}")
        return [Descriptor(doc.media_type, ref.digest, len(raw))]

    @contextmanager
    def fetch(self, desc: Descriptor) -> Iterator[VerifyingReader]:
        fh = self.files.open(blob_name(desc.digest))
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
                f"manifest {desc.digest} claims {desc.size} bytes, over the {MAX_MANIFEST_BYTES}-byte limit"
            )
        raw = self.files.read(blob_name(desc.digest), MAX_MANIFEST_BYTES)
        if raw is None:
            raise NotFoundError(f"manifest {desc.digest} is missing from {self.location}")
        return verify_bytes(raw, desc.digest, desc.size, what=f"manifest {desc.digest.short}")

    def exists(self, desc: Descriptor) -> bool:
        return self.files.exists(blob_name(desc.digest))

    def tags(self) -> list[str]:
        seen: list[str] = []
        for entry in self.roots():
            for key in (mt.ANNOTATION_REF_NAME, mt.ANNOTATION_CONTAINERD_NAME):
                value = entry.annotations.get(key)
                if value and value not in seen:
                    seen.append(value)
        return seen

    def referrers(self, desc: Descriptor) -> list[Descriptor]:
        """Manifests listed in index.json whose subject is `desc` (how ORAS stores them)."""
        found: list[Descriptor] = []
        for entry in self.roots():
            if entry.digest == desc.digest or not mt.is_manifest(entry.media_type):
                continue
            try:
                doc = load_document(self, entry)
            except OcisiftError:
                continue
            if doc.subject is not None and doc.subject.digest == desc.digest:
                artifact_type = getattr(doc, "effective_artifact_type", None) or doc.artifact_type
                found.append(
                    Descriptor(entry.media_type, entry.digest, entry.size, doc.annotations, None, artifact_type)
                )
        return found

    def pinned(self, desc: Descriptor) -> str:
        return f"{self.location}@{desc.digest}"

    def close(self) -> None:
        self._index = None

    # -- writing (directories) -------------------------------------------------

    def _require_writable(self) -> None:
        if not self.writable:
            raise UsageError(f"{self.location} is read-only here")

    def push(self, desc: Descriptor, stream: IO[bytes]) -> None:
        """Write a blob through a verified temporary file; an existing blob is kept."""
        self._require_writable()
        final = os.path.join(self.path, "blobs", desc.digest.algorithm, desc.digest.hex)
        if os.path.exists(final):
            return
        os.makedirs(os.path.dirname(final), exist_ok=True)
        if getattr(stream, "verifies", None) == desc.digest:
            reader = stream  # already checked as it streams: hashing twice would halve the speed
        else:
            reader = VerifyingReader(stream, desc.digest, desc.size, what=f"blob {desc.digest.short}")
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=os.path.dirname(final))
        try:
            with os.fdopen(fd, "wb") as out:
                copy_stream(reader, out.write)  # its last read is where a digest or size mismatch is raised
            os.replace(tmp, final)
        except BaseException:
            _unlink_quietly(tmp)
            raise

    def push_bytes(self, data: bytes, media_type: str, **fields: object) -> Descriptor:
        desc = Descriptor(media_type, Digest.of(data), len(data), **fields)  # type: ignore[arg-type]
        self.push(desc, io.BytesIO(data))
        return desc

    def tag(self, desc: Descriptor, tag: str | None, annotations: Mapping[str, str] | None = None) -> None:
        extra = dict(annotations or {})
        if tag is None:
            self.add_entry(desc, extra)
            return
        extra[mt.ANNOTATION_REF_NAME] = tag
        self.add_entry(desc, extra, replace_ref=tag)

    def mount(self, desc: Descriptor, source: object) -> bool:
        return False  # a layout has nothing to mount from: blobs are copied

    def finish(self) -> None:
        pass  # directory writes are already in place

    def add_entry(
        self, desc: Descriptor, annotations: Mapping[str, str] | None = None, *, replace_ref: str | None = None
    ) -> None:
        """Record a root in index.json under the layout lock, replacing the file atomically."""
        self._require_writable()
        from filelock import FileLock

        entry = Descriptor(
            desc.media_type, desc.digest, desc.size, {**desc.annotations, **(annotations or {})},
            desc.platform, desc.artifact_type,
        )
        with FileLock(os.path.join(self.path, ".index.json.lock"), timeout=120):
            raw = self.files.read("index.json", MAX_INDEX_JSON_BYTES) or _index_bytes([])
            current = json.loads(raw)
            manifests = [m for m in current.get("manifests", []) if isinstance(m, dict)]
            if replace_ref is not None:
                manifests = [
                    m for m in manifests
                    if (m.get("annotations") or {}).get(mt.ANNOTATION_REF_NAME) != replace_ref
                ]
            new = entry.to_json()
            if new not in manifests:
                manifests.append(new)
            current["manifests"] = manifests
            current["schemaVersion"] = 2
            current.setdefault("mediaType", mt.OCI_INDEX)
            _atomic_write(os.path.join(self.path, "index.json"), json.dumps(current, indent=2).encode() + b"\n")
            self._index = None


def untag_layout(store: LayoutStore, tag: str) -> int:
    """Drop index.json entries named `tag` (short ref.name, or the tag of a full name); blobs stay until gc."""
    from filelock import FileLock

    from ..resolution import full_name_of

    store._require_writable()
    with FileLock(os.path.join(store.path, ".index.json.lock"), timeout=120):
        current = json.loads(store.files.read("index.json", MAX_INDEX_JSON_BYTES) or _index_bytes([]))
        kept, dropped = [], 0
        for m in current.get("manifests", []):
            ann = m.get("annotations") or {}
            ref_name = ann.get(mt.ANNOTATION_REF_NAME)
            full = full_name_of(ref_name) or full_name_of(ann.get(mt.ANNOTATION_CONTAINERD_NAME))
            if ref_name == tag or (full is not None and str(full) == tag):
                dropped += 1
            else:
                kept.append(m)
        if not dropped:
            raise NotFoundError(f"tag {tag} not found in {store.location}")
        current["manifests"] = kept
        _atomic_write(os.path.join(store.path, "index.json"), json.dumps(current, indent=2).encode() + b"\n")
        store._index = None
    return dropped


def gc_layout(store: LayoutStore, *, grace_seconds: float = 600.0, dry_run: bool = False) -> tuple[list[str], int]:
    """Remove blobs nothing in index.json reaches; returns (removed digests, kept count).

    Blobs younger than `grace_seconds` are kept: a push writes its blobs before
    it records the index.json entry that makes them reachable.
    """
    import time

    from filelock import FileLock

    from ..select import walk

    store._require_writable()
    with FileLock(os.path.join(store.path, ".index.json.lock"), timeout=120):
        store._index = None
        reachable: set[str] = set()
        for root in store.roots():
            for desc, doc, _ in walk(root, lambda d: load_document(store, d)):
                reachable.add(str(desc.digest))
                for blob in (getattr(doc, "config", None), *getattr(doc, "layers", ())):
                    if blob is not None:
                        reachable.add(str(blob.digest))
        removed: list[str] = []
        kept = 0
        now = time.time()
        blobs = os.path.join(store.path, "blobs")
        for algorithm in sorted(os.listdir(blobs)) if os.path.isdir(blobs) else []:
            folder = os.path.join(blobs, algorithm)
            for name in sorted(os.listdir(folder)):
                path = os.path.join(folder, name)
                digest = f"{algorithm}:{name}"
                if name.startswith(".") or digest in reachable or now - os.path.getmtime(path) < grace_seconds:
                    kept += 1
                    continue
                removed.append(digest)
                if not dry_run:
                    os.unlink(path)
    return removed, kept


def _index_bytes(manifests: list[dict]) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": manifests}, indent=2).encode()


def _atomic_write(path: str, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=os.path.dirname(path) or ".")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


__all__ = ["ArchiveFiles", "DirectoryFiles", "LayoutStore", "gc_layout", "untag_layout"]
