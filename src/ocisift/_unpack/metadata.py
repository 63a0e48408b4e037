"""What a root filesystem keeps besides its bytes: owners, exact modes, extended attributes, times and nodes.

A rootfs is for a container, not for the user's shell, so image layers unpack
as umoci and containerd unpack them:

- modes exactly as the tar gives them (setuid, setgid, sticky, group and other
  write bits), whatever the process umask;
- as root, the numeric uid/gid of the tar (`tar --same-owner --numeric-owner`,
  umoci, containerd); not as root, the files are the user's and a non-root owner
  is recorded in `user.rootlesscontainers`, as `umoci unpack --rootless` does;
- extended attributes from PAX `SCHILY.xattr.*` (and libarchive's
  `LIBARCHIVE.xattr.*`), `security.capability` included; `trusted.*` and
  `security.*` only as root; what cannot be set is reported once per kind,
  and is a failure only when asked (`--require-xattrs`);
- times of files, symlinks and directories (directories last, deepest first,
  after everything inside them is written);
- the order umoci uses per entry: owner, then mode (a chown clears setuid
  bits), then extended attributes (a chown also clears file capabilities),
  then times.

Nothing here decides where an entry lands: extract.py does that, and hands
this module a descriptor or a path that is already inside the output.
"""

from __future__ import annotations

import base64
import binascii
import errno
import os
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from .._core.errors import MetadataError, OcisiftError, UnsafeContentError
from .._core.tarheaders import pax_time_ns
from .._core.tarstream import TarMember

XATTR_PAX_PREFIX = "SCHILY.xattr."
LIBARCHIVE_XATTR_PREFIX = "LIBARCHIVE.xattr."  # name URL-encoded, value base64 (libarchive's pax writer)
ROOTLESS_XATTR = "user.rootlesscontainers"  # github.com/rootless-containers/proto: Resource{uid=1, gid=2}
NOOP_ID = 0xFFFF_FFFF  # that proto's "unchanged" owner
MAX_ID = 0xFFFF_FFFE  # (uid_t)-1 means "do not change" to chown: never an owner
# Attributes umoci refuses to restore: the host's SELinux label and NFSv4 ACLs belong to the host, not the image.
FORBIDDEN_XATTRS = frozenset({"security.selinux", "system.nfs4_acl"})
ROOT_ONLY_NAMESPACES = ("trusted.", "security.")
MAX_XATTRS_PER_ENTRY = 1024
MAX_XATTR_VALUE = 64 * 1024  # Linux's XATTR_SIZE_MAX
# Times outside what utimensat takes in nanoseconds (int64) are refused, not wrapped.
MAX_TIME_NS = (1 << 63) - 1



def is_privileged() -> bool:
    """Owners, device nodes and trusted/security attributes need root; so do umoci and containerd."""
    return os.geteuid() == 0


def checked_id(value: int, what: str, rel: str) -> int:
    if not isinstance(value, int) or value < 0 or value > MAX_ID:
        raise UnsafeContentError(f"refusing {rel[:200]!r}: its {what} {value!r} is not an owner id (0 to {MAX_ID})")
    return value


def member_times_ns(m: TarMember, rel: str) -> tuple[int, int]:
    """(atime, mtime) in nanoseconds; atime is the PAX atime when there is one, else the mtime (umoci).
    A PAX time keeps its nanoseconds (tarfile's float would not); one utimensat cannot take is refused."""
    pax = m.pax_headers
    mtime = pax_time_ns(rel, "mtime", pax["mtime"]) if "mtime" in pax else int(m.mtime) * 1_000_000_000
    atime = pax_time_ns(rel, "atime", pax["atime"]) if "atime" in pax else mtime
    for what, ns in (("mtime", mtime), ("atime", atime)):
        if abs(ns) > MAX_TIME_NS:
            raise UnsafeContentError(f"refusing {rel[:200]!r}: its {what} is out of the range a file's time has")
    return atime, mtime


def member_xattrs(m: TarMember, rel: str) -> dict[str, bytes]:
    """Extended attributes a member carries, as bytes. tarfile decodes PAX values as UTF-8 with
    surrogateescape, so encoding them back the same way gives the exact bytes (security.capability is
    binary). SCHILY records win over libarchive's when both name one attribute (libarchive writes both)."""
    found: dict[str, bytes] = {}
    for key, value in m.pax_headers.items():
        if key.startswith(LIBARCHIVE_XATTR_PREFIX):
            name = urllib.parse.unquote(key[len(LIBARCHIVE_XATTR_PREFIX):], errors="surrogateescape")
            try:
                text = value.encode("ascii", "strict").rstrip(b"=")  # libarchive writes it without padding
                data = base64.b64decode(text + b"=" * (-len(text) % 4), validate=True)
            except (UnicodeEncodeError, binascii.Error, ValueError):
                raise UnsafeContentError(f"refusing {rel[:200]!r}: its libarchive attribute {name[:80]!r} is not "
                                         "base64") from None
            found.setdefault(name, data)
    for key, value in m.pax_headers.items():
        if key.startswith(XATTR_PAX_PREFIX):
            found[key[len(XATTR_PAX_PREFIX):]] = value.encode("utf-8", "surrogateescape")
    if len(found) > MAX_XATTRS_PER_ENTRY:
        raise UnsafeContentError(f"refusing {rel[:200]!r}: more than {MAX_XATTRS_PER_ENTRY} extended attributes")
    for name, data in found.items():
        if not name or "\0" in name or len(name) > 255:
            raise UnsafeContentError(f"refusing {rel[:200]!r}: {name[:80]!r} is not an extended attribute name")
        if len(data) > MAX_XATTR_VALUE:
            raise UnsafeContentError(f"refusing {rel[:200]!r}: extended attribute {name[:80]!r} is over "
                                     f"{MAX_XATTR_VALUE} bytes")
    return found


def rootless_owner(uid: int, gid: int) -> bytes | None:
    """The `user.rootlesscontainers` value umoci --rootless writes for a non-root owner (None for 0:0)."""
    if uid == 0 and gid == 0:
        return None
    return b"\x08" + _varint(uid or NOOP_ID) + b"\x10" + _varint(gid or NOOP_ID)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


@dataclass(slots=True)
class _Tally:
    count: int = 0
    first: str = ""


@dataclass(frozen=True, slots=True)
class PendingDir:
    """A directory's metadata, applied once everything inside it is written (the last header of it wins)."""

    mode: int
    uid: int
    gid: int
    times_ns: tuple[int, int]
    xattrs: dict[str, bytes]


@dataclass
class RootfsMetadata:
    """Applies a rootfs entry's metadata, and keeps what could not be applied as notes, one per kind."""

    privileged: bool = field(default_factory=is_privileged)
    require_xattrs: bool = False
    dirs: dict[str, PendingDir] = field(default_factory=dict)
    _lost: dict[tuple[str, str], _Tally] = field(default_factory=dict)
    _skipped_nodes: _Tally = field(default_factory=_Tally)
    _foreign_owners: _Tally = field(default_factory=_Tally)

    # -- per entry ---------------------------------------------------------------------

    def owner(self, m: TarMember, rel: str) -> tuple[int, int]:
        return checked_id(m.uid, "uid", rel), checked_id(m.gid, "gid", rel)

    def file(self, fd: int, m: TarMember, rel: str, *, created: int | None = None) -> None:
        """A regular file just written, through its descriptor: nothing is looked up by path again.
        `created`: the mode it was created with; when that is the tar's already, it is not set again."""
        uid, gid = self.owner(m, rel)
        times = member_times_ns(m, rel)
        xattrs = self._wanted_xattrs(m, rel, uid, gid)
        try:  # not a context manager: this runs once per file, and small-file layers have tens of thousands
            if self.privileged:
                os.fchown(fd, uid, gid)
            if created != m.mode & 0o7777:  # setuid, setgid and sticky bits always (a chown clears them)
                os.fchmod(fd, m.mode & 0o7777)
            if xattrs:
                self._set_xattrs(fd, xattrs, rel, "file")
            os.utime(fd, ns=times)
        except OSError as exc:
            raise _refused(rel, exc) from None

    def node(self, path: str, m: TarMember, rel: str) -> None:
        """A symlink, FIFO or device node just made at `path` (inside the output): never followed.
        A symlink has no mode of its own; a FIFO or device node is never opened (that could block)."""
        uid, gid = self.owner(m, rel)
        times = member_times_ns(m, rel)
        xattrs = self._wanted_xattrs(m, rel, uid, gid)
        with _applying(rel):
            if self.privileged:
                os.chown(path, uid, gid, follow_symlinks=False)
            if not m.issym():
                os.chmod(path, m.mode & 0o7777)  # not a link: chmod cannot be led elsewhere
            self._set_xattrs(path, xattrs, rel, "symlink" if m.issym() else "node")
            os.utime(path, ns=times, follow_symlinks=False)

    def directory(self, rel: str, m: TarMember) -> None:
        uid, gid = self.owner(m, rel)
        self.dirs[rel] = PendingDir(m.mode & 0o7777, uid, gid, member_times_ns(m, rel),
                                    self._wanted_xattrs(m, rel, uid, gid))

    def forget(self, rel: str) -> None:
        self.dirs.pop(rel, None)

    def skipped_node(self, rel: str) -> None:
        """A device node not made: mknod needs root (containerd skips them in a user namespace too)."""
        tally = self._skipped_nodes
        tally.count += 1
        tally.first = tally.first or rel

    def finish(self, root: str) -> None:
        """Directories last, deepest first: a parent's mode and times are set after its children's, so
        a read-only directory is filled before it becomes read-only and no later write moves its mtime."""
        for rel in sorted(self.dirs, key=lambda r: r.count("/") if r else -1, reverse=True):
            pending = self.dirs[rel]
            path = f"{root}/{rel}" if rel else root
            with _applying(rel or "."):
                fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
                try:
                    if self.privileged:
                        os.fchown(fd, pending.uid, pending.gid)
                    os.fchmod(fd, pending.mode)
                    self._set_xattrs(fd, pending.xattrs, rel or ".", "directory")
                    os.utime(fd, ns=pending.times_ns)
                finally:
                    os.close(fd)
        self.dirs.clear()

    # -- extended attributes -----------------------------------------------------------

    def _wanted_xattrs(self, m: TarMember, rel: str, uid: int, gid: int) -> dict[str, bytes]:
        xattrs = member_xattrs(m, rel)
        for name in FORBIDDEN_XATTRS & xattrs.keys():
            self._lose(name, "the host's, not the image's, as umoci keeps it", rel)
            del xattrs[name]
        if not self.privileged:
            xattrs.pop(ROOTLESS_XATTR, None)  # umoci --rootless: the layer's own is replaced by the real owner
            owner = rootless_owner(uid, gid)
            if owner is not None:
                xattrs[ROOTLESS_XATTR] = owner
                self._foreign_owners.count += 1
                self._foreign_owners.first = self._foreign_owners.first or rel
            for name in [n for n in xattrs if n.startswith(ROOT_ONLY_NAMESPACES)]:
                self._lose(name, "only root may set it", rel)
                del xattrs[name]
        return xattrs

    def _set_xattrs(self, target: int | str, xattrs: dict[str, bytes], rel: str, kind: str) -> None:
        for name, value in xattrs.items():
            try:
                if isinstance(target, int):
                    os.setxattr(target, name, value)
                else:
                    os.setxattr(target, name, value, follow_symlinks=False)
            except OSError as exc:
                reason = _xattr_reason(exc, kind)
                if self.require_xattrs:
                    raise MetadataError(f"cannot set extended attribute {name!r} on {rel[:200]!r}: {reason} "
                                        "(--require-xattrs)") from None
                self._lose(name, reason, rel)

    def _lose(self, name: str, reason: str, rel: str) -> None:
        tally = self._lost.setdefault((name, reason), _Tally())
        tally.count += 1
        tally.first = tally.first or rel

    # -- report ------------------------------------------------------------------------

    def notes(self) -> list[str]:
        """What the rootfs lacks compared with the image, once per kind, for stderr and --format json."""
        out = [f"extended attribute {name} not set on {_entries(t)} ({reason})"
               for (name, reason), t in sorted(self._lost.items())]
        if self._skipped_nodes.count:
            out.append(f"device nodes skipped: {_entries(self._skipped_nodes)} (making them needs root)")
        if self._foreign_owners.count:
            out.append(f"owners not applied (not running as root): {_entries(self._foreign_owners)} owned by "
                       f"others are yours, their owner kept in {ROOTLESS_XATTR} as umoci --rootless keeps it")
        return out


def _refused(rel: str, exc: OSError) -> OcisiftError:
    """An owner, mode or time the system refuses is the system's answer, not a broken layer: said as such."""
    return OcisiftError(f"cannot set the owner, mode or times of {rel[:200]!r}: {exc.strerror or exc}")


@contextmanager
def _applying(rel: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise _refused(rel, exc) from None


def _entries(tally: _Tally) -> str:
    return f"{tally.count} entr{'y' if tally.count == 1 else 'ies'}, first {tally.first[:200]!r}"


def _xattr_reason(exc: OSError, kind: str) -> str:
    if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
        return "the output's filesystem does not support it"
    if exc.errno == errno.EPERM and kind == "symlink":
        return "Linux allows no user attributes on symlinks"
    if exc.errno in (errno.EPERM, errno.EACCES):
        return "not permitted"
    if exc.errno == errno.ENOSPC or exc.errno == errno.E2BIG or exc.errno == errno.ERANGE:
        return "too large for the output's filesystem"
    return os.strerror(exc.errno or 0) or "refused"
