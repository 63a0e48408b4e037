"""Safe extraction of tar layers into a directory this extraction alone writes to.

Every member is checked against a model of what this extraction has written,
not against tarfile's filters alone (they have had bypasses): names are
normalised and refused if absolute or climbing; device nodes and FIFOs are
refused; size, ratio and entry caps stop bombs; hardlinks may only point at
files this extraction wrote. Symlinks are treated in two ways:

- Image layers are a root filesystem, unpacked as containerd and umoci do:
  symlinks are kept exactly as written, absolute ones too, and the parent
  path of every later entry is resolved inside the output directory as if it
  were `/` (an absolute target starts again at the output root, `..` stops at
  it), so `lib -> usr/lib` followed by `lib/libc.so` writes `usr/lib/libc.so`
  and nothing is ever written outside.
- Artifact layers are files, not a filesystem: a symlink whose target leaves
  the output directory (through earlier links too) is refused, and nothing is
  written through a symlink.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import shutil
import stat
import tarfile
import zlib
from collections import deque
from collections.abc import Sequence
from typing import Protocol, cast

from .._core.decompress import Meter, counted, decompressed, sniff
from .._core.errors import ConflictError, IntegrityError, OcisiftError, UnsafeContentError, UsageError
from .._core.mediatypes import compression_of
from .._core.permissions import umask
from .._core.sources import CHUNK, CheckedStream, Readable
from .._core.streams import copy_stream
from .._core.tarheaders import MAX_HEADER_CHAIN as MAX_HEADER_CHAIN
from .._core.tarheaders import MAX_SPECIAL_HEADER as MAX_SPECIAL_HEADER
from .._core.tarheaders import CappedTarInfo
from .._core.tarstream import TarMember, TarReader, checked_regions
from .limits import ExtractLimits
from .metadata import RootfsMetadata
from .staging import remove_tree

# tarfile's stream reader builds a new bytes object per read, of the size asked for.
# Below glibc's mmap threshold (128 KiB) those come from the reused heap; at 1 MiB
# each was freshly mapped and faulted in, which tripled the time of extract-all.
# It also reads its source in pieces of this size (its default, 10 KiB, costs
# six times the Python calls per byte).
MEMBER_CHUNK = 64 * 1024
WHITEOUT_PREFIX = ".wh."
OPAQUE = ".wh..wh..opq"


class PathFilter:
    """--include / --exclude globs; a pattern also covers everything below a matched directory."""

    def __init__(self, include: Sequence[str] = (), exclude: Sequence[str] = ()) -> None:
        self.include = tuple(p.strip("/") for p in include)
        self.exclude = tuple(p.strip("/") for p in exclude)
        self.matched: set[str] = set()  # the --include patterns that matched at least one entry

    @property
    def active(self) -> bool:
        return bool(self.include or self.exclude)

    @staticmethod
    def _hits(patterns: Sequence[str], path: str) -> list[str]:
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        return [pat for pat in patterns if any(fnmatch.fnmatchcase(p, pat) for p in prefixes)]

    def allows(self, path: str) -> bool:
        hits: list[str] = []
        if self.include:
            hits = self._hits(self.include, path)
            if not hits:
                return False
        if self.exclude and self._hits(self.exclude, path):
            return False
        self.matched.update(hits)  # an include counts only for what is really written
        return True

    def unmatched(self) -> list[str]:
        """--include patterns nothing matched: the user asked for something the layers do not hold."""
        return [p for p in self.include if p not in self.matched]


def open_tar_stream(raw: Readable, media_type: str, limits: ExtractLimits, budget: list[int],
                    what: str = "layer") -> tuple[Meter, Meter]:
    """Decompress per the media type, after checking it against the magic bytes."""
    compressed, buffered = counted(raw)
    head = buffered.peek(512)[:512]
    found = sniff(head)
    expected = compression_of(media_type)
    if expected is None:
        if found == "unknown":
            raise UsageError(f"layer media type {media_type} is not a tar archive; use --mode copy")
        expected = found
    elif found in ("gzip", "zstd") and found != expected:
        raise IntegrityError(f"layer says {media_type} but its bytes are {found}-compressed")
    elif expected in ("gzip", "zstd") and found != expected:
        raise IntegrityError(f"layer says {media_type} but its bytes are not {expected}-compressed")
    return decompressed(compressed, buffered, expected, limits, budget, what), compressed


_DECODE_ERRORS: tuple[type[BaseException], ...] = (tarfile.TarError, zlib.error, EOFError, OSError, ValueError)
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC

# Which tar reader unpacks layers: tarstream.py's, which reads as Go does at the speed small files need, or
# Python's tarfile under the same rules (tarheaders.py). Chosen when this module is imported; the tests run
# every extraction test under both (OCISIFT_TAR_READER=tarfile selects the second).
READERS = ("native", "tarfile")
TAR_READER = os.environ.get("OCISIFT_TAR_READER", "native")
if TAR_READER not in READERS:
    TAR_READER = "native"


class MemberData(Protocol):
    """Writes the current member's data into a file being unpacked."""

    def write(self, fd: int, m: TarMember) -> None: ...


class _NativeData:
    def __init__(self, reader: TarReader) -> None:
        self.reader = reader

    def write(self, fd: int, m: TarMember) -> None:
        """Stored bytes straight from the reader's buffer; a sparse file's regions where they belong, its holes
        left as holes (the file is cut to its whole length)."""
        if m.sparse is None:
            self.reader.write_to(fd)
            return
        for offset, length in m.sparse:
            self.reader.write_to(fd, length, offset)
        if self.reader.remaining:
            raise UnsafeContentError(f"refusing sparse member {m.name[:200]!r}: it stores data its map does not "
                                     "place (Go's archive/tar refuses it too)")
        os.ftruncate(fd, m.size)


class _TarfileData:
    def __init__(self, tar: tarfile.TarFile) -> None:
        self.tar = tar
        self.current: tarfile.TarInfo | None = None

    def write(self, fd: int, m: TarMember) -> None:
        if self.current is not None and m.sparse is not None:
            self.current.sparse = m.sparse  # type: ignore[assignment]  # the checked map; typeshed says bytes
        src = self.tar.extractfile(self.current) if self.current is not None else None
        if src is not None:
            copy_stream(cast(Readable, src), lambda chunk: _write_all(fd, chunk), MEMBER_CHUNK)


def _write_all(fd: int, chunk: bytes | bytearray | memoryview) -> None:
    view = memoryview(chunk)
    while view:
        view = view[os.write(fd, view):]

class TreeBuilder:
    """Applies tar layers, in order, into a staging directory it alone writes to."""

    def __init__(
        self,
        root: str,
        *,
        limits: ExtractLimits | None = None,
        path_filter: PathFilter | None = None,
        overwrite: bool = False,
        budget: list[int] | None = None,
    ) -> None:
        self.root = os.path.realpath(root)
        self.limits = limits or ExtractLimits()
        self.filter = path_filter or PathFilter()
        self.overwrite = overwrite
        self.budget = budget if budget is not None else [self.limits.max_bytes]
        self.kinds: dict[str, str] = {}
        self.links: dict[str, str] = {}
        self.layer_of: dict[str, int] = {}
        self.children: dict[str, set[str]] = {}  # directory -> the entries directly in it ("" is the root)
        self._confirmed: set[str] = set()  # directories the OS said are real ones (see _confirm_dirs)
        self._opaque_done: set[tuple[str, int]] = set()  # (directory, layer) whose opaque whiteout was applied
        self._steps = 0  # path components links added to resolutions (_charge_steps)
        self._root_length = len(os.fsencode(self.root)) + 1
        try:
            self._path_max = os.pathconf(self.root, "PC_PATH_MAX")
        except (OSError, ValueError):
            self._path_max = 4096
        self.entries = 0
        self.files_written = 0
        self.reader = TAR_READER
        self._umask = umask()
        self._meter: Meter | None = None  # the current layer's unpacked-bytes meter

    # -- one layer ---------------------------------------------------------------

    def apply(self, raw: CheckedStream, media_type: str, layer: int, *, image_layer: bool) -> None:
        """Unpack one verified stream; the digest is checked before this returns."""
        try:
            stream, _ = open_tar_stream(raw, media_type, self.limits, self.budget)
            self._meter = stream
            if self.reader == "native":
                native = TarReader(stream)
                data: MemberData = _NativeData(native)
                for member in native:
                    self._member(data, member, layer, image_layer)
            else:
                self._with_tarfile(stream, layer, image_layer)
            while stream.read(CHUNK):
                pass
            raw.drain()
        except OcisiftError:
            _check_digest_first(raw)
            raise
        except _DECODE_ERRORS as exc:
            _check_digest_first(raw)
            raise IntegrityError(f"layer is not a valid {media_type} archive: {exc}") from None

    def _with_tarfile(self, stream: Meter, layer: int, image_layer: bool) -> None:
        """The same members through Python's tarfile (with tarheaders.py's Go rules): the second reader, kept so
        every test runs on both and where they disagree the stricter one is known."""
        # UTF-8 with surrogateescape: names and binary PAX values (security.capability) come back byte-exact.
        with tarfile.open(fileobj=stream, mode="r|", errorlevel=2, bufsize=MEMBER_CHUNK,
                          tarinfo=CappedTarInfo, encoding="utf-8", errors="surrogateescape") as tar:
            data = _TarfileData(tar)
            members = iter(tar)
            while True:
                try:
                    info = next(members)
                except StopIteration:
                    break
                except tarfile.ReadError as exc:
                    # Some writers (umoci among them) stop right after the last member's data,
                    # without padding or end-of-archive blocks. Every member so far was complete;
                    # truncated member data still fails inside _member.
                    if "unexpected end of data" in str(exc) and self.entries > 0:
                        break
                    raise
                data.current = info
                self._member(data, TarMember.of(info), layer, image_layer)

    def _member(self, data: MemberData, m: TarMember, layer: int, image_layer: bool) -> None:
        self.entries += 1
        if self.entries > self.limits.max_entries:
            raise UnsafeContentError(f"more than {self.limits.max_entries} archive entries")
        if m.size < 0:
            raise UnsafeContentError(f"refusing tar member {m.name[:200]!r}: its size is negative")
        written = normalize_member(m.name)
        if written is None:
            if m.isdir():
                self._root_entry(m)
            return
        rel = self._place(written)
        if len(rel) + self._root_length >= self._path_max:
            raise UnsafeContentError(f"refusing {rel[:200]!r}…: its path is longer than this system allows "
                                     f"({self._path_max} bytes)")
        base = rel.rsplit("/", 1)[-1]
        if image_layer and base.startswith(WHITEOUT_PREFIX):
            parent = rel[: -len(base)].rstrip("/")
            if base == OPAQUE:
                self._opaque(parent, layer)
            else:
                self._remove(f"{parent}/{base[len(WHITEOUT_PREFIX):]}".lstrip("/"))
            return
        node = m.ischr() or m.isblk() or m.isfifo()
        if (node and not self._makes_nodes) or (
                not node and not m.isreg() and not m.isdir() and not m.issym() and not m.islnk()):
            raise UnsafeContentError(f"refusing {rel!r}: device nodes, FIFOs and special files are not extracted "
                                     "from artifact layers")
        if not self.filter.allows(written):
            return
        try:
            if node:
                self._node(rel, m, layer)
            elif m.isdir():
                self._dir(rel, m, layer)
            elif m.issym():
                self._symlink(rel, m.linkname, layer, m)
            elif m.islnk():
                self._hardlink(rel, m.linkname, layer)
            else:
                self._file(data, m, rel, layer)
        except FileExistsError:  # not ours: never happens in a fresh staging directory, and is never overwritten
            raise UnsafeContentError(f"refusing {rel[:200]!r}: unexpected entry in the staging directory") from None
        except OSError as exc:
            # A name, a path or a link target longer than this system allows is the layer's doing: refused
            # as such, not reported as an archive that does not decode (nor with the whole name repeated).
            if exc.errno != errno.ENAMETOOLONG:
                raise
            what = "its path or link target" if m.issym() or m.islnk() else "its path"
            raise UnsafeContentError(f"refusing {rel[:200]!r}{'…' if len(rel) > 200 else ''}: {what} is longer "
                                     "than this system allows") from None

    # -- checks ------------------------------------------------------------------

    def _abs(self, rel: str) -> str:
        """`rel` is normalised ('a/b', no '.', '..' or leading '/'): joining by hand is linear in its length,
        where os.path.join over its parts costs a Python step per part (quadratic for deep trees)."""
        return f"{self.root}/{rel}" if rel else self.root

    def _place(self, rel: str) -> str:
        """Where an entry lands: as written (artifact layers, which never write through links)."""
        return rel

    def _note(self, rel: str, kind: str, layer: int, link: str | None = None) -> None:
        """Record what this extraction wrote at `rel` (the model every later check reads)."""
        self.kinds[rel] = kind
        self.layer_of[rel] = layer
        if link is not None:
            self.links[rel] = link
        self.children.setdefault(rel.rpartition("/")[0], set()).add(rel)

    def _parents(self, rel: str, layer: int) -> None:
        """Create missing parents; refuse to go through a symlink or a file.

        It walks up only to the nearest directory this extraction made (everything above one was checked
        when it was made), then makes the missing ones downwards, each inside the one above through its
        descriptor (mkdirat, then openat with O_NOFOLLOW): a chain of n new directories costs n system
        calls, where a full path per level would make the kernel walk n² components.
        """
        parent = rel.rpartition("/")[0]
        missing: list[str] = []
        key = parent
        while key and self.kinds.get(key) != "dir":
            kind = self.kinds.get(key)
            if kind == "link":
                raise UnsafeContentError(f"refusing {rel!r}: {key!r} is a symlink and nothing is written through one")
            if kind == "file":
                self._conflict(key, layer, "a file is in the way of a directory")
                self._remove(key)
            missing.append(key)
            key = key.rpartition("/")[0]
        if key:
            self._confirm_dirs(key, rel)
        if missing:
            self._make_dirs(key, missing[::-1], rel, layer)

    def _make_dirs(self, base: str, chain: list[str], rel: str, layer: int) -> None:
        fd = os.open(self._abs(base), os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            for key in chain:
                name = key.rpartition("/")[2]
                try:
                    os.mkdir(name, 0o755, dir_fd=fd)
                except FileExistsError:  # not ours: should never happen in a fresh staging directory
                    raise UnsafeContentError(f"refusing {rel!r}: unexpected entry {key!r} in the staging "
                                             "directory") from None
                child = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
                os.close(fd)
                fd = child
                self._note(key, "dir", layer)
                self._confirmed.add(key)  # made here and opened without following a link: real, by construction
        finally:
            os.close(fd)

    def _confirm_dirs(self, key: str, rel: str) -> None:
        """The OS agrees that `key` and every directory above it is a real directory, not a symlink: what is
        written below lands inside the output directory.

        Each directory is looked at once (one lstat), when something is first written below it, and again
        after it was removed. Resolving the whole parent path for every entry (realpath) cost one lstat per
        level per entry, each walking the whole path: cubic in the depth, a minute for a tree 2,000 deep.
        """
        unconfirmed: list[str] = []
        while key and key not in self._confirmed:
            unconfirmed.append(key)
            key = key.rpartition("/")[0]
        for key in reversed(unconfirmed):
            if not stat.S_ISDIR(os.lstat(self._abs(key)).st_mode):
                raise UnsafeContentError(f"refusing {rel!r}: {key!r} is not a directory on disk, and what is "
                                         "written through it could land outside the output directory")
            self._confirmed.add(key)

    def _conflict(self, rel: str, layer: int, why: str) -> None:
        owner = self.layer_of.get(rel)
        if owner is not None and owner != layer and not self.overwrite and not self._image_mode:
            raise ConflictError(
                f"{rel!r} is written by layer {owner} and again by layer {layer} ({why}); "
                "pass --overwrite to let later layers win"
            )

    _image_mode = False
    _makes_nodes = False  # device nodes and FIFOs: only in a root filesystem (ImageTreeBuilder)

    def _replace_existing(self, rel: str, layer: int, new_kind: str) -> None:
        kind = self.kinds.get(rel)
        if kind is None:  # nothing of ours there; every creation refuses an entry that is (O_EXCL and kin)
            return
        if kind == "dir" and new_kind == "dir":
            return
        self._conflict(rel, layer, f"{kind} replaced by {new_kind}")
        self._remove(rel)

    def _charge_written(self, n: int, rel: str) -> None:
        """Bytes written that never passed through the stream (a sparse file's holes, a hardlink made a copy)
        count as if they had: against the size cap and the ratio cap, like every unpacked byte."""
        if n > 0 and self._meter is not None:
            self._meter.count += n
            self._meter.check(n)

    def _escapes(self, rel: str, target: str) -> bool:
        if target.startswith("/") or "\0" in target:
            return True
        parts = rel.split("/")[:-1] + target.split("/")
        return self._resolve(parts) is None

    def _charge_steps(self, steps: int) -> None:
        """Resolving paths through links costs steps (RESOLUTION_STEPS_BASE): past a layer's allowance, a
        layer of links made to be walked over and over is refused rather than costing minutes."""
        self._steps += steps
        if self._steps > RESOLUTION_STEPS_BASE + RESOLUTION_STEPS_PER_ENTRY * self.entries:
            raise UnsafeContentError("the layer's symlinks take too much work to resolve paths through "
                                     f"(more than {RESOLUTION_STEPS_PER_ENTRY} steps per entry); refusing it")

    def _plain_directory(self, parts: list[str]) -> bool:
        """`parts` name a directory this extraction made, so no link is on the way to it: every directory in
        the model was made where its path, resolved, led, and a link written over one of its parents
        removed it from the model first. Such a path resolves to itself without a step per component,
        which for a tree thousands deep would cost its depth squared per entry."""
        return bool(parts) and self.kinds.get("/".join(parts)) == "dir" and not any(
            p in ("", ".", "..") for p in parts)

    def _resolve(self, parts: list[str]) -> list[str] | None:
        if self._plain_directory(parts[:-1]) and parts[-1] not in ("", ".", "..") and \
                self.kinds.get("/".join(parts)) != "link":
            return parts
        stack: list[str] = []
        keys: list[str] = []
        queue = deque(parts)
        hops = 0
        while queue:
            p = queue.popleft()
            if p in ("", "."):
                continue
            if p == "..":
                if not stack:
                    return None
                stack.pop()
                keys.pop()
                continue
            stack.append(p)
            key = f"{keys[-1]}/{p}" if keys else p
            keys.append(key)
            if self.kinds.get(key) == "link":
                hops += 1
                if hops > 40:
                    return None
                target = self.links[key]
                if target.startswith("/"):
                    return None
                stack.pop()
                keys.pop()
                target_parts = target.split("/")
                self._charge_steps(1 + len(target_parts))
                queue.extendleft(reversed(target_parts))
        return stack

    # -- writers -------------------------------------------------------------------

    def _dir(self, rel: str, m: TarMember, layer: int) -> None:
        self._parents(rel, layer)
        self._replace_existing(rel, layer, "dir")
        if self.kinds.get(rel) != "dir":
            _mkdir(self._abs(rel), rel)
            self._note(rel, "dir", layer)
        self._dir_metadata(rel, m)

    def _dir_metadata(self, rel: str, m: TarMember) -> None:
        """Artifact layers: the layer's mode under the umask, kept writable for the user."""
        os.chmod(self._abs(rel), ((m.mode & 0o755) | 0o700) & ~self._umask)

    def _root_entry(self, m: TarMember) -> None:
        """The archive's own root (`./`): an artifact's says nothing about the output directory."""

    def _node(self, rel: str, m: TarMember, layer: int) -> None:
        raise UnsafeContentError(f"refusing {rel!r}: device nodes and FIFOs are not extracted from artifact layers")

    def _file(self, data: MemberData, m: TarMember, rel: str, layer: int) -> None:
        sparse = checked_sparse_map(m, rel)
        if sparse is not None:  # GNU or PAX sparse: the stream holds the data; the holes are written as zeros
            m.sparse = sparse
            self._charge_written(m.size - sum(length for _, length in sparse), rel)
        self._parents(rel, layer)
        self._replace_existing(rel, layer, "file")
        path = self._abs(rel)
        fd = os.open(path, _CREATE, self._creation_mode(m))
        self._note(rel, "file", layer)  # noted first: a failure below leaves a file the model knows to remove
        try:
            data.write(fd, m)
            self._file_metadata(fd, m, rel)
        finally:
            os.close(fd)
        self.files_written += 1

    def _creation_mode(self, m: TarMember) -> int:
        return (m.mode & 0o755) | 0o600

    def _file_metadata(self, fd: int, m: TarMember, rel: str) -> None:
        """Artifact layers: the mode given at creation, under the umask; the mtime where it fits."""
        try:
            os.utime(fd, (m.mtime, m.mtime))
        except (OverflowError, ValueError, OSError):
            pass

    def _symlink(self, rel: str, target: str, layer: int, m: TarMember | None = None) -> None:
        if self._escapes(rel, target):
            raise UnsafeContentError(f"refusing symlink {rel!r} -> {target!r}: it points outside the output directory")
        self._parents(rel, layer)
        self._replace_existing(rel, layer, "link")
        os.symlink(target, self._abs(rel))
        self._note(rel, "link", layer, target)

    def _link_target(self, linkname: str) -> str | None:
        return normalize_member(linkname)

    def _hardlink(self, rel: str, linkname: str, layer: int) -> None:
        target = self._link_target(linkname)
        _check_not_within(rel, target, linkname)
        if target is None or self.kinds.get(target) not in self._hardlinkable or \
                self._resolve(target.split("/")) != target.split("/"):
            if target is not None and self.filter.active and not self.filter.allows(target):
                return
            raise UnsafeContentError(
                f"refusing hardlink {rel!r} -> {linkname!r}: the target is not a file extracted here"
            )
        kind = self.kinds[target]
        self._parents(rel, layer)
        self._replace_existing(rel, layer, kind)
        try:
            os.link(self._abs(target), self._abs(rel), follow_symlinks=False)
        except OSError:  # no hardlinks here (another filesystem, too many links): a copy, which takes space
            if kind != "file":
                raise
            self._charge_written(os.path.getsize(self._abs(target)), rel)
            self._copy_file(self._abs(target), self._abs(rel))
        self._note(rel, kind, layer)

    def _copy_file(self, source: str, path: str) -> None:
        """A hardlink that cannot be made, as a copy: artifact layers' modes hold no setuid bits to keep."""
        shutil.copy2(source, path, follow_symlinks=False)

    _hardlinkable: frozenset[str] = frozenset({"file"})

    def _remove(self, rel: str) -> None:
        """Remove what this extraction wrote at `rel` (a directory with all below it), in the model and on disk.

        The cost is the size of what goes: the model knows each directory's entries.
        """
        kind = self.kinds.get(rel)
        if kind is None:
            return
        key = ""
        for part in rel.split("/")[:-1]:
            key = f"{key}/{part}" if key else part
            if self.kinds.get(key) == "link":
                raise UnsafeContentError(f"refusing to remove {rel!r} through a symlink")
        path = self._abs(rel)
        if kind == "dir":
            remove_tree(path)
            pending = [rel]
            while pending:
                below = self.children.pop(pending.pop(), set())
                pending.extend(k for k in below if self.kinds.get(k) == "dir")
                for k in below:
                    self._forget(k)
        else:
            os.unlink(path)
        self._forget(rel)

    def _forget(self, rel: str) -> None:
        self._confirmed.discard(rel)
        self.kinds.pop(rel, None)
        self.links.pop(rel, None)
        self.layer_of.pop(rel, None)
        siblings = self.children.get(rel.rpartition("/")[0])
        if siblings is not None:
            siblings.discard(rel)

    def _opaque(self, parent: str, layer: int) -> None:
        """Opaque whiteout: hide what lower layers put in `parent`, keep this layer's. Once per directory and
        layer: after the first, nothing of a lower layer is left there (a layer repeating the marker 20,000
        times cost a scan of the directory each time, minutes for a 170 kB layer)."""
        if (parent, layer) in self._opaque_done:
            return
        self._opaque_done.add((parent, layer))
        for key in sorted(self.children.get(parent, ())):
            if self.layer_of.get(key, layer) < layer:
                self._remove(key)

    def finish(self) -> None:
        """Links are checked again once everything is in place: a later entry may have turned a chain outward."""
        for rel, target in list(self.links.items()):
            if self._escapes(rel, target):
                raise UnsafeContentError(f"refusing symlink {rel!r} -> {target!r}: it points outside the output directory")


MAX_SYMLINK_HOPS = 255  # as filepath-securejoin allows
# Resolving paths through links costs steps; a layer gets a fixed allowance plus a few hundred per entry,
# so links made to be walked over and over (long chains of long targets) cannot cost more than linear time.
# A step is a component a link puts in the path: an entry's own components cost what reading its name
# did (counting them too refused a tree 1,900 directories deep, without a link in it, as "symlinks").
RESOLUTION_STEPS_BASE = 1_000_000
RESOLUTION_STEPS_PER_ENTRY = 256


class ImageTreeBuilder(TreeBuilder):
    """Image layers: later layers win, whiteouts apply, symlinks are kept and resolved inside the root, and
    every entry keeps the metadata a container expects (metadata.py: exact modes, owners as root,
    extended attributes, times; device nodes as root, FIFOs)."""

    _image_mode = True
    _makes_nodes = True
    _hardlinkable = frozenset({"file", "node"})

    def __init__(self, root: str, *, metadata: RootfsMetadata | None = None, limits: ExtractLimits | None = None,
                 path_filter: PathFilter | None = None, overwrite: bool = False,
                 budget: list[int] | None = None) -> None:
        super().__init__(root, limits=limits, path_filter=path_filter, overwrite=overwrite, budget=budget)
        self.metadata = metadata or RootfsMetadata()
        self.root_metadata_applied = False

    def notes(self) -> list[str]:
        return self.metadata.notes()

    def _creation_mode(self, m: TarMember) -> int:
        """The permission bits asked for at creation (the staging directory is private, so nobody sees the
        file before its owner is set): when the umask leaves them as the tar says, no fchmod is needed."""
        return m.mode & 0o777

    def _file_metadata(self, fd: int, m: TarMember, rel: str) -> None:
        self.metadata.file(fd, m, rel, created=m.mode & 0o777 & ~self._umask)

    def _dir_metadata(self, rel: str, m: TarMember) -> None:
        self.metadata.directory(rel, m)  # applied in finish(), after everything inside it

    def _root_entry(self, m: TarMember) -> None:
        """A rootfs's `./` entry describes `/`: the output directory gets its mode, owner and times (umoci)."""
        self.metadata.directory("", m)
        self.root_metadata_applied = True

    def _node(self, rel: str, m: TarMember, layer: int) -> None:
        """FIFOs need no privilege; device nodes are made as root (containerd, umoci) and skipped otherwise."""
        self._parents(rel, layer)
        self._replace_existing(rel, layer, "node")
        path = self._abs(rel)
        if m.isfifo():
            os.mkfifo(path, 0o600)
        elif not self.metadata.privileged:
            self.metadata.skipped_node(rel)
            return
        else:
            if not (0 <= m.devmajor < 1 << 32 and 0 <= m.devminor < 1 << 32):
                raise UnsafeContentError(f"refusing device node {rel!r}: device number out of range")
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK
            os.mknod(path, kind | 0o600, os.makedev(m.devmajor, m.devminor))
        self._note(rel, "node", layer)
        self.metadata.node(path, m, rel)

    def _forget(self, rel: str) -> None:
        super()._forget(rel)
        self.metadata.forget(rel)

    def _in_root(self, parts: list[str], *, follow_last: bool) -> list[str]:
        """Resolve `parts` through the symlinks written so far, inside the output root as if it were `/`."""
        if self._plain_directory(parts) or not parts:
            return list(parts)
        stack: list[str] = []
        keys: list[str] = []
        pending = deque(parts)
        hops = 0
        while pending:
            part = pending.popleft()
            if part in ("", "."):
                continue
            if part == "..":
                if stack:  # at the root, `..` stays at the root
                    stack.pop()
                    keys.pop()
                continue
            key = f"{keys[-1]}/{part}" if keys else part
            if self.kinds.get(key) == "link" and (pending or follow_last):
                hops += 1
                if hops > MAX_SYMLINK_HOPS:
                    raise UnsafeContentError(f"more than {MAX_SYMLINK_HOPS} symlinks to follow for {'/'.join(parts)!r}")
                target = self.links[key]
                if target.startswith("/"):
                    stack.clear()
                    keys.clear()
                target_parts = target.split("/")
                self._charge_steps(1 + len(target_parts))
                pending.extendleft(reversed(target_parts))
                continue
            stack.append(part)
            keys.append(key)
        return stack

    def _place(self, rel: str) -> str:
        """The parent is resolved inside the root; the last component is the entry itself, never followed.
        With no symlink written yet there is nothing to resolve through (`rel` is normalised: no `.`, no `..`)."""
        if not self.links:
            return rel
        parts = rel.split("/")
        placed = [*self._in_root(parts[:-1], follow_last=True), parts[-1]]
        return "/".join(placed)

    def _link_target(self, linkname: str) -> str | None:
        """A hardlink's target: its parent resolved inside the root, the last component not followed
        (containerd's hardlinkRootPath), so a hardlink may name a symlink this extraction wrote."""
        if "\0" in linkname:
            raise UnsafeContentError(f"refusing hardlink target with a NUL byte: {linkname!r}")
        parts = linkname.split("/")
        resolved = [*self._in_root(parts[:-1], follow_last=True), *([parts[-1]] if parts[-1] else [])]
        return "/".join(p for p in resolved if p not in ("", ".")) or None

    def _hardlink(self, rel: str, linkname: str, layer: int) -> None:
        target = self._link_target(linkname)
        _check_not_within(rel, target, linkname)
        if target is None or self.kinds.get(target) != "link":
            super()._hardlink(rel, linkname, layer)
            return
        self._parents(rel, layer)  # a hardlink to a symlink: the same link, once more
        self._replace_existing(rel, layer, "link")
        try:
            os.link(self._abs(target), self._abs(rel), follow_symlinks=False)
        except OSError:  # no hardlinks here (another filesystem, too many links): a link with the same target
            os.symlink(self.links[target], self._abs(rel))
            self._copy_owner_and_times(self._abs(target), self._abs(rel))
        self._note(rel, "link", layer, self.links[target])

    def _copy_file(self, source: str, path: str) -> None:
        """A hardlink that cannot be made (ext4 stops at 65,000 links): a copy that is the same file in all but
        its inode, owner first (a chown clears setuid bits), then mode, times and extended attributes. A copy
        made by shutil.copy2 alone kept the setuid bits and made the file root's."""
        shutil.copyfile(source, path, follow_symlinks=False)
        self._copy_owner_and_times(source, path)

    def _copy_owner_and_times(self, source: str, path: str) -> None:
        info = os.lstat(source)
        if self.metadata.privileged:
            os.chown(path, info.st_uid, info.st_gid, follow_symlinks=False)
        shutil.copystat(source, path, follow_symlinks=False)  # mode (not on a link), times, attributes

    def _symlink(self, rel: str, target: str, layer: int, m: TarMember | None = None) -> None:
        """Kept exactly as written: a root filesystem's links point wherever its programs expect."""
        if "\0" in target:
            raise UnsafeContentError(f"refusing symlink {rel!r} with a NUL byte in its target")
        self._parents(rel, layer)
        self._replace_existing(rel, layer, "link")
        os.symlink(target, self._abs(rel))
        self._note(rel, "link", layer, target)
        if m is not None:
            self.metadata.node(self._abs(rel), m, rel)

    def finish(self) -> None:
        """Links in a root filesystem may point anywhere: they were never followed while writing. Directory
        modes, owners and times are set last, deepest first."""
        self.metadata.finish(self.root)


def _check_not_within(rel: str, target: str | None, linkname: str) -> None:
    """A hardlink's entry replaces what is at `rel`: its target cannot be that entry, or inside it."""
    if target is not None and (target == rel or target.startswith(f"{rel}/")):
        raise UnsafeContentError(f"refusing hardlink {rel[:200]!r} -> {linkname[:200]!r}: it links to itself, or to "
                                 "something inside what it replaces")


def _mkdir(path: str, rel: str) -> None:
    try:
        os.mkdir(path, 0o755)
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            raise UnsafeContentError(f"refusing {rel[:200]!r}…: the path is longer than this system allows") from None
        raise


def _check_digest_first(raw: CheckedStream) -> None:
    """A corrupted blob must be reported as such, not as the tar error it causes."""
    try:
        raw.drain()
    except IntegrityError:
        raise
    except Exception:
        pass


def checked_sparse_map(m: TarMember, rel: str) -> list[tuple[int, int]] | None:
    """A sparse member's data regions, checked as Go checks them (tarstream.checked_regions); None for a
    member that is not sparse."""
    return None if m.sparse is None else checked_regions(m.sparse, m.size, rel)


def normalize_member(name: str) -> str | None:
    """A safe relative path, or None for the archive root; refuses absolute and climbing names."""
    if "\0" in name:
        raise UnsafeContentError(f"refusing member name with a NUL byte: {name!r}")
    if name.startswith("/"):
        raise UnsafeContentError(f"refusing absolute member name {name!r}")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeContentError(f"refusing member name {name!r}: it climbs out with '..'")
    return "/".join(parts) or None
