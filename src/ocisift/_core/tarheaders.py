"""Tar headers read as Go's archive/tar reads them, with bounds: the one place every tar reader gets them.

Layers being unpacked, oci-archive and docker-archive files alike are read through `CappedTarInfo`, so a
header means the same wherever it is read, and the same as to docker, skopeo and containerd (Go):

- Every header tarfile would read into memory (PAX, GNU long names) has a size cap, chains of them a length
  cap, sparse maps an entry cap; past any of them the tar is refused, not read.
- Numbers are refused where Go refuses them, naming the member and the field. tarfile is looser: it maps a
  PAX `size`, `uid` or `gid` it cannot parse to 0 (a `size` of 0 then reads the member's data as the next
  headers), keeps `mtime=nan` or `inf` (which nothing can write back: `os.utime` and tarfile's own writer
  raise), takes `1_000`, ` 5` and other scripts' digits, and ends the archive silently at a header whose
  octal digits are bad. Go's rules: a PAX time is `[+-]digits[.digits]` with whole seconds in an int64 (a
  negative time is a date before 1970, and valid); PAX `size`, `uid`, `gid` are `[+-]digits` in an int64;
  an empty PAX value leaves the header block's field as it is; every number of a header block (octal or
  base-256) fits an int64. On top, as Go checks when it reads the member: a size is never negative.
"""

from __future__ import annotations

import re
import tarfile
import threading
from typing import Self, cast

from .errors import MalformedDocument, UnsafeContentError

# Go's archive/tar allows 1 MiB for a PAX header or a GNU long name; tarfile would read any size into memory.
MAX_SPECIAL_HEADER = 1 << 20
MAX_SPARSE_ENTRIES = 100_000
MAX_HEADER_CHAIN = 8  # PAX and long-name headers in a row before one member (tarfile would recurse through all)
INT64_MAX = (1 << 63) - 1
INT64_MIN = -(1 << 63)
_SPECIAL = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE, tarfile.GNUTYPE_LONGNAME,
            tarfile.GNUTYPE_LONGLINK)
_chain = threading.local()
_INVALID_HEADER: type[Exception] = tarfile.InvalidHeaderError  # type: ignore[attr-defined]  # not in typeshed

_PAX_INTEGER = re.compile(r"[+-]?[0-9]+", re.ASCII)
_PAX_TIME = re.compile(r"([+-]?[0-9]+)(?:\.([0-9]*))?", re.ASCII)
_PAX_TIMES = ("mtime", "atime", "ctime")
_PAX_INTEGERS = ("size", "uid", "gid")
_SPARSE_NUMBERS = ("GNU.sparse.size", "GNU.sparse.realsize", "GNU.sparse.numblocks", "GNU.sparse.offset",
                   "GNU.sparse.numbytes", "GNU.sparse.major", "GNU.sparse.minor")
_SPARSE_00_RECORD = re.compile(rb"[0-9]+ GNU\.sparse\.(offset|numbytes)=([^\n]*)\n")
_BLOCK_NUMBERS = ("mode", "uid", "gid", "size", "mtime", "devmajor", "devminor")


def _shown(value: str) -> str:
    return repr(value if len(value) <= 40 else value[:40] + "…")


def _refuse(name: str, what: str, value: str, why: str) -> MalformedDocument:
    return MalformedDocument(f"tar member {name[:200]!r}: {what} {_shown(value)} {why} (docker, skopeo and "
                             "containerd refuse it too)")


def pax_integer(name: str, key: str, value: str) -> int:
    """A PAX integer as Go's strconv.ParseInt(value, 10, 64) reads it, or a refusal naming member and field."""
    if not _PAX_INTEGER.fullmatch(value):
        raise _refuse(name, f"PAX {key}", value, "is not a decimal integer")
    digits = value.lstrip("+-").lstrip("0")  # Go takes leading zeros; int() refuses past 4,300 digits
    number = int(f"{value[0] if value[0] in '+-' else ''}{digits or '0'}") if len(digits) <= 19 else INT64_MAX + 1
    if not INT64_MIN <= number <= INT64_MAX:
        raise _refuse(name, f"PAX {key}", value, "does not fit in 64 bits")
    return number


def pax_time_ns(name: str, key: str, value: str) -> int:
    """A PAX time as Go's parsePAXTime reads it (seconds in an int64, any digits after a point), in exact
    nanoseconds (a float would lose the nanoseconds umoci keeps); or a refusal naming member and field."""
    match = _PAX_TIME.fullmatch(value)
    if match is None:
        raise _refuse(name, f"PAX {key}", value, "is not a time in decimal seconds")
    whole = pax_integer(name, key, match.group(1))
    fraction = int(((match.group(2) or "") + "000000000")[:9])
    return whole * 1_000_000_000 + (-fraction if match.group(1).startswith("-") else fraction)


def checked_pax_numbers(name: str, headers: dict[str, str]) -> dict[str, str]:
    """The records tarfile may apply: every number checked as Go checks it, empty ones dropped (Go keeps the
    header block's field where a record is empty; tarfile would make it 0), and so are an empty path or
    linkpath (tarfile would name the member "", and the member would be dropped without a word)."""
    out: dict[str, str] = {}
    for key, value in headers.items():
        if key in ("path", "linkpath") and value == "":
            continue
        if key in _PAX_TIMES or key in _PAX_INTEGERS or key in _SPARSE_NUMBERS:
            if value == "":
                continue
            if key in _PAX_TIMES:
                pax_time_ns(name, key, value)
            elif pax_integer(name, key, value) < 0 and key not in ("uid", "gid"):
                raise _refuse(name, f"PAX {key}", value, "is negative")
        elif key == "GNU.sparse.map":
            for part in value.split(","):
                if pax_integer(name, key, part) < 0:
                    raise _refuse(name, f"PAX {key}", value, "has a negative number")
        out[key] = value
    return out


class CappedTarInfo(tarfile.TarInfo):
    """tarfile's headers with Go's number rules and bounds (see the module's docstring)."""

    @classmethod
    def fromtarfile(cls, tf: tarfile.TarFile) -> Self:
        """tarfile's own reading of one header block, with its numbers checked before anything uses them.

        An invalid block past the first is refused: tarfile would take it for the end of the archive and
        drop every member after it without a word (the first block's is how a file says it is no tar).
        """
        offset = tf.fileobj.tell()
        buf = tf.fileobj.read(tarfile.BLOCKSIZE)
        try:
            obj = cls.frombuf(buf, tf.encoding, tf.errors)
        except _INVALID_HEADER as exc:
            if offset == 0:
                raise
            raise MalformedDocument(f"the tar header at byte {offset} is not valid ({exc}); docker, skopeo "
                                    "and containerd refuse it too") from None
        obj.offset = offset
        for field in _BLOCK_NUMBERS:
            number = getattr(obj, field)
            if not INT64_MIN <= number <= INT64_MAX:
                raise _refuse(obj.name, f"header field {field}", str(number), "does not fit in 64 bits")
        if obj.size < 0:
            raise _refuse(obj.name, "header field size", str(obj.size), "is negative")
        return cast(Self, obj._proc_member(tf))  # a TarInfo of this class (tarfile makes next ones by cls)

    def _proc_pax(self, tf: tarfile.TarFile) -> tarfile.TarInfo:
        """A global PAX header is read and ignored, as Go's archive/tar (and so containerd, umoci, Docker)
        ignores it: tarfile would apply its path, size, times and attributes to every later member, and a
        tar must not mean one thing to ocisift and another to the runtime that uses the same image."""
        if self.type == tarfile.XGLTYPE:
            tf.fileobj.read(self._block(self.size))  # type: ignore[attr-defined]
            return self.fromtarfile(tf)
        return super()._proc_pax(tf)  # type: ignore[misc,no-any-return]

    def _apply_pax_info(self, pax_headers: dict[str, str], encoding: str, errors: str) -> None:
        name = pax_headers.get("path") or pax_headers.get("GNU.sparse.name") or self.name
        super()._apply_pax_info(checked_pax_numbers(name, pax_headers), encoding, errors)  # type: ignore[misc]

    def _proc_member(self, tf: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type not in _SPECIAL:
            return super()._proc_member(tf)  # type: ignore[misc,no-any-return]
        if self.size > MAX_SPECIAL_HEADER:
            raise UnsafeContentError(f"refusing a {self.size}-byte extended tar header (the cap is "
                                     f"{MAX_SPECIAL_HEADER} bytes)")
        depth = getattr(_chain, "depth", 0)
        if depth >= MAX_HEADER_CHAIN:
            raise UnsafeContentError(f"refusing more than {MAX_HEADER_CHAIN} extended tar headers before one member")
        _chain.depth = depth + 1
        try:
            return super()._proc_member(tf)  # type: ignore[misc,no-any-return]
        finally:
            _chain.depth = depth

    def _proc_sparse(self, tf: tarfile.TarFile) -> tarfile.TarInfo:
        """A GNU sparse member: tarfile's reading of the extension blocks, with a cap on how many."""
        structs, isextended, origsize = self._sparse_structs  # type: ignore[attr-defined]
        del self._sparse_structs  # type: ignore[attr-defined]
        while isextended:
            if len(structs) > MAX_SPARSE_ENTRIES:
                raise UnsafeContentError(f"refusing a sparse tar member with more than {MAX_SPARSE_ENTRIES} regions")
            buf = tf.fileobj.read(tarfile.BLOCKSIZE)
            if len(buf) < tarfile.BLOCKSIZE:
                raise tarfile.ReadError("unexpected end of data in a sparse header")
            pos = 0
            for _ in range(21):
                try:
                    offset = tarfile.nti(buf[pos:pos + 12])  # type: ignore[attr-defined]
                    numbytes = tarfile.nti(buf[pos + 12:pos + 24])  # type: ignore[attr-defined]
                except ValueError:
                    break
                if offset and numbytes:
                    structs.append((offset, numbytes))
                pos += 24
            isextended = bool(buf[504])
        self.sparse = structs
        self.offset_data = tf.fileobj.tell()
        tf.offset = self.offset_data + self._block(self.size)  # type: ignore[attr-defined]
        self.size = origsize
        if not 0 <= origsize <= INT64_MAX:
            raise _refuse(self.name, "sparse real size", str(origsize), "is negative or does not fit in 64 bits")
        return self

    def _proc_gnusparse_00(self, next_: tarfile.TarInfo, pax_headers: dict[str, str], buf: bytes) -> None:
        """PAX sparse 0.0 repeats its offset and numbytes records: each is checked, not only the last."""
        name = pax_headers.get("path") or next_.name
        checked_pax_numbers(name, pax_headers)
        for record in _SPARSE_00_RECORD.finditer(buf):
            key = f"GNU.sparse.{record.group(1).decode()}"
            checked_pax_numbers(name, {key: record.group(2).decode("utf-8", "replace")})
        super()._proc_gnusparse_00(next_, pax_headers, buf)  # type: ignore[misc]

    def _proc_gnusparse_01(self, next_: tarfile.TarInfo, pax_headers: dict[str, str]) -> None:
        checked_pax_numbers(pax_headers.get("path") or next_.name, pax_headers)
        super()._proc_gnusparse_01(next_, pax_headers)  # type: ignore[misc]

    def _proc_gnusparse_10(self, next_: tarfile.TarInfo, pax_headers: dict[str, str], tf: tarfile.TarFile) -> None:
        """A PAX 1.0 sparse map: tarfile's reading of it, with a cap on its entries and its numbers checked."""
        name = pax_headers.get("GNU.sparse.name") or next_.name
        checked_pax_numbers(name, pax_headers)
        sparse: list[int] = []
        buf = tf.fileobj.read(tarfile.BLOCKSIZE)
        head, _, buf = buf.partition(b"\n")
        fields = _map_number(name, head)
        if fields > MAX_SPARSE_ENTRIES:
            raise UnsafeContentError(f"refusing a sparse tar member with {fields} regions (the cap is "
                                     f"{MAX_SPARSE_ENTRIES})")
        while len(sparse) < fields * 2:
            if b"\n" not in buf:
                if len(buf) > tarfile.BLOCKSIZE:  # no number is this long: a map made to be read to the end
                    raise _refuse(name, "sparse map entry", buf.decode("ascii", "replace"), "is too long")
                more = tf.fileobj.read(tarfile.BLOCKSIZE)
                if not more:
                    raise tarfile.ReadError("unexpected end of data in a sparse map")
                buf += more
            number, _, buf = buf.partition(b"\n")
            sparse.append(_map_number(name, number))
        next_.offset_data = tf.fileobj.tell()
        next_.sparse = list(zip(sparse[::2], sparse[1::2], strict=False))  # type: ignore[assignment]  # typeshed says bytes


def _map_number(name: str, raw: bytes) -> int:
    """One number of a PAX 1.0 sparse map (a line of the member's data): decimal, not negative, 64 bits."""
    text = raw.decode("ascii", "replace")
    number = pax_integer(name, "sparse map entry", text)
    if number < 0:
        raise _refuse(name, "sparse map entry", text, "is negative")
    return number

