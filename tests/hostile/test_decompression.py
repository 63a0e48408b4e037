"""Every path that decompresses obeys the same caps and says the same about a broken stream.

Two paths inflate gzip and zstd: unpacking layers (`pull --mode extract`, `extract-all`, `layer-per-dir`)
and writing a docker archive (`copy … docker-archive:`), whose layers are plain tars checked against the
config's diff_ids. Each case here (a gzip bomb, a zstd bomb, streams truncated, corrupt, with garbage
after them, a layer past --max-extract-size) runs through each path in a child process with every bound
measured (see conftest.py): exit 5, a message that says what was wrong, nothing written outside the output
and no staging left. A cap raised on the command line lets the same layer through, on each path.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import zlib
from collections.abc import Callable, Iterator

import pytest
import zstandard

from conftest import entry, write_index
from ocisift._core import mediatypes as mt
from ocisift._core.decompress import ZstdFrames
from ocisift._stores.layout import LayoutStore

pytestmark = pytest.mark.usefixtures("tar_reader")  # each test under both tar readers

MIB = 1 << 20
BOMB = 64 * MIB  # unpacked; past the ratio cap's 32 MiB floor, a few hundred KiB packed
TAG = "t"


def _zero_tar(size: int) -> Iterator[bytes]:
    """A tar holding one file of `size` zero bytes, in pieces (the whole would not be built in memory)."""
    info = tarfile.TarInfo("zeros")
    info.size, info.mode = size, 0o644
    yield info.tobuf(tarfile.USTAR_FORMAT)
    left = size
    piece = bytes(MIB)
    while left:
        yield piece[:min(left, MIB)]
        left -= min(left, MIB)
    yield b"\0" * (-size % 512) + b"\0" * 1024


def _packed(pieces: Iterator[bytes], compression: str) -> tuple[bytes, str]:
    """The compressed bytes and the diff_id (digest of the plain tar)."""
    h = hashlib.sha256()
    if compression == "gzip":
        packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: a gzip stream
        out = []
        for p in pieces:
            h.update(p)
            out.append(packer.compress(p))
        return b"".join(out) + packer.flush(), f"sha256:{h.hexdigest()}"
    sink = io.BytesIO()
    with zstandard.ZstdCompressor(level=3, write_checksum=True).stream_writer(sink, closefd=False) as w:
        for p in pieces:
            h.update(p)
            w.write(p)
    return sink.getvalue(), f"sha256:{h.hexdigest()}"


def _plain(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _small(compression: str) -> tuple[bytes, str]:
    return _packed(iter([_plain({"f.txt": os.urandom(300_000)})]), compression)


def _truncated(compression: str) -> tuple[bytes, str]:
    blob, diff_id = _small(compression)
    return blob[: len(blob) // 2], diff_id


def _corrupt(compression: str) -> tuple[bytes, str]:
    """A byte flipped inside the data: gzip's CRC catches it, and zstd's checksum (written here)."""
    blob, diff_id = _small(compression)
    damaged = bytearray(blob)
    damaged[len(blob) // 2] ^= 0xFF
    return bytes(damaged), diff_id


def _garbage_after(compression: str) -> tuple[bytes, str]:
    blob, diff_id = _small(compression)
    return blob + b"this is not a stream", diff_id


def _no_stream(compression: str) -> tuple[bytes, str]:
    """The magic, then nothing a decoder takes."""
    magic = b"\x1f\x8b" if compression == "gzip" else b"\x28\xb5\x2f\xfd"
    return magic + b"\x07" * 600, "sha256:" + "0" * 64


BROKEN: dict[str, Callable[[str], tuple[bytes, str]]] = {
    "truncated": _truncated, "corrupt": _corrupt, "garbage after": _garbage_after, "no stream": _no_stream,
}
MEDIA = {"gzip": mt.OCI_LAYER_GZIP, "zstd": mt.OCI_LAYER_ZSTD}


def image(path: str, blob: bytes, compression: str, diff_id: str) -> str:
    """An image layout: one layer, a config that names its diff_id and a platform, tagged TAG."""
    store = LayoutStore.create(path)
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    cfg = store.push_bytes(config, mt.OCI_CONFIG)
    layer = store.push_bytes(blob, MEDIA[compression])
    raw = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "config": cfg.to_json(),
                      "layers": [layer.to_json()]}).encode()
    desc = store.push_bytes(raw, mt.OCI_MANIFEST)
    write_index(store, [entry(desc, org__opencontainers__image__ref__name=TAG)])
    return f"oci:{path}:{TAG}"


PATHS = {
    "pull extract": lambda ref, out: ["pull", ref, "--mode", "extract", "-o", str(out), "--format", "json"],
    "pull extract-all": lambda ref, out: ["pull", ref, "--mode", "extract-all", "-o", str(out), "--format", "json"],
    "pull layer-per-dir": lambda ref, out: ["pull", ref, "--mode", "layer-per-dir", "--all-layers", "-o", str(out),
                                            "--format", "json"],
    "copy to docker-archive": lambda ref, out: ["copy", ref, f"docker-archive:{out}/saved.tar", "--format", "json"],
}


@pytest.fixture(scope="module")
def bombs(tmp_path_factory) -> dict[str, str]:
    """A gzip bomb and a zstd bomb, each an image layout (built once: compressing 64 MiB takes a moment)."""
    root = tmp_path_factory.mktemp("bombs")
    out = {}
    for compression in ("gzip", "zstd"):
        blob, diff_id = _packed(_zero_tar(BOMB), compression)
        assert len(blob) * 250 < BOMB  # a bomb by the default ratio
        out[compression] = image(str(root / compression), blob, compression, diff_id)
    return out


@pytest.mark.parametrize("path", sorted(PATHS))
@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_a_bomb_is_stopped_on_every_path(arena, bombs, path, compression):
    result = arena.check(arena.run(PATHS[path](bombs[compression], arena.out)), 5)
    assert "looks like a bomb" in result.message and "--max-ratio" in result.message, result.describe()
    assert not os.path.exists(arena.out / "saved.tar")


@pytest.mark.parametrize("path", sorted(PATHS))
@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_a_raised_ratio_lets_the_same_layer_through_on_every_path(arena, bombs, path, compression):
    result = arena.check(arena.run([*PATHS[path](bombs[compression], arena.out), "--max-ratio", "100000"]), 0)
    if path.startswith("copy"):
        with tarfile.open(arena.out / "saved.tar") as saved:  # the plain layer is in, its digest the diff_id
            layer = next(m for m in saved.getmembers() if m.name.endswith(".tar"))
            assert layer.size > BOMB
    else:
        assert result.json()


@pytest.mark.parametrize("path", sorted(PATHS))
@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_the_size_cap_holds_on_every_path(arena, tmp_path, path, compression):
    """300 KB of random data, no bomb at all, against a 100,000-byte cap."""
    blob, diff_id = _small(compression)
    ref = image(str(tmp_path / "img"), blob, compression, diff_id)
    result = arena.check(arena.run([*PATHS[path](ref, arena.out), "--max-extract-size", "100000"]), 5)
    assert "exceeds 100000 bytes" in result.message and "--max-extract-size" in result.message, result.describe()
    arena.check(arena.run([*PATHS[path](ref, arena.out)]), 0)  # under the default cap it goes through


@pytest.mark.parametrize("case", sorted(BROKEN))
@pytest.mark.parametrize("path", sorted(PATHS))
@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_a_broken_stream_is_exit_5_saying_so_on_every_path(arena, tmp_path, path, compression, case):
    blob, diff_id = BROKEN[case](compression)
    ref = image(str(tmp_path / "img"), blob, compression, diff_id)
    result = arena.check(arena.run(PATHS[path](ref, arena.out)), 5)
    message = result.message
    assert compression in message and ("not valid" in message or "not a complete" in message
                                       or "not a valid" in message), result.describe()
    assert "Traceback" not in result.err


def test_zstd_cut_short_is_taken_for_whole_by_its_own_reader():
    """Why the frames are followed: the stream reader hands back what it had and says nothing."""
    blob, _ = _small("zstd")
    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(blob[: len(blob) // 2]), read_across_frames=True)
    assert 0 < len(reader.read()) < 300_000


@pytest.mark.parametrize("cut", [0, 1, 4, 5, 9, 100, -5, -4, -1])
def test_the_frames_are_followed_exactly(cut):
    """Whole streams (one frame, several, with skippable frames and checksums) are complete; every cut is not."""
    one = zstandard.ZstdCompressor(write_checksum=True).compress(os.urandom(200_000) + bytes(300_000))
    skippable = b"\x50\x2a\x4d\x18" + (3).to_bytes(4, "little") + b"abc"
    plain = zstandard.ZstdCompressor(write_content_size=False).compress(b"x" * 10)
    for whole in (one, one + one, skippable + one + plain):
        frames = ZstdFrames()
        for i in range(0, len(whole), 7777):
            frames.feed(memoryview(whole)[i:i + 7777])
        assert frames.complete
        if cut:
            part = ZstdFrames()
            part.feed(memoryview(whole)[:cut])
            assert not part.complete, (cut, len(whole))
