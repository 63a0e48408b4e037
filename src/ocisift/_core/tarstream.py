"""Tar streams read as Go's archive/tar reads them, at the speed small-file layers need.

Real layers are mostly small files, and Python's `tarfile` spends most of an unpacking on its headers
(a TarInfo, several helper calls per field, a Python-level buffer per read). This reader does what Go's
`archive/tar.Reader.Next` does (the reader docker, containerd, skopeo and umoci use), header by header,
with the same rules, so a layer means the same here as to the runtime that uses it:

- a 512-byte header, its checksum signed or unsigned; numbers in octal (spaces and NULs trimmed) or
  base-256, each within 64 bits; the USTAR (and star) prefix; the format told by its magic;
- PAX extended headers (`x`) parsed record by record (`LEN KEY=VALUE\\n`, the length checked), applied to
  the next member (path, linkpath, uid, gid, size, mtime, atime, ctime; an empty value keeps the header's
  field); numbers decimal (tarheaders.py's rules), anything else refused;
- PAX global headers (`g`) read and applied to nothing, as Go hands them to its caller and containerd and
  umoci skip them; GNU long names and link names (`L`, `K`);
- GNU sparse files: the old GNU form (`S`, with extension blocks) and PAX 0.0, 0.1 and 1.0, their maps
  checked as Go checks them (in order, not overlapping, inside the file, every stored byte used);
- bounds: a PAX header or long name over 1 MiB, more than 8 special headers before one member, a sparse
  map of more than 100,000 regions, are refused before they are read;
- a header that does not parse after the first is refused (tarfile would end the archive there and drop
  every member after it); an archive may end at a member's end without its padding or end blocks (umoci
  writes such layers), but never inside a header or inside a member's data.

Data is handed out as views of one reused buffer, so a small file is written with one system call and no
copy. The caller decides everything else (tar entries are input, never paths to follow).
"""

from __future__ import annotations

import math
import os
import tarfile
from collections.abc import Iterator
from typing import cast

from .errors import IntegrityError, MalformedDocument, UnsafeContentError
from .sources import Readable
from .tarheaders import (
    INT64_MAX,
    MAX_HEADER_CHAIN,
    MAX_SPARSE_ENTRIES,
    MAX_SPECIAL_HEADER,
    checked_pax_numbers,
    pax_integer,
)

BLOCK = 512
BUFFER = 4 << 20  # the reused read buffer; a member larger than what is left streams through it
_ZEROS = bytes(BLOCK)
REGULAR = frozenset({b"0", b"\0", b"7", b"S"})  # '7' contiguous and 'S' GNU sparse are regular files
_HEADER_ONLY = frozenset({b"1", b"2", b"3", b"4", b"5", b"6"})  # no data, whatever the size field says
_SPECIAL = frozenset({b"x", b"g", b"L", b"K", b"X"})
_CHECKSUM_SPACES = 8 * 0x20


class TarFormatError(IntegrityError):
    """What Go's archive/tar calls ErrHeader: the bytes are not a tar stream here."""


class TarMember:
    """One member, as tarfile's TarInfo names its fields (the unpacking code reads either)."""

    __slots__ = ("devmajor", "devminor", "gid", "linkname", "mode", "mtime", "name", "pax_headers", "size",
                 "sparse", "type", "uid")

    def __init__(self) -> None:
        self.name = ""
        self.type = b"0"
        self.mode = 0
        self.uid = 0
        self.gid = 0
        self.size = 0  # the logical size (a sparse file's whole length)
        self.mtime = 0  # whole seconds; pax_headers["mtime"] keeps a PAX time's fraction
        self.linkname = ""
        self.devmajor = 0
        self.devminor = 0
        self.pax_headers: dict[str, str] = {}
        self.sparse: list[tuple[int, int]] | None = None  # (offset, length) data regions of a sparse file

    @classmethod
    def of(cls, info: tarfile.TarInfo) -> TarMember:
        """tarfile's reading of a member, as this reader would give it (the second reader's members)."""
        m = cls()
        m.name, m.type, m.mode, m.uid, m.gid = info.name, info.type, info.mode, info.uid, info.gid
        m.size, m.linkname, m.devmajor, m.devminor = info.size, info.linkname, info.devmajor, info.devminor
        m.mtime = math.floor(info.mtime)
        m.pax_headers = dict(info.pax_headers)
        sparse = cast("list[tuple[int, int]] | None", info.sparse)
        m.sparse = list(sparse) if sparse is not None else None
        if m.type in (tarfile.AREGTYPE, tarfile.CONTTYPE, tarfile.GNUTYPE_SPARSE):
            m.type = b"0"
        return m

    def isreg(self) -> bool:
        return self.type in REGULAR

    def isfile(self) -> bool:
        return self.type in REGULAR

    def isdir(self) -> bool:
        return self.type == b"5"

    def issym(self) -> bool:
        return self.type == b"2"

    def islnk(self) -> bool:
        return self.type == b"1"

    def ischr(self) -> bool:
        return self.type == b"3"

    def isblk(self) -> bool:
        return self.type == b"4"

    def isfifo(self) -> bool:
        return self.type == b"6"

    def __repr__(self) -> str:
        return f"<TarMember {self.name!r} type {self.type!r} size {self.size}>"


def _string(field: bytes) -> str:
    return field.partition(b"\0")[0].decode("utf-8", "surrogateescape")


class TarReader:
    """Members of a tar stream in order, each with its data read (or skipped) before the next."""

    def __init__(self, source: Readable, *, buffer_size: int = BUFFER) -> None:
        self._source = source
        self._buf = bytearray(buffer_size)
        self._view = memoryview(self._buf)
        self._pos = 0
        self._end = 0
        self._eof = False
        self._offset = 0  # stream position of _buf[0]
        self._remaining = 0  # physical data of the current member not yet read
        self._padding = 0
        self._first = True
        self._done = False

    # -- buffer ---------------------------------------------------------------------

    def _fill(self, need: int) -> int:
        """At least `need` bytes buffered from _pos, or all that is left; returns what is buffered."""
        have = self._end - self._pos
        if have >= need or self._eof:
            return have
        if self._pos and (self._pos + need > len(self._buf) or self._end == len(self._buf)):
            self._view[: have] = self._view[self._pos: self._end]
            self._offset += self._pos
            self._pos, self._end = 0, have
        while self._end - self._pos < need and self._end < len(self._buf):
            n = self._source.readinto(self._view[self._end:]) or 0
            if n == 0:
                self._eof = True
                break
            self._end += n
        return self._end - self._pos

    def _take(self, n: int) -> memoryview:
        """The next `n` (at most one buffer) bytes; fewer only at the end of the stream."""
        have = self._fill(n)
        got = min(n, have)
        view = self._view[self._pos: self._pos + got]
        self._pos += got
        return view

    def _block(self) -> bytes | None:
        """The next header block; None at a clean end (nothing more where a header would start)."""
        if self._fill(BLOCK) == 0:
            return None
        block = bytes(self._take(BLOCK))
        if len(block) < BLOCK:
            raise TarFormatError(f"the tar stream ends inside a header at byte {self.position - len(block)}")
        return block

    @property
    def position(self) -> int:
        return self._offset + self._pos

    def _special_data(self, size: int, what: str) -> bytes:
        if size > MAX_SPECIAL_HEADER:
            raise UnsafeContentError(f"refusing a {size}-byte extended tar header, a {what} (the cap is "
                                     f"{MAX_SPECIAL_HEADER} bytes)")
        data = bytes(self._take(size))
        if len(data) < size:
            raise TarFormatError(f"the tar stream ends inside a {what}")
        self._skip_exactly(-size % BLOCK, what)
        return data

    def _skip_exactly(self, n: int, what: str) -> None:
        while n > 0:
            got = len(self._take(min(n, len(self._buf))))
            if got == 0:
                raise TarFormatError(f"the tar stream ends inside a {what}")
            n -= got

    # -- members ----------------------------------------------------------------------

    def __iter__(self) -> Iterator[TarMember]:
        while True:
            member = self.next()
            if member is None:
                return
            yield member

    def next(self) -> TarMember | None:
        """The next member, its data left to read; None at the end of the archive."""
        self.skip_data()
        if self._done:
            return None
        pax: dict[str, str] | None = None
        long_name: str | None = None
        long_link: str | None = None
        chain = 0
        while True:
            start = self.position
            block = self._block()
            if block is None:  # a writer that stopped at a member's end (umoci): the archive ends here
                if pax is not None or long_name is not None or long_link is not None:
                    raise TarFormatError("the tar stream ends after an extended header, before its member")
                self._done = True
                return None
            if block == _ZEROS:
                second = self._block()
                if second is not None and second != _ZEROS:
                    raise TarFormatError(f"a tar header at byte {start + BLOCK} follows a single end block")
                self._done = True
                return None
            member, size, fmt = self._header(block, start)
            kind = member.type
            if kind in _SPECIAL:
                chain += 1
                if chain > MAX_HEADER_CHAIN:
                    raise UnsafeContentError(f"refusing more than {MAX_HEADER_CHAIN} extended tar headers "
                                             "before one member")
                if kind in (b"x", b"g", b"X"):
                    records = self._pax(self._special_data(size, "PAX extended header"), member.name)
                    if kind == b"g":  # Go returns it to its caller, who skips it; nothing pending survives it
                        pax, long_name, long_link, chain = None, None, None, 0
                        continue
                    pax = records
                elif kind == b"L":
                    long_name = _string(self._special_data(size, "GNU long name"))
                else:
                    long_link = _string(self._special_data(size, "GNU long link name"))
                continue
            self._first = False
            if long_name is not None:
                member.name = long_name
            if long_link is not None:
                member.linkname = long_link
            if pax is not None:
                self._merge_pax(member, pax)
            if member.type == b"\0":
                member.type = b"5" if member.name.endswith("/") else b"0"
            physical = 0 if member.type in _HEADER_ONLY else member.size
            if physical < 0:
                raise TarFormatError(f"tar member {member.name[:200]!r} has a negative size")
            self._remaining = physical
            self._padding = -physical % BLOCK
            if member.type == b"S":
                member.sparse = self._old_gnu_sparse(block, fmt, member)
                member.type = b"0"  # a regular file, as Go and tarfile give it
            elif pax is not None and member.type in REGULAR:
                self._pax_sparse(member, pax)
            if member.sparse is not None:
                _check_sparse(member)
            return member

    def _field(self, block: bytes, begin: int, end: int, what: str, name: str) -> int:
        """A header number: the common case (octal digits, spaces and NULs around them) in a few C calls,
        everything else (base-256, stray bytes, a refusal) through Go's full rules in _number."""
        text = block[begin:end].strip(b" \0")
        if text.isdigit() and b"8" not in text and b"9" not in text:
            return int(text, 8)  # at most 12 octal digits: always inside 64 bits
        if not text:
            return 0
        return self._number(block[begin:end], what, name)

    def _header(self, block: bytes, start: int) -> tuple[TarMember, int, str]:
        stored = self._octal(block[148:156], "checksum", "", start)
        unsigned = sum(block) - sum(block[148:156]) + _CHECKSUM_SPACES
        if stored != unsigned and stored != unsigned - 256 * sum(1 for b in block if b > 127):
            if self._first:
                raise TarFormatError("the stream is not a tar archive (its first header's checksum is wrong)")
            raise MalformedDocument(f"the tar header at byte {start} is not valid (checksum); docker, skopeo "
                                    "and containerd refuse it too")
        magic, version = block[257:263], block[263:265]
        if magic == b"ustar\0":
            fmt = "star" if block[508:512] == b"tar\0" else "ustar"
        elif magic == b"ustar " and version == b" \0":
            fmt = "gnu"
        else:
            fmt = "v7"
        m = TarMember()
        name = _string(block[0:100])
        if fmt == "ustar":
            prefix = _string(block[345:500])
            if prefix:
                name = f"{prefix}/{name}"
        elif fmt == "star":
            prefix = _string(block[345:476])
            if prefix:
                name = f"{prefix}/{name}"
        m.name = name
        m.type = block[156:157] or b"\0"
        field = self._field
        m.mode = field(block, 100, 108, "mode", name)
        m.uid = field(block, 108, 116, "uid", name)
        m.gid = field(block, 116, 124, "gid", name)
        size = field(block, 124, 136, "size", name)
        m.size = size
        m.mtime = field(block, 136, 148, "mtime", name)
        m.linkname = _string(block[157:257])
        if fmt != "v7":
            m.devmajor = field(block, 329, 337, "devmajor", name)
            m.devminor = field(block, 337, 345, "devminor", name)
        return m, size, fmt

    def _octal(self, field: bytes, what: str, name: str, start: int | None = None) -> int:
        text = field.strip(b" \0").partition(b"\0")[0]
        if not text:
            return 0
        try:
            if not text.isdigit():  # int() would take a sign, '_' and other scripts' digits; Go does not
                raise ValueError
            value = int(text, 8)  # 8 and 9 raise here
        except ValueError:
            if start is not None and self._first:
                raise TarFormatError("the stream is not a tar archive (its first header does not parse)") from None
            where = f"tar member {name[:200]!r}" if name else f"the tar header at byte {start}"
            raise MalformedDocument(f"{where}: header field {what} {field!r} is not an octal number; docker, "
                                    "skopeo and containerd refuse it too") from None
        if value > INT64_MAX:
            raise MalformedDocument(f"tar member {name[:200]!r}: header field {what} does not fit in 64 bits")
        return value

    def _number(self, field: bytes, what: str, name: str) -> int:
        """Go's parseNumeric: base-256 when the high bit is set (0xff first: negative), else octal."""
        if field and field[0] & 0x80:
            invert = 0xFF if field[0] & 0x40 else 0
            value = 0
            for i, byte in enumerate(field):
                byte ^= invert
                if i == 0:
                    byte &= 0x7F
                if value >> 56:
                    raise MalformedDocument(f"tar member {name[:200]!r}: header field {what} does not fit in "
                                            "64 bits")
                value = (value << 8) | byte
            if value >> 63:
                raise MalformedDocument(f"tar member {name[:200]!r}: header field {what} does not fit in 64 bits")
            return ~value if invert else value
        return self._octal(field, what, name, self.position)

    # -- PAX ------------------------------------------------------------------------------

    @staticmethod
    def _pax(data: bytes, name: str) -> dict[str, str]:
        """Go's parsePAX: `LEN KEY=VALUE\\n` records, each length exact; GNU sparse 0.0 pairs joined as a map."""
        records: dict[str, str] = {}
        sparse: list[str] = []
        pos, end = 0, len(data)
        while pos < end:
            space = data.find(b" ", pos, min(end, pos + 21))
            if space < 0:
                raise MalformedDocument(f"tar member {name[:200]!r}: a PAX record without its length")
            length_text = data[pos:space]
            if not length_text.isdigit():
                raise MalformedDocument(f"tar member {name[:200]!r}: a PAX record length {length_text[:20]!r} "
                                        "is not a number")
            length = int(length_text)
            stop = pos + length
            if length < 5 or stop > end or stop <= space + 1 or data[stop - 1:stop] != b"\n":
                raise MalformedDocument(f"tar member {name[:200]!r}: a PAX record's length does not fit it")
            key_bytes, sep, value_bytes = data[space + 1:stop - 1].partition(b"=")
            if not sep or not key_bytes or b"\0" in key_bytes:
                raise MalformedDocument(f"tar member {name[:200]!r}: a PAX record without a key")
            key = key_bytes.decode("utf-8", "surrogateescape")
            value = value_bytes.decode("utf-8", "surrogateescape")
            if key in ("path", "linkpath", "uname", "gname") and "\0" in value:
                raise MalformedDocument(f"tar member {name[:200]!r}: PAX {key} holds a NUL byte")
            if key in ("GNU.sparse.offset", "GNU.sparse.numbytes"):
                wanted = "GNU.sparse.offset" if len(sparse) % 2 == 0 else "GNU.sparse.numbytes"
                if key != wanted or "," in value:
                    raise MalformedDocument(f"tar member {name[:200]!r}: PAX sparse records out of order")
                sparse.append(value)
                if len(sparse) > 2 * MAX_SPARSE_ENTRIES:
                    raise UnsafeContentError(f"refusing a sparse tar member with more than {MAX_SPARSE_ENTRIES} "
                                             "regions")
            else:
                records[key] = value
            pos = stop
        if sparse:
            records["GNU.sparse.map"] = ",".join(sparse)
        return records

    @staticmethod
    def _merge_pax(m: TarMember, pax: dict[str, str]) -> None:
        name = pax.get("path") or m.name
        checked = checked_pax_numbers(name, pax)  # Go's number rules; empty values keep the header's field
        for key, value in checked.items():
            if key == "path":
                m.name = value
            elif key == "linkpath":
                m.linkname = value
            elif key == "uid":
                m.uid = int(value)
            elif key == "gid":
                m.gid = int(value)
            elif key == "size":
                m.size = int(value)
            elif key == "mtime":
                m.mtime = int(value.partition(".")[0] or "0") if value[:1] != "-" else -int(
                    -(-float(value) // 1))  # whole seconds, floored; the text keeps the nanoseconds
        m.pax_headers = checked

    # -- sparse -----------------------------------------------------------------------------

    def _old_gnu_sparse(self, block: bytes, fmt: str, m: TarMember) -> list[tuple[int, int]]:
        if fmt != "gnu":
            raise MalformedDocument(f"tar member {m.name[:200]!r}: a GNU sparse header in a {fmt} archive")
        m.size = self._number(block[483:495], "sparse real size", m.name)
        regions: list[tuple[int, int]] = []
        area, count, extended = block[386:482], 4, block[482]
        while True:
            for i in range(count):
                entry = area[i * 24:(i + 1) * 24]
                if entry[0] == 0:
                    break
                regions.append((self._number(entry[:12], "sparse offset", m.name),
                                self._number(entry[12:], "sparse length", m.name)))
                if len(regions) > MAX_SPARSE_ENTRIES:
                    raise UnsafeContentError(f"refusing a sparse tar member with more than {MAX_SPARSE_ENTRIES} "
                                             "regions")
            if not extended:
                return regions
            ext = self._block()
            if ext is None:
                raise TarFormatError(f"the tar stream ends inside the sparse map of {m.name[:200]!r}")
            area, count, extended = ext[:504], 21, ext[504]

    def _pax_sparse(self, m: TarMember, pax: dict[str, str]) -> None:
        major, minor = pax.get("GNU.sparse.major", ""), pax.get("GNU.sparse.minor", "")
        if major == "0" and minor in ("0", "1"):
            one_zero = False
        elif major == "1" and minor == "0":
            one_zero = True
        elif major or minor:
            return  # an unknown sparse version: Go reads the member as the plain file it says it is
        elif pax.get("GNU.sparse.map") or "GNU.sparse.size" in pax or "GNU.sparse.numblocks" in pax:
            # Go takes a 0.x member only with a map; one with GNU.sparse.size and no regions it reads as an
            # empty plain file, tarfile as a file that is all hole. The stricter reading wins: a sparse file
            # (a TiB of holes is then refused by the size cap, not written as nothing).
            one_zero = False
        else:
            return
        if pax.get("GNU.sparse.name"):
            m.name = pax["GNU.sparse.name"]
        size = pax.get("GNU.sparse.size") or pax.get("GNU.sparse.realsize")
        if size:
            m.size = pax_integer(m.name, "GNU.sparse.size", size)
        if one_zero:
            m.sparse = self._sparse_map_1x0(m)
            return
        count = pax_integer(m.name, "GNU.sparse.numblocks", pax.get("GNU.sparse.numblocks", ""))
        if count < 0 or count > MAX_SPARSE_ENTRIES:
            raise UnsafeContentError(f"refusing a sparse tar member with {count} regions (the cap is "
                                     f"{MAX_SPARSE_ENTRIES})")
        parts = pax.get("GNU.sparse.map", "").split(",")
        if parts == [""]:
            parts = []
        if len(parts) != 2 * count:
            raise MalformedDocument(f"tar member {m.name[:200]!r}: its sparse map does not hold "
                                    "GNU.sparse.numblocks regions")
        numbers = [pax_integer(m.name, "GNU.sparse.map", p) for p in parts]
        m.sparse = list(zip(numbers[::2], numbers[1::2], strict=True))

    def _sparse_map_1x0(self, m: TarMember) -> list[tuple[int, int]]:
        """PAX sparse 1.0: the map is decimal lines at the start of the member's data, padded to a block."""
        numbers: list[int] = []
        wanted: int | None = None
        line = bytearray()
        used = 0
        while wanted is None or len(numbers) < 2 * wanted:
            chunk = self.read(BLOCK)
            if len(chunk) < BLOCK:
                raise TarFormatError(f"the tar stream ends inside the sparse map of {m.name[:200]!r}")
            used += BLOCK
            for byte in bytes(chunk):
                if wanted is not None and len(numbers) >= 2 * wanted:
                    break
                if byte != 0x0A:
                    line.append(byte)
                    if len(line) > 20:
                        raise MalformedDocument(f"tar member {m.name[:200]!r}: a sparse map entry is too long")
                    continue
                number = pax_integer(m.name, "sparse map entry", line.decode("ascii", "replace"))
                line.clear()
                if number < 0:
                    raise MalformedDocument(f"tar member {m.name[:200]!r}: a sparse map entry is negative")
                if wanted is None:
                    if number > MAX_SPARSE_ENTRIES:
                        raise UnsafeContentError(f"refusing a sparse tar member with {number} regions (the cap "
                                                 f"is {MAX_SPARSE_ENTRIES})")
                    wanted = number
                else:
                    numbers.append(number)
        return list(zip(numbers[::2], numbers[1::2], strict=True))

    # -- data ---------------------------------------------------------------------------------

    @property
    def remaining(self) -> int:
        """Stored bytes of the current member not read yet."""
        return self._remaining

    def read(self, n: int) -> memoryview:
        """Up to `n` stored bytes of the current member (a view valid until the next read)."""
        n = min(n, self._remaining, len(self._buf))
        if n <= 0:
            return self._view[0:0]
        view = self._take(n)
        if len(view) < n:
            raise TarFormatError("the tar stream ends inside a member's data")
        self._remaining -= len(view)
        return view

    def write_to(self, fd: int, count: int | None = None, offset: int | None = None) -> int:
        """`count` stored bytes (all that is left by default) into `fd`, at `offset` if given; returns them."""
        left = self._remaining if count is None else count
        written = 0
        while left > 0:
            view = self.read(left)
            done = 0
            while done < len(view):
                if offset is None:
                    done += os.write(fd, view[done:])
                else:
                    done += os.pwrite(fd, view[done:], offset + written + done)
            written += done
            left -= done
        return written

    def skip_data(self) -> None:
        """What is left of the current member's data, and its padding (which an archive may end without)."""
        while self._remaining > 0:
            self.read(self._remaining)
        if self._padding:
            have = self._fill(self._padding)
            self._pos += min(have, self._padding)
            self._padding = 0


def checked_regions(regions: list[tuple[int, int]], size: int, name: str) -> list[tuple[int, int]]:
    """A sparse map checked as Go's validateSparseEntries checks it: regions in order, not overlapping,
    inside the file; empty regions (unused slots, end markers) dropped, since they hold nothing.

    Checked, the holes are exactly the size less the data, so they can be counted against the caps:
    unchecked (tarfile takes any map), one region claiming the whole file over a single stored byte is a
    TiB of zeros from a layer of a few hundred bytes."""
    end = 0
    kept: list[tuple[int, int]] = []
    for offset, length in regions:
        if length == 0:
            continue  # an unused slot (tarfile keeps a GNU header's empty ones) holds nothing
        if offset < 0 or length < 0 or offset < end or offset + length > size:
            raise UnsafeContentError(f"refusing sparse member {name[:200]!r}: its regions are out of order, "
                                     "overlap or run past its size")
        end = offset + length
        kept.append((offset, length))
    return kept


def _check_sparse(m: TarMember) -> None:
    m.sparse = checked_regions(m.sparse or [], m.size, m.name)
