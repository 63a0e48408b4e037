"""Numbers in the headers of oci-archive and docker-archive files, read as Go's archive/tar reads them.

Each archive here is written byte by byte (tarfile will not write `mtime=nan`, nor a PAX `size` of `abc`):
a valid archive whose one member (a blob, or a docker archive's layer) carries the bad number, in a PAX
record or in its header block. Every command that reads or rewrites an archive is run on each: a bad
number is exit 5 naming the member and the field, with the archive untouched and nothing left beside
it; a number Go takes (a negative mtime is a date before 1970, an empty PAX value leaves the header
block's field) reads as it should, and an archive rewritten around it reads back whole.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

import ocisift
from conftest import artifact, entry, write_index
from ocisift._core.platform import Platform
from ocisift._core.tarheaders import CappedTarInfo
from ocisift._stores.layout import LayoutStore

pytestmark = pytest.mark.usefixtures("tar_reader")  # each test under both tar readers

TAG = "1"

# -- tars by hand -----------------------------------------------------------------------------------------


def _checksummed(block: bytearray) -> bytes:
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


def _header(name: str, size: int, kind: bytes = tarfile.REGTYPE, mtime: int = 1_700_000_000) -> bytearray:
    info = tarfile.TarInfo(name)
    info.size, info.type, info.mode, info.mtime = size, kind, 0o644, mtime
    return bytearray(info.tobuf(tarfile.USTAR_FORMAT))


def _base256(number: int, width: int) -> bytes:
    """A header number in GNU's base-256 form: 0x80 (or 0xff, negative) then big-endian two's complement."""
    raw = (number % (1 << (8 * (width - 1)))).to_bytes(width - 1, "big")
    return bytes([0xFF if number < 0 else 0x80]) + raw


def _records(records: list[tuple[str, str]]) -> bytes:
    out = b""
    for key, value in records:
        body = f" {key}={value}\n".encode()
        n = len(body) + 1
        while len(str(n)) + len(body) != n:
            n += 1
        out += str(n).encode() + body
    return out


def _padded(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 512)


FIELDS = {"mode": (100, 8), "uid": (108, 8), "gid": (116, 8), "size": (124, 12), "mtime": (136, 12)}


def craft(files: list[tuple[str, bytes]], victim: str, *, pax: list[tuple[str, str]] | None = None,
          block: dict[str, bytes] | None = None) -> bytes:
    """A tar of `files`; the member `victim` gets a PAX header with `pax` records before it, and its
    header block's fields replaced by the raw bytes in `block` (checksum made right again)."""
    out = b""
    for name, data in files:
        if name == victim and pax is not None:
            body = _records(pax)
            out += _checksummed(_header("PaxHeaders/" + name[-80:], len(body), tarfile.XHDTYPE)) + _padded(body)
        head = _header(name, len(data))
        for field, raw in (block or {}).items() if name == victim else ():
            at, width = FIELDS[field]
            head[at:at + width] = raw.ljust(width, b"\0")
        out += _checksummed(head) + _padded(data)
    return out + b"\0" * 1024


# -- the archives -----------------------------------------------------------------------------------------


def _layout_files(root: Path) -> tuple[list[tuple[str, bytes]], str]:
    """An image layout (config with a platform, one layer) tagged TAG, as (member name, bytes), and the
    name of its layer blob."""
    store = LayoutStore.create(str(root))
    desc = artifact(store, {"hello.txt": b"hello\n"}, platform=Platform("linux", "amd64"))
    write_index(store, [entry(desc, org__opencontainers__image__ref__name=TAG)])
    files = []
    for name in ("oci-layout", "index.json"):
        files.append((name, (root / name).read_bytes()))
    for blob in sorted((root / "blobs" / "sha256").iterdir()):
        files.append((f"blobs/sha256/{blob.name}", blob.read_bytes()))
    manifest = json.loads((root / "blobs" / "sha256" / desc.digest.hex).read_bytes())
    return files, f"blobs/sha256/{manifest['layers'][0]['digest'].split(':')[1]}"


def _docker_files() -> tuple[list[tuple[str, bytes]], str]:
    """A classic `docker save` file: one image, one plain layer, its config naming the diff_id."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = 6
        tar.addfile(info, io.BytesIO(b"hello\n"))
    data = layer.getvalue()
    diff_id = hashlib.sha256(data).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]}}).encode()
    config_name = f"{hashlib.sha256(config).hexdigest()}.json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [f"example.com/app:{TAG}"],
                            "Layers": [f"{diff_id}.tar"]}]).encode()
    return [(config_name, config), (f"{diff_id}.tar", data), ("manifest.json", manifest)], f"{diff_id}.tar"


@pytest.fixture(scope="module")
def layout_files(tmp_path_factory) -> tuple[list[tuple[str, bytes]], str]:
    return _layout_files(tmp_path_factory.mktemp("numbers") / "layout")


@pytest.fixture
def source(tmp_path) -> str:
    """Another image to copy and add into the archives."""
    store = LayoutStore.create(str(tmp_path / "src"))
    desc = artifact(store, {"other.txt": b"other\n"}, platform=Platform("linux", "arm64"))
    write_index(store, [entry(desc, org__opencontainers__image__ref__name="2")])
    return f"oci:{store.path}:2"


def oci_commands(archive: Path, out: Path, source: str) -> list[tuple[str, ...]]:
    """Every command that reads an oci-archive, or rewrites it keeping what it held."""
    ref = f"oci-archive:{archive}"
    return [
        ("resolve", f"{ref}:{TAG}"), ("resolve", f"{ref}:{TAG}", "--platform", "linux/amd64"),
        ("tree", ref), ("tags", ref), ("manifest", "get", f"{ref}:{TAG}"),
        ("pull", f"{ref}:{TAG}", "-o", str(out / "pulled"), "--mode", "extract"),
        ("copy", f"{ref}:{TAG}", f"oci:{out}/copied:{TAG}"),
        ("index", "create", f"oci:{out}/composed:{TAG}", f"{ref}:{TAG}"),
        ("copy", source, f"{ref}:2"),
        ("tag", f"{ref}:{TAG}", "3"),
        ("index", "create", f"{ref}:idx", source),
        ("index", "add", f"{ref}:idx", f"oci:{out}/copied:{TAG}"),
        ("untag", f"{ref}:3"),
        ("gc", ref, "--grace", "0"),
    ]


def docker_commands(archive: Path, out: Path, source: str) -> list[tuple[str, ...]]:
    """Every command that reads a docker-archive (one that exists is never written: it is written whole)."""
    ref = f"docker-archive:{archive}"
    return [
        ("resolve", f"{ref}:example.com/app:{TAG}"), ("resolve", f"{ref}@0", "--platform", "linux/amd64"),
        ("tree", ref), ("tags", ref), ("manifest", "get", f"{ref}@0"),
        ("pull", f"{ref}@0", "-o", str(out / "pulled"), "--mode", "extract-all"),
        ("copy", f"{ref}@0", f"oci:{out}/copied:{TAG}"),
        ("copy", f"{ref}@0", f"oci-archive:{out}/copied.tar:{TAG}"),
        ("index", "create", f"oci:{out}/composed:{TAG}", f"{ref}@0"),
    ]


def left_beside(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(".ocisift-"))


def refused_everywhere(cli, archive: Path, commands: list[tuple[str, ...]], out: Path, *words: str) -> None:
    before = archive.read_bytes()
    for args in commands:
        res = cli(*args, "--format", "json")
        assert res.code == 5, (args, res.code, res.out, res.err)
        message = res.json()["error"]["message"]
        assert "internal error" not in res.out + res.err
        for word in (str(archive), *words):
            assert word in message, (args, message)
        assert archive.read_bytes() == before, args  # nothing of the user's lost
        assert left_beside(archive.parent) == [], args
        assert not out.exists() or not any(out.iterdir()), (args, list(out.iterdir()))


# -- PAX records --------------------------------------------------------------------------------------------

TIMES = ("mtime", "atime", "ctime")
# What Go's strconv.ParseInt(v, 10, 64) and parsePAXTime refuse, and tarfile does not (it keeps nan and
# inf as floats, takes underscores, spaces and other scripts' digits, and makes the rest 0).
BAD_TIMES = ["nan", "NaN", "inf", "-inf", "1e3", "9" * 30, "-" + "9" * 20, "abc", " 5", "5 ", "1_0", "٣",
             "0x10", ".5", "1.2.3", "1.5e3", "+-1", "-"]
BAD_INTEGERS = ["-1", "nan", "inf", "9" * 30, "9223372036854775808", "abc", "1e3", "1_0", " 5", "٣", "0x10",
                "1.5", "+-1"]
BAD_IDS = [v for v in BAD_INTEGERS if v != "-1"]  # Go takes a negative uid or gid (ParseInt), and so do we
PAX_REFUSED = ([(f, v) for f in TIMES for v in BAD_TIMES] + [("size", v) for v in BAD_INTEGERS]
               + [(f, v) for f in ("uid", "gid") for v in BAD_IDS])


@pytest.mark.parametrize(("field", "value"), PAX_REFUSED)
def test_a_bad_pax_number_in_an_oci_archive_is_exit_5_for_every_command(tmp_path, cli, layout_files, source,
                                                                         field, value):
    files, victim = layout_files
    archive = tmp_path / "a" / "image.tar"
    archive.parent.mkdir()
    archive.write_bytes(craft(files, victim, pax=[(field, value)]))
    out = tmp_path / "out"
    refused_everywhere(cli, archive, oci_commands(archive, out, source), out, victim, field)


@pytest.mark.parametrize(("field", "value"), PAX_REFUSED)
def test_a_bad_pax_number_in_a_docker_archive_is_exit_5_for_every_command(tmp_path, cli, source, field, value):
    files, victim = _docker_files()
    archive = tmp_path / "a" / "saved.tar"
    archive.parent.mkdir()
    archive.write_bytes(craft(files, victim, pax=[(field, value)]))
    out = tmp_path / "out"
    refused_everywhere(cli, archive, docker_commands(archive, out, source), out, victim, field)


@pytest.mark.parametrize("kind", ["oci", "docker"])
@pytest.mark.parametrize("record", [
    ("GNU.sparse.size", "abc"), ("GNU.sparse.realsize", "-5"), ("GNU.sparse.map", "0,x"),
    ("GNU.sparse.numblocks", "nan"),
], ids=lambda r: f"{r[0]}={r[1]}")
def test_a_bad_sparse_number_is_exit_5_never_an_internal_error(tmp_path, cli, layout_files, source, kind, record):
    """tarfile's int() of these raised ValueError straight out of the reader."""
    files, victim = layout_files if kind == "oci" else _docker_files()
    archive = tmp_path / "a" / "x.tar"
    archive.parent.mkdir()
    archive.write_bytes(craft(files, victim, pax=[record, ("GNU.sparse.numblocks", "1")]
                              if record[0] != "GNU.sparse.numblocks" else [record]))
    out = tmp_path / "out"
    commands = oci_commands(archive, out, source) if kind == "oci" else docker_commands(archive, out, source)
    refused_everywhere(cli, archive, commands, out, record[0])


# -- header blocks (octal and GNU base-256) -------------------------------------------------------------

BLOCK_REFUSED = {
    "negative size": ("size", _base256(-512, 12)),  # tarfile would step back onto the same header, forever
    "size past 64 bits": ("size", _base256(1 << 70, 12)),
    "mtime past 64 bits": ("mtime", _base256(1 << 80, 12)),
    "negative mtime past 64 bits": ("mtime", _base256(-(1 << 80), 12)),
    "size in bad octal": ("size", b"0000000009x"),
    "mtime in bad octal": ("mtime", b"zzzzzzzzzzz"),
}


@pytest.mark.parametrize("case", sorted(BLOCK_REFUSED))
@pytest.mark.parametrize("kind", ["oci", "docker"])
def test_a_bad_header_number_is_exit_5_for_every_command(tmp_path, cli, layout_files, source, kind, case):
    """A bad octal digit past the first member made tarfile end the archive there without a word."""
    field, raw = BLOCK_REFUSED[case]
    files, victim = layout_files if kind == "oci" else _docker_files()
    archive = tmp_path / "a" / "x.tar"
    archive.parent.mkdir()
    archive.write_bytes(craft(files, victim, block={field: raw}))
    out = tmp_path / "out"
    commands = oci_commands(archive, out, source) if kind == "oci" else docker_commands(archive, out, source)
    words = (field,) if "octal" not in case else ("not valid",)
    refused_everywhere(cli, archive, commands, out, *words)


# -- what Go takes reads, and survives a rewrite ----------------------------------------------------------

PAX_TAKEN = [
    ("mtime", "-86400"), ("mtime", "-1.5"), ("mtime", "1700000000.123456789123"), ("mtime", "+5"),
    ("mtime", "1."), ("mtime", "9223372036854775807"), ("mtime", "000000000000000000000001700000000"),
    ("mtime", "1000000000000000000"), ("mtime", "-0.00001"),  # str(float) would be 1e+18 and -1e-05
    ("mtime", ""), ("atime", "-1"), ("ctime", ""), ("atime", "1.25"),
    ("size", ""), ("uid", "-1"), ("gid", "4294967296"), ("uid", ""), ("gid", "+7"),
]


@pytest.mark.parametrize(("field", "value"), PAX_TAKEN)
def test_a_pax_number_go_takes_reads_and_survives_every_rewrite(tmp_path, cli, layout_files, source, field,
                                                                 value):
    files, victim = layout_files
    archive = tmp_path / "a" / "image.tar"
    archive.parent.mkdir()
    archive.write_bytes(craft(files, victim, pax=[(field, value)]))
    out = tmp_path / "out"
    for args in oci_commands(archive, out, source):
        res = cli(*args, "--format", "json")
        assert res.code == 0, (args, res.out, res.err)
        # Every rewrite kept what the archive held: the layer blob is still there, byte for byte (read as Go
        # reads it: tarfile alone takes an empty PAX size for 0).
        with tarfile.open(archive, tarinfo=CappedTarInfo) as tar:
            names = tar.getnames()
            assert victim in names, args
            assert tar.extractfile(victim).read() == dict(files)[victim], args
        assert left_beside(archive.parent) == [], args
    assert (out / "pulled" / "hello.txt").read_bytes() == b"hello\n"


def test_a_date_before_1970_is_kept_through_a_rewrite(tmp_path, cli, layout_files, source):
    """A negative mtime is a valid time; a rewrite keeps the blob's age (gc's grace reads it)."""
    files, victim = layout_files
    archive = tmp_path / "image.tar"
    archive.write_bytes(craft(files, victim, pax=[("mtime", "-86400")]))
    assert cli("copy", source, f"oci-archive:{archive}:2").code == 0
    with tarfile.open(archive) as tar:
        assert tar.getmember(victim).mtime == -86400


@pytest.mark.parametrize(("field", "raw", "expected"), [
    ("mtime", _base256(-86400, 12), -86400),
    ("uid", _base256(1 << 40, 8), 1 << 40),
    ("size", b"", None),  # an empty octal field is 0 to tar, Go and us: here a PAX record then gives the size
])
def test_header_numbers_go_takes_read(tmp_path, cli, layout_files, field, raw, expected):
    files, victim = layout_files
    archive = tmp_path / "image.tar"
    size = str(len(dict(files)[victim]))
    archive.write_bytes(craft(files, victim, block={field: raw}, pax=[("size", size)] if field == "size" else None))
    ref = f"oci-archive:{archive}"
    assert cli("pull", f"{ref}:{TAG}", "-o", str(tmp_path / "out"), "--mode", "extract").code == 0
    assert (tmp_path / "out" / "hello.txt").read_bytes() == b"hello\n"
    if expected is not None:
        with tarfile.open(archive) as tar:
            assert getattr(tar.getmember(victim), field) == expected


def test_a_member_past_the_end_and_a_sparse_member_are_named(tmp_path, cli, layout_files):
    files, victim = layout_files
    archive = tmp_path / "image.tar"
    archive.write_bytes(craft(files, victim, pax=[("size", str(1 << 40))]))
    res = cli("resolve", f"oci-archive:{archive}:{TAG}", "--format", "json")
    assert res.code == 5 and victim in res.json()["error"]["message"], res.out
    # The blob stored as a PAX 1.0 sparse member (one region: the whole of it), which Go expands on reading
    # and an archive read in place cannot: named, not read as the wrong bytes.
    blob = dict(files)[victim]
    stored = [(n, _padded(f"1\n0\n{len(blob)}\n".encode()) + blob if n == victim else d) for n, d in files]
    archive.write_bytes(craft(stored, victim, pax=[("GNU.sparse.major", "1"), ("GNU.sparse.minor", "0"),
                                                   ("GNU.sparse.name", victim),
                                                   ("GNU.sparse.realsize", str(len(blob)))]))
    with tarfile.open(archive) as tar:  # what tar and Go read: the blob, expanded
        assert tar.extractfile(victim).read() == blob
    res = cli("resolve", f"oci-archive:{archive}:{TAG}", "--format", "json")
    message = res.json()["error"]["message"]
    assert res.code == 5 and "stored sparse" in message and victim in message, res.out


def test_python_tarfile_really_misreads_these(layout_files):
    """The cases are the ones that matter: tarfile alone takes them without complaint."""
    files, victim = layout_files
    for field, value in [("mtime", "nan"), ("size", "abc"), ("uid", "1_0")]:
        with tarfile.open(fileobj=io.BytesIO(craft(files, victim, pax=[(field, value)]))) as tar:
            tar.getmembers()
    with tarfile.open(fileobj=io.BytesIO(craft(files, files[1][0], block={"size": b"0000000009x"}))) as tar:
        assert len(tar.getmembers()) == 1  # the archive silently ends before the bad header


def test_the_api_says_the_same(tmp_path, layout_files):
    files, victim = layout_files
    archive = tmp_path / "image.tar"
    archive.write_bytes(craft(files, victim, pax=[("mtime", "inf")]))
    with pytest.raises(ocisift.OcisiftError) as caught:
        ocisift.resolve(f"oci-archive:{archive}:{TAG}")
    assert caught.value.exit_code == 5 and "mtime" in caught.value.message
    assert os.listdir(tmp_path) == ["image.tar"]


def test_our_own_archives_hold_only_numbers_go_reads(tmp_path, cli, source):
    archive = tmp_path / "ours.tar"
    assert cli("copy", source, f"oci-archive:{archive}:2").code == 0
    with tarfile.open(archive) as tar:
        for info in tar.getmembers():
            for key in ("mtime", "atime", "ctime", "size", "uid", "gid"):
                value = info.pax_headers.get(key)
                assert value is None or value.lstrip("-").replace(".", "", 1).isdigit(), (info.name, key, value)


@pytest.mark.parametrize(("field", "value"), PAX_REFUSED)
def test_a_bad_pax_number_in_a_layer_is_exit_5_when_it_is_unpacked(tmp_path, cli, field, value):
    """Layers are tars too, read by the same header rules: what containerd refuses is not unpacked."""
    import gzip

    store = LayoutStore.create(str(tmp_path / "l"))
    tar = craft([("a.txt", b"a\n"), ("b.txt", b"b\n")], "b.txt", pax=[(field, value)])
    desc = artifact(store, layers=[(gzip.compress(tar, mtime=0), "application/vnd.oci.image.layer.v1.tar+gzip", {})])
    write_index(store, [entry(desc, org__opencontainers__image__ref__name=TAG)])
    for mode in ("extract", "extract-all"):
        res = cli("pull", f"oci:{store.path}:{TAG}", "--mode", mode, "-o", str(tmp_path / "out"), "--format", "json")
        assert res.code == 5, (mode, res.out)
        message = res.json()["error"]["message"]
        assert "b.txt" in message and field in message, message
        assert not (tmp_path / "out").exists()
