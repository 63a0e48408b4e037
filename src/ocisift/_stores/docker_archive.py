"""`docker-archive:` stores: the `docker save` / `docker load` format.

Reading understands both forms Docker has written:

- the classic one (Docker before 25, and skopeo's `docker-archive:`):
  `manifest.json` lists each image's config file, its RepoTags and its layer
  tars (uncompressed; skopeo links `ID/layer.tar` to `HEX.tar`). There is no
  manifest inside, so one is made, once, from those parts: a Docker schema 2
  manifest whose layers are `application/vnd.docker.image.rootfs.diff.tar`
  (what the files are; skopeo labels them `.tar.gzip`, so the digest of the
  manifest it makes differs from ours), digested by the config's diff_ids and
  checked as they stream, like every blob;
- Docker 25 and later, which also write an OCI layout (`oci-layout`,
  `index.json`, `blobs/`) into the same tar: that is read as the layout it is.

An image is named by a RepoTag (`docker-archive:FILE:NAME:TAG`) or, when it
has none, by its position in manifest.json (`docker-archive:FILE@N`).

Writing (copy's destination) stages the content as a layout in a private
directory and, on `finish()`, writes the classic form skopeo writes:
`HEX.json` configs, `HEX.tar` uncompressed layers (checked against the
config's diff_ids), and manifest.json; the file is replaced atomically.
Docker archives hold images, so an index is refused: copy one platform.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from .._core import jsontext
from .._core import mediatypes as mt
from .._core.decompress import counted, decompressed
from .._core.digest import Digest, VerifyingReader, verify_bytes
from .._core.errors import MalformedDocument, NotFoundError, OcisiftError, UsageError
from .._core.limits import ExtractLimits
from .._core.models import MAX_MANIFEST_BYTES, Descriptor, Manifest, parse_config_platform, parse_document
from .._core.names import full_name_of, match_index_entries, tags_of
from .._core.permissions import file_mode
from .._core.reference import Target, familiar, try_image_name
from .._core.sources import CHUNK, ByteSource
from .base import MAX_CONFIG_BYTES
from .files import ArchiveFiles
from .layout import LayoutReader, LayoutStore, unlink_quietly
from .safefs import FileLock

MAX_MANIFEST_JSON_BYTES = 16 * 1024 * 1024
MAX_IMAGES = 10_000
MAX_LAYERS = 1_000  # per image; Docker itself stops at 127


def open_docker_archive(path: str) -> LayoutReader | DockerArchiveReader:
    """The reader for what the file holds: the OCI layout Docker 25+ writes inside, else the classic form."""
    files = ArchiveFiles(path)
    if files.exists("index.json") and files.exists("oci-layout"):
        return DockerLayoutArchive(path, files)
    return DockerArchiveReader(path, files)


class DockerLayoutArchive(LayoutReader):
    """A `docker save` of Docker 25 or later: an OCI layout in the tar, beside manifest.json."""

    kind = "a docker archive"

    def __init__(self, path: str, files: ArchiveFiles) -> None:
        super().__init__(path, files, scheme="docker-archive")

    def resolve(self, target: Target) -> list[Descriptor]:
        """@N is the N-th manifest.json entry, as docker and skopeo count: the root whose config it names."""
        if target.position is None:
            return super().resolve(target)
        raw = self.files.read("manifest.json", MAX_MANIFEST_JSON_BYTES)
        items = jsontext.document(raw, f"{self.path}: manifest.json") if raw is not None else None
        if not isinstance(items, list):
            return super().resolve(target)  # no manifest.json: count index.json's entries
        if target.position >= len(items) or not isinstance(items[target.position], dict):
            return []
        config = str(items[target.position].get("Config", ""))
        for root in self.roots():
            try:
                doc = parse_document(self.fetch_manifest(root), root.media_type, what=f"manifest {root.digest}")
            except OcisiftError:
                continue
            if isinstance(doc, Manifest) and config.endswith(f"/{doc.config.digest.hex}"):
                return [root]
        return []


def _docker_manifest(config: Descriptor, layers: list[Descriptor]) -> bytes:
    """A Docker schema 2 manifest, serialised once; its digest is taken over exactly these bytes."""
    def part(d: Descriptor) -> dict[str, Any]:
        return {"mediaType": d.media_type, "size": d.size, "digest": str(d.digest)}

    body = {"schemaVersion": 2, "mediaType": mt.DOCKER_MANIFEST, "config": part(config),
            "layers": [part(layer) for layer in layers]}
    return json.dumps(body, separators=(",", ":")).encode()


def _sniff(files: ArchiveFiles, name: str) -> str:
    fh = files.open(name)
    if fh is None:
        return "none"
    with fh:
        head = fh.read(4)
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head == b"\x28\xb5\x2f\xfd":
        return "zstd"
    return "none"


def _hash_member(files: ArchiveFiles, name: str) -> Digest:
    fh = files.open(name)
    if fh is None:
        raise NotFoundError(f"{name} is missing from {files.path}")
    h = hashlib.sha256()
    with fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return Digest("sha256", h.hexdigest())


class DockerArchiveReader:
    """A classic `docker save` file, read in place; the manifests it implies are made once, on opening."""

    kind = "a docker archive"

    def __init__(self, path: str, files: ArchiveFiles | None = None) -> None:
        self.path = path
        self.location = f"docker-archive:{path}"
        self.files = files or ArchiveFiles(path)
        raw = self.files.read("manifest.json", MAX_MANIFEST_JSON_BYTES)
        if raw is None:
            raise NotFoundError(f"{path} is not a docker archive: it has no manifest.json (nor an OCI layout)")
        items = jsontext.document(raw, f"{path}: manifest.json")
        if not isinstance(items, list) or len(items) > MAX_IMAGES:
            raise MalformedDocument(f"{path}: manifest.json must be a list of at most {MAX_IMAGES} images")
        self._members: dict[Digest, str] = {}
        self._documents: dict[Digest, bytes] = {}
        self._roots: list[Descriptor] = []
        self._images: list[Descriptor] = []  # one per manifest.json entry: what @N names
        self._hashed: dict[str, tuple[Digest, str]] = {}  # member -> digest, media type (each read once)
        for position, item in enumerate(items):
            self._add_image(position, item)

    def _add_image(self, position: int, item: Any) -> None:
        where = f"{self.path}: manifest.json entry {position}"
        if not isinstance(item, dict) or not isinstance(item.get("Config"), str) \
                or not isinstance(item.get("Layers"), list) or not all(isinstance(x, str) for x in item["Layers"]):
            raise MalformedDocument(f"{where} needs a Config file name and a list of Layers")
        tags = item.get("RepoTags")
        if tags is not None and (not isinstance(tags, list) or not all(isinstance(t, str) for t in tags)):
            raise MalformedDocument(f"{where}: RepoTags must be a list of names")
        if len(item["Layers"]) > MAX_LAYERS:
            raise MalformedDocument(f"{where} lists {len(item['Layers'])} layers, more than {MAX_LAYERS}")
        config_raw = self.files.read(item["Config"], MAX_CONFIG_BYTES)
        if config_raw is None:
            raise MalformedDocument(f"{where}: its config {item['Config']} is not in the archive")
        config = Descriptor(mt.DOCKER_CONFIG, Digest.of(config_raw), len(config_raw))
        self._members[config.digest] = item["Config"]
        diff_ids = _diff_ids(config_raw)
        if diff_ids is not None and len(diff_ids) != len(item["Layers"]):
            raise MalformedDocument(f"{where} lists {len(item['Layers'])} layers but its config has "
                                    f"{len(diff_ids)} diff_ids; docker load refuses that too")
        layers = []
        for i, name in enumerate(item["Layers"]):
            member = self.files.member(name)
            if member is None:
                raise MalformedDocument(f"{where}: its layer {name} is not in the archive")
            digest, media_type = self._layer_identity(name, diff_ids[i] if diff_ids is not None else None)
            layers.append(Descriptor(media_type, digest, member.size))
            self._members[digest] = name
        raw = _docker_manifest(config, layers)
        platform = parse_config_platform(config_raw, mt.DOCKER_CONFIG, f"{where}: its config {item['Config']}")
        manifest = Descriptor(mt.DOCKER_MANIFEST, Digest.of(raw), len(raw), platform=platform)
        self._documents[manifest.digest] = raw
        self._images.append(manifest)
        names = [n for t in tags or () if (n := try_image_name(t, default_tag="latest"))]
        if not names:
            self._roots.append(manifest)
        for name in names:
            self._roots.append(Descriptor(manifest.media_type, manifest.digest, manifest.size, {
                mt.ANNOTATION_CONTAINERD_NAME: str(name), mt.ANNOTATION_REF_NAME: name.tag or "latest",
            }, platform))

    def _layer_identity(self, name: str, diff_id: Digest | None) -> tuple[Digest, str]:
        """A plain tar layer is its diff_id (checked as it streams); a compressed one is hashed, once."""
        resolved = self.files.resolve(name) or name
        known = self._hashed.get(resolved)
        if known is not None:
            return known
        compression = _sniff(self.files, name)
        if compression == "none" and diff_id is not None:
            found = (diff_id, mt.DOCKER_LAYER_TAR)
        else:
            media_type = {"gzip": mt.DOCKER_LAYER_GZIP, "zstd": mt.OCI_LAYER_ZSTD}.get(compression, mt.DOCKER_LAYER_TAR)
            found = (_hash_member(self.files, name), media_type)
        self._hashed[resolved] = found
        return found

    # -- Reader, RootLister, TagLister ------------------------------------------------

    def roots(self) -> list[Descriptor]:
        return list(self._roots)

    def resolve(self, target: Target) -> list[Descriptor]:
        if target.position is not None:  # the N-th manifest.json entry, as skopeo's @N and docker read it
            image = self._images[target.position] if target.position < len(self._images) else None
            return [next(r for r in self._roots if r.digest == image.digest)] if image is not None else []
        found = match_index_entries(self._roots, target)
        if found or target.digest is None:
            return found
        raw = self._documents.get(target.digest)
        return [Descriptor(mt.DOCKER_MANIFEST, target.digest, len(raw))] if raw is not None else []

    @contextmanager
    def fetch(self, desc: Descriptor) -> Iterator[VerifyingReader]:
        raw = self._documents.get(desc.digest)
        name = self._members.get(desc.digest)
        source: ByteSource | None = io.BytesIO(raw) if raw is not None else (
            self.files.open(name) if name is not None else None)
        if source is None:
            raise NotFoundError(f"blob {desc.digest} is not in {self.location}")
        reader = VerifyingReader(source, desc.digest, desc.size, what=f"blob {desc.digest.short}")
        try:
            yield reader
        finally:
            reader.close()

    def fetch_manifest(self, desc: Descriptor) -> bytes:
        raw = self._documents.get(desc.digest)
        if raw is None:
            name = self._members.get(desc.digest)
            raw = self.files.read(name, MAX_MANIFEST_BYTES) if name is not None else None
        if raw is None:
            raise NotFoundError(f"manifest {desc.digest} is not in {self.location}")
        return verify_bytes(raw, desc.digest, desc.size, what=f"manifest {desc.digest.short}")

    def exists(self, desc: Descriptor) -> bool:
        return desc.digest in self._documents or desc.digest in self._members

    def tags(self, limit: int | None = None) -> list[str]:
        return tags_of(self._roots)[:limit]

    def pinned(self, desc: Descriptor) -> str:
        """By position when it is an image of the archive (what skopeo and docker take), else by digest."""
        for position, image in enumerate(self._images):
            if image.digest == desc.digest:
                return f"{self.location}@{position}"
        return f"{self.location}@{desc.digest}"

    def close(self) -> None:
        pass


def _diff_ids(config_raw: bytes) -> list[Digest] | None:
    try:
        obj = jsontext.loads(config_raw)
        ids = obj["rootfs"]["diff_ids"]
        return [Digest.parse(d) for d in ids] if isinstance(ids, list) else None
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, OcisiftError):
        return None


class DockerArchiveWriter:
    """copy's destination: staged as a layout in a private directory, written as a docker archive on finish."""

    kind = "a docker archive being written"

    def __init__(self, path: str, limits: ExtractLimits | None = None) -> None:
        self.target = os.path.abspath(path)
        self.location = f"docker-archive:{path}"
        self.display_path = path
        self.limits = limits or ExtractLimits()  # layers are unpacked to plain tars: the bomb caps hold
        parent = os.path.dirname(self.target)
        os.makedirs(parent, exist_ok=True)
        self.lock = FileLock(self.target)  # two writers of one new file: the second finds it there
        try:
            if os.path.exists(self.target):  # as skopeo: a docker archive is written whole, never changed
                raise UsageError(f"{path} exists; a docker archive is written whole, not added to: "
                                 "remove it or write another file")
            self.workdir = tempfile.mkdtemp(prefix=".ocisift-docker-archive-", dir=parent)
        except BaseException:
            self.lock.release()
            raise
        try:
            self.staged = LayoutStore.create(os.path.join(self.workdir, "layout"))
        except BaseException:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.lock.release()
            raise

    # -- Reader (what has been staged) ----------------------------------------------------

    def resolve(self, target: Target) -> list[Descriptor]:
        return self.staged.resolve(target)

    def fetch(self, desc: Descriptor) -> Any:
        return self.staged.fetch(desc)

    def fetch_manifest(self, desc: Descriptor) -> bytes:
        return self.staged.fetch_manifest(desc)

    def exists(self, desc: Descriptor) -> bool:
        return self.staged.exists(desc)

    def pinned(self, desc: Descriptor) -> str:
        return f"{self.location}@{desc.digest}"

    def close(self) -> None:
        try:
            shutil.rmtree(self.workdir, ignore_errors=True)
        finally:
            self.lock.release()

    # -- writing -------------------------------------------------------------------------

    def push(self, desc: Descriptor, stream: ByteSource) -> None:
        if mt.is_index(desc.media_type):
            raise UsageError(f"{self.location}: a docker archive holds images, not indexes; "
                             "copy one platform with --platform")
        self.staged.push(desc, stream)

    def tag(self, desc: Descriptor, tag: str, annotations: Mapping[str, str] | None = None) -> None:
        self.staged.tag(desc, tag, annotations)

    def add_root(self, desc: Descriptor, annotations: Mapping[str, str] | None = None) -> None:
        self.staged.add_root(desc, annotations)

    def finish(self) -> None:
        images: dict[Digest, tuple[Descriptor, list[str]]] = {}
        for root in self.staged.roots():
            _, tags = images.setdefault(root.digest, (root, []))
            name = full_name_of(root.annotations.get(mt.ANNOTATION_CONTAINERD_NAME)) \
                or full_name_of(root.annotations.get(mt.ANNOTATION_REF_NAME))
            if name is not None and familiar(name) not in tags:
                tags.append(familiar(name))
        entries, files = [], []
        budget = [self.limits.max_bytes]  # every layer this archive unpacks, together
        for root, tags in images.values():
            doc = parse_document(self.staged.fetch_manifest(root), root.media_type, what=f"manifest {root.digest}")
            if not isinstance(doc, Manifest):
                raise UsageError(f"{self.location}: a docker archive holds images; copy one platform with --platform")
            config_raw = self.staged.fetch_manifest(doc.config) if doc.config.size <= MAX_CONFIG_BYTES else b""
            diff_ids = _diff_ids(config_raw)
            if doc.config.media_type not in mt.CONFIG_TYPES or diff_ids is None or len(diff_ids) != len(doc.layers):
                raise UsageError(f"{self.location}: {root.digest} is not a container image (its config has no "
                                 "rootfs.diff_ids for its layers); a docker archive holds images only")
            config_name = f"{doc.config.digest.hex}.json"
            files.append((config_name, self.staged.directory.path(f"blobs/sha256/{doc.config.digest.hex}")))
            layer_names = []
            for layer, diff_id in zip(doc.layers, diff_ids, strict=True):
                layer_names.append(f"{diff_id.hex}.tar")
                files.append((f"{diff_id.hex}.tar", self._uncompressed(layer, diff_id, budget)))
            entries.append({"Config": config_name, "RepoTags": tags, "Layers": layer_names})
        self._write(entries, files)

    def _uncompressed(self, layer: Descriptor, diff_id: Digest, budget: list[int]) -> str:
        """The layer as docker load wants it: a plain tar whose digest is the config's diff_id, unpacked
        through the metered decompressor (bomb caps, broken streams exit 5) as a pull unpacks it."""
        out = os.path.join(self.workdir, f"{diff_id.hex}.tar")
        if os.path.exists(out):
            return out
        compression = mt.compression_of(layer.media_type) or "none"
        h = hashlib.sha256()
        with self.staged.fetch(layer) as raw, open(out, "wb") as sink:
            compressed, buffered = counted(raw)
            stream = decompressed(compressed, buffered, compression, self.limits, budget,
                                  f"layer {layer.digest} ({layer.media_type})")
            while chunk := stream.read(CHUNK):
                h.update(chunk)
                sink.write(chunk)
            raw.drain()
        if h.hexdigest() != diff_id.hex:
            raise MalformedDocument(f"layer {layer.digest} does not unpack to the diff_id {diff_id} its config names")
        return out

    def _write(self, entries: list[dict[str, Any]], files: list[tuple[str, str]]) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".ocisift-docker-archive-", suffix=".tar", dir=os.path.dirname(self.target))
        os.fchmod(fd, file_mode())
        os.close(fd)
        try:
            with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
                written: set[str] = set()
                for name, source in files:
                    if name not in written:
                        written.add(name)
                        tar.add(source, arcname=name, recursive=False, filter=_plain)
                body = json.dumps(entries, separators=(",", ":")).encode()
                info = tarfile.TarInfo("manifest.json")
                info.size = len(body)
                tar.addfile(_plain(info), io.BytesIO(body))
            os.replace(tmp, self.target)
        except BaseException:
            unlink_quietly(tmp)
            raise


def _plain(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """Members as skopeo writes them: owned by root, read-only for all, dated 1970 (reproducible)."""
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = 0
    info.mode = 0o444
    return info
