"""OCI image layouts: reading any layout's files, and writing layout directories.

`LayoutReader` is the read side over `LayoutFiles` (a directory or a tar read
in place). `LayoutStore` adds what a directory can do: blobs go to a temporary
file that is verified and renamed, and every change to index.json goes through
`edit_index`: under a file lock, read, change, replace atomically.
"""

from __future__ import annotations

import io
import json
import os
import stat
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from .._core import jsontext
from .._core import mediatypes as mt
from .._core.builders import build_index
from .._core.digest import Digest, VerifyingReader, verified, verify_bytes
from .._core.errors import MalformedDocument, NotFoundError, OcisiftError
from .._core.models import MAX_MANIFEST_BYTES, Descriptor, Index, Manifest, parse_document, referrer_descriptor
from .._core.names import is_named, is_referrers_tag, match_index_entries, referrers_tag, replaced_by, tags_of
from .._core.permissions import file_mode
from .._core.reference import Target
from .._core.sources import ByteSource
from .._core.streams import copy_stream
from .files import DirectoryFiles, LayoutFiles

MAX_INDEX_JSON_BYTES = jsontext.MAX_DECODED_BYTES  # read whole: no more than is ever parsed
LOCK_TIMEOUT = 120.0
LAYOUT_MARKER = b'{"imageLayoutVersion":"1.0.0"}'
LOCK_NAME = ".index.json.lock"  # every writer of a layout's index.json takes an flock on it


def blob_name(digest: Digest) -> str:
    return f"blobs/{digest.algorithm}/{digest.hex}"


class LayoutReader:
    """Any layout, read-only: resolution rules over index.json, blobs by digest."""

    kind = "a layout"

    def __init__(self, path: str, files: LayoutFiles, *, scheme: str) -> None:
        self.path = path
        self.files = files
        self.scheme = scheme
        self.location = f"{scheme}:{path}"
        self._index: Index | None = None
        # for the index read: referrer entries by subject, and fallback-tagged indexes by tag
        self._referrers: tuple[Index, dict[Digest, list[Descriptor]], dict[str, Descriptor]] | None = None
        marker = files.read("oci-layout", 64 * 1024)
        if marker is None:
            raise NotFoundError(f"{path} is not an OCI layout: no oci-layout file")
        try:
            version = jsontext.loads(marker).get("imageLayoutVersion")
        except (ValueError, AttributeError):
            raise MalformedDocument(f"{path}/oci-layout is not valid JSON") from None
        if not isinstance(version, str):
            raise MalformedDocument(f"{path}/oci-layout has no imageLayoutVersion")

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

    def _candidates(self, target: Target) -> list[Descriptor]:
        """index.json entries that could match, typed; huge indexes are pre-filtered on the raw JSON.

        The filter only drops entries that cannot match (no annotation mentions the tag, or another
        digest), so the exact rules in match_index_entries still decide.
        """
        if self._index is not None or target.tagless:
            return self.roots()
        raw = self.files.read("index.json", MAX_INDEX_JSON_BYTES)
        if raw is None or len(raw) < 1 << 20:
            return self.roots()
        try:
            rows = jsontext.loads(raw).get("manifests") or []
        except (ValueError, AttributeError):
            return self.roots()  # let the full parser report the problem
        if not isinstance(rows, list):
            return self.roots()
        if target.digest is not None:
            needle = str(target.digest)
            keep = [r for r in rows if isinstance(r, dict) and r.get("digest") == needle]
        else:
            needle = target.named_tag or ""
            keep = [r for r in rows if isinstance(r, dict) and isinstance(r.get("annotations"), dict) and any(
                isinstance(v, str) and needle in v for v in r["annotations"].values())]
        return [Descriptor.from_json(r, f"{self.path}/index.json entry") for r in keep]

    def resolve(self, target: Target) -> list[Descriptor]:
        found = match_index_entries(self._candidates(target), target)
        if found or target.digest is None:
            return found
        # Rule 1, second half: any manifest or index in the blob store can be pinned.
        raw = self.files.read(blob_name(target.digest), MAX_MANIFEST_BYTES)
        if raw is None:
            return []
        verify_bytes(raw, target.digest, len(raw), what=f"blob {target.digest}")
        doc = parse_document(raw, None, what=f"blob {target.digest}")
        return [Descriptor(doc.media_type, target.digest, len(raw))]

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

    def stat_blob(self, digest: Digest) -> Descriptor | None:
        size = self.files.size(blob_name(digest))
        return Descriptor(mt.OCTET_STREAM, digest, size) if size is not None else None

    def tags(self, limit: int | None = None) -> list[str]:
        return tags_of(self.roots())[:limit]

    def referrers(self, desc: Descriptor) -> list[Descriptor]:
        """Manifests whose subject is `desc`: index.json entries with that subject (how ORAS and ocisift
        store them), and the entries of the index tagged `sha256-<hex>` (the referrers tag schema, as
        regclient writes it into layouts).

        The entries are read once per index.json read and kept by subject, so listing the referrers of
        every manifest of a mirror costs one pass over index.json, not one per subject. An entry that
        cannot be read is no referrer; a fallback index that cannot be read is an error, since
        skipping it would hide every referrer it lists.
        """
        index = self.index()
        if self._referrers is None or self._referrers[0] is not index:
            self._referrers = (index, *self._subjects_of(index))
        _, by_subject, fallbacks = self._referrers
        found: list[Descriptor] = list(by_subject.get(desc.digest, ()))
        fallback = referrers_tag(desc.digest)
        entry = fallbacks.get(fallback)
        if entry is not None:
            listed = parse_document(self.fetch_manifest(entry), entry.media_type, what=f"index {fallback}")
            if isinstance(listed, Index):
                found.extend(d for d in listed.manifests if d.digest != desc.digest)
        unique: dict[Digest, Descriptor] = {}
        for d in found:
            unique.setdefault(d.digest, d)
        return list(unique.values())

    def peek_referrers(self, subject: Descriptor) -> Digest | None:
        """From index.json, with no request: the digest of `referrer_index`."""
        raw = self.referrer_index(subject)
        return Digest.of(raw) if raw is not None else None

    def referrer_index(self, subject: Descriptor) -> bytes | None:
        """The fallback tag's index when it lists exactly the subject's referrers (as a mirror adopts its
        source's), else an index of them made here; None when there are none."""
        listed = self.referrers(subject)
        if not listed:
            return None
        assert self._referrers is not None  # filled by referrers()
        entry = self._referrers[2].get(referrers_tag(subject.digest))
        if entry is not None:
            raw = self.fetch_manifest(entry)
            doc = parse_document(raw, entry.media_type, what=f"index {referrers_tag(subject.digest)}")
            if isinstance(doc, Index) and {d.digest for d in doc.manifests if d.digest != subject.digest} == \
                    {d.digest for d in listed}:
                return raw
        return build_index(listed)

    def _subjects_of(self, index: Index) -> tuple[dict[Digest, list[Descriptor]], dict[str, Descriptor]]:
        by_subject: dict[Digest, list[Descriptor]] = {}
        fallbacks: dict[str, Descriptor] = {}
        for entry in index.manifests:
            name = entry.annotations.get(mt.ANNOTATION_REF_NAME)
            if mt.is_index(entry.media_type) and name is not None and is_referrers_tag(name):
                fallbacks.setdefault(name, entry)
            if not mt.is_manifest(entry.media_type):
                continue
            try:
                doc = parse_document(self.fetch_manifest(entry), entry.media_type, what=f"manifest {entry.digest}")
            except OcisiftError:
                continue
            if isinstance(doc, Manifest) and doc.subject is not None and doc.subject.digest != entry.digest:
                by_subject.setdefault(doc.subject.digest, []).append(referrer_descriptor(entry, doc))
        return by_subject, fallbacks

    def pinned(self, desc: Descriptor) -> str:
        return f"{self.location}@{desc.digest}"

    def close(self) -> None:
        self._index = None


class LayoutStore(LayoutReader):
    """A layout directory: everything a reader does, and writing under a lock."""

    kind = "a layout directory"

    def __init__(self, path: str, *, scheme: str = "oci") -> None:
        self.directory = DirectoryFiles(path)
        self.safe = self.directory.safe
        try:
            super().__init__(path, self.directory, scheme=scheme)
        except BaseException:
            self.directory.close()
            raise
        self._pending: list[tuple[dict[str, Any], str | None]] | None = None  # names a batch holds back

    @classmethod
    def create(cls, path: str, *, scheme: str = "oci") -> LayoutStore:
        """Open a layout directory, creating an empty one if nothing is there."""
        os.makedirs(path, exist_ok=True)
        files = DirectoryFiles(path)
        try:
            # Under the lock: a writer that created the layout a moment ago may already have recorded an entry.
            with files.safe.locked(LOCK_NAME, LOCK_TIMEOUT):
                if files.safe.regular("oci-layout") is None:
                    files.safe.write_file("oci-layout", LAYOUT_MARKER)
                if files.safe.regular("index.json") is None:
                    files.safe.write_file("index.json", index_json_bytes({"manifests": []}))
        finally:
            files.close()
        return cls(path, scheme=scheme)

    # -- blobs -------------------------------------------------------------------

    def exists(self, desc: Descriptor) -> bool:
        """Present, and marked as reused: a writer asks before it skips a blob, and a blob it is about to
        reference must look young to a gc running meanwhile (gc spares what was touched)."""
        name = blob_name(desc.digest)
        try:
            return self.safe.touch(name)
        except PermissionError:  # another user's blob: present, but this writer cannot mark it
            return self.safe.regular(name) is not None

    def push(self, desc: Descriptor, stream: ByteSource) -> None:
        """Write a blob through a verified temporary file; an existing blob is kept (and marked reused)."""
        if self.exists(desc):
            return
        folder = f"blobs/{desc.digest.algorithm}"
        reader = verified(stream, desc.digest, desc.size, what=f"blob {desc.digest.short}")
        fd, tmp = self.safe.new_file(folder)
        try:
            os.fchmod(fd, file_mode())  # private while filled; a blob others may read once it is in place
            with os.fdopen(fd, "wb") as out:
                copy_stream(reader, out.write)  # its last read is where a digest or size mismatch is raised
            self.safe.rename(folder, tmp, desc.digest.hex)
        except BaseException:
            self.safe.unlink(f"{folder}/{tmp}")
            raise

    def push_bytes(self, data: bytes, media_type: str, annotations: Mapping[str, str] | None = None) -> Descriptor:
        desc = Descriptor(media_type, Digest.of(data), len(data), dict(annotations or {}))
        self.push(desc, io.BytesIO(data))
        return desc

    # -- index.json ----------------------------------------------------------------

    def edit_index(self, change: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]) -> None:
        """The one way index.json changes: under the layout lock, read, change the entries, replace atomically."""
        with self._lock():
            raw = self.directory.read("index.json", MAX_INDEX_JSON_BYTES) or index_json_bytes({"manifests": []})
            current = jsontext.document(raw, f"{self.path}/index.json (not changed)")
            if not isinstance(current, dict):
                raise MalformedDocument(f"{self.path}/index.json is not a JSON object; not changing it")
            listed = current.get("manifests")
            if listed is None:
                listed = []
            if not isinstance(listed, list) or not all(isinstance(m, dict) for m in listed):
                raise MalformedDocument(f"{self.path}/index.json: manifests is not a list of objects; not changing it")
            entries: list[dict[str, Any]] = listed
            current["manifests"] = change(entries)
            current["schemaVersion"] = 2
            current.setdefault("mediaType", mt.OCI_INDEX)
            self.safe.write_file("index.json", index_json_bytes(current))
            self._index = None

    def _lock(self) -> AbstractContextManager[None]:
        return self.safe.locked(LOCK_NAME, LOCK_TIMEOUT)

    def add_root(self, desc: Descriptor, annotations: Mapping[str, str] | None = None) -> None:
        self._record(desc, dict(annotations or {}), replace_tag=None)

    def tag(self, desc: Descriptor, tag: str, annotations: Mapping[str, str] | None = None) -> None:
        self._record(desc, {**(annotations or {}), mt.ANNOTATION_REF_NAME: tag}, replace_tag=tag)

    def _record(self, desc: Descriptor, annotations: dict[str, str], replace_tag: str | None) -> None:
        new = Descriptor(desc.media_type, desc.digest, desc.size, {**desc.annotations, **annotations},
                         desc.platform, desc.artifact_type).to_json()
        if self._pending is not None:
            self._pending.append((new, replace_tag))
            return
        self._apply_records([(new, replace_tag)])

    def _apply_records(self, records: list[tuple[dict[str, Any], str | None]]) -> None:
        """Add entries (each replacing the entries of its tag) in one edit, in linear time for any number."""

        def change(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
            replaced = {tag for _, tag in records if tag is not None}
            if replaced:
                entries = [m for m in entries if not any(replaced_by(_annotations_of(m), t) for t in replaced)]
            last_of_tag = {tag: i for i, (_, tag) in enumerate(records) if tag is not None}
            present = {json.dumps(m, sort_keys=True) for m in entries}
            for i, (new, tag) in enumerate(records):
                if tag is not None and last_of_tag[tag] != i:
                    continue  # a later record of the same tag replaces this one
                key = json.dumps(new, sort_keys=True)
                if key not in present:
                    present.add(key)
                    entries.append(new)
            return entries

        self.edit_index(change)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Hold names back and record them all in one index.json edit when the block ends (however it
        ends: only names of content already written are recorded). Copying 10,000 tags into a layout
        then rewrites index.json once, not 10,000 times; the names are visible after the block."""
        if self._pending is not None:
            yield
            return
        self._pending = []
        try:
            yield
        finally:
            pending, self._pending = self._pending, None
            if pending:
                self._apply_records(pending)

    def adopt_referrer_index(self, subject: Descriptor, raw: bytes) -> bool:
        """Keep `raw` as the subject's fallback tag index (`sha256-<hex>`, as regclient writes it into a
        layout): the referrers stay index.json entries too, and the index's digest is the source's."""
        doc = parse_document(raw, None, what="the referrers index to adopt")
        if not isinstance(doc, Index):
            raise MalformedDocument("the referrers index to adopt is not an image index")
        desc = Descriptor(doc.media_type, Digest.of(raw), len(raw))
        self.push(desc, io.BytesIO(raw))
        self.tag(desc, referrers_tag(subject.digest))
        return True

    def untag(self, tag: str) -> int:
        """Drop index.json entries named `tag` (short ref.name, or a full name); blobs stay until gc."""
        dropped = [0]

        def change(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
            kept = [m for m in entries if not is_named(_annotations_of(m), tag)]
            dropped[0] = len(entries) - len(kept)
            if not dropped[0]:
                raise NotFoundError(f"tag {tag} not found in {self.location}")
            return kept

        self.edit_index(change)
        return dropped[0]

    def delete(self, desc: Descriptor) -> None:
        """Drop the entries naming this digest and its blob; what only it referenced stays until gc."""
        name = blob_name(desc.digest)
        if self.safe.regular(name) is None:
            raise NotFoundError(f"{desc.digest} is not in {self.location}")
        self.edit_index(lambda entries: [m for m in entries if m.get("digest") != str(desc.digest)])
        self.safe.unlink(name)

    # -- garbage collection ----------------------------------------------------------

    def inventory(self) -> Iterator[tuple[Digest, int, float]]:
        """Every blob file, listed through the blob directories' descriptors: a blob directory or blob
        that is a link (into a directory outside) is refused, never listed and so never removed."""
        now = time.time()
        for algorithm in self.safe.names("blobs"):
            kind = self.safe.lstat(f"blobs/{algorithm}")
            if kind is None or stat.S_ISREG(kind.st_mode):
                continue  # gone meanwhile, or a stray file beside the algorithm directories
            for name in self.safe.names(f"blobs/{algorithm}"):  # refuses a link
                if name.startswith("."):
                    continue  # a push's temporary file, or the tomb of a removal that was cut short
                try:
                    digest = Digest.parse(f"{algorithm}:{name}")
                except OcisiftError:
                    continue  # not a blob we know how to name
                info = self.safe.lstat(f"blobs/{algorithm}/{name}")
                if info is None:
                    continue  # gone meanwhile
                if not stat.S_ISREG(info.st_mode):
                    raise self.safe.refusal(f"blobs/{algorithm}/{name}", "not a regular file")
                yield digest, info.st_size, now - info.st_mtime

    def remove_blob(self, digest: Digest, older_than: float) -> bool:
        """Remove a blob unless a writer reused it meanwhile.

        The blob is first renamed out of the way (a writer's reuse mark then
        fails and it writes the blob again), then its age is read once more: a
        mark that came before the rename restores it.
        """
        folder = f"blobs/{digest.algorithm}"
        tomb = f".gc-{digest.hex}"
        try:
            self.safe.rename(folder, digest.hex, tomb)  # a link named like the tomb is replaced, not followed
        except FileNotFoundError:
            return False
        except OSError as exc:  # the tomb's name is taken by a directory
            raise self.safe.refusal(f"{folder}/{tomb}", f"in the way ({exc.strerror})") from None
        info = self.safe.lstat(f"{folder}/{tomb}")
        if info is not None and time.time() - info.st_mtime < older_than:
            try:
                self.safe.link(folder, tomb, digest.hex)  # back in place, unless a writer wrote it again meanwhile
            except FileExistsError:
                pass
            self.safe.unlink(f"{folder}/{tomb}")
            return False
        self.safe.unlink(f"{folder}/{tomb}")
        return True

    def close(self) -> None:
        super().close()
        self.directory.close()

    def exclusive(self) -> AbstractContextManager[None]:
        @contextmanager
        def held() -> Iterator[None]:
            with self._lock():
                self._index = None
                yield

        return held()


def _annotations_of(entry: dict[str, Any]) -> dict[str, Any]:
    value = entry.get("annotations")
    return value if isinstance(value, dict) else {}


def index_json_bytes(body: dict[str, Any]) -> bytes:
    out = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, **body}
    return json.dumps(out, indent=2).encode() + b"\n"


def unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
