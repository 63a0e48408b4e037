"""Mirroring against hostile input: referrer lists, tag lists, tag patterns and sync specs.

Each case runs the CLI in a child process (see conftest.py): a hang is a kill after the case's
time limit, and every case checks the documented exit code, peak memory, and that nothing is
written outside the destination and no staging is left behind.

The registry here is a small loopback server that serves exactly what a case gives it (manifests,
blobs, pages of tags, a referrers API answer or a `sha256-<hex>` fallback tag index), so that it
can list what a real registry never would: the subject itself, cycles, manifests it does not have,
blobs that are not manifests, wrong sizes, tens of thousands of entries.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
EMPTY = "application/vnd.oci.empty.v1+json"
REF_NAME = "org.opencontainers.image.ref.name"
SIG = "application/vnd.dev.cosign.artifact.sig.v1+json"
CONFIG = b"{}"
SRC = str(Path(__file__).resolve().parents[2] / "src")


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _desc(data: bytes, media_type: str = OCI_MANIFEST, **extra: object) -> dict[str, object]:
    return {"mediaType": media_type, "digest": _digest(data), "size": len(data), **extra}


def _manifest(name: str, subject: bytes | None = None, artifact_type: str = SIG,
              layers: tuple[bytes, ...] = ()) -> bytes:
    body: dict[str, object] = {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
        "config": {"mediaType": EMPTY, "digest": _digest(CONFIG), "size": len(CONFIG)},
        "layers": [_desc(layer, "application/octet-stream") for layer in layers],
        "annotations": {"name": name},
    }
    if subject is not None:
        body["subject"] = _desc(subject)
    return json.dumps(body, separators=(",", ":")).encode()


def _index(entries: list[dict[str, object]]) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries},
                      separators=(",", ":")).encode()


def _fallback_tag(subject: bytes) -> str:
    return "sha256-" + hashlib.sha256(subject).hexdigest()


def _layout(root: Path, blobs: list[bytes], entries: list[dict[str, object]]) -> str:
    """A layout written file by file, whatever its index.json says (CONFIG is always there)."""
    (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    for data in [*blobs, CONFIG]:
        (root / "blobs" / "sha256" / hashlib.sha256(data).hexdigest()).write_bytes(data)
    (root / "index.json").write_bytes(_index(entries))
    return f"oci:{root}"


def _file_digest(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _leftovers(parent: Path) -> list[str]:
    """Staging of any kind below `parent`: archive work directories, temporary files, unpack staging."""
    found = []
    for dirpath, dirnames, filenames in os.walk(parent):
        for name in [*dirnames, *filenames]:
            if name.startswith((".ocisift-", ".tmp-")):
                found.append(os.path.join(dirpath, name))
    return found


def _layout_consistent(root: Path) -> None:
    """Every index.json entry of a layout has its whole graph (what a destination must never lack)."""
    index = json.loads((root / "index.json").read_text())
    pending = list(index["manifests"])
    while pending:
        entry = pending.pop()
        blob = root / "blobs" / "sha256" / entry["digest"].split(":", 1)[1]
        assert blob.is_file(), f"{root}/index.json names {entry['digest']}, which is not there"
        if entry["mediaType"] in (OCI_MANIFEST, OCI_INDEX):
            doc = json.loads(blob.read_bytes())
            pending.extend(doc.get("manifests") or [])
            for child in [doc.get("config"), *(doc.get("layers") or [])]:
                if child:
                    assert (root / "blobs" / "sha256" / child["digest"].split(":", 1)[1]).is_file()


def _tags_in(root: Path) -> set[str]:
    index = json.loads((root / "index.json").read_text())
    return {m.get("annotations", {}).get(REF_NAME) for m in index["manifests"]} - {None}


def _archive_tags(path: Path) -> set[str]:
    with tarfile.open(path) as tar:
        member = tar.extractfile("index.json")
        assert member is not None
        index = json.loads(member.read())
    return {m.get("annotations", {}).get(REF_NAME) for m in index["manifests"]} - {None}


# -- a registry that serves whatever a case gives it -------------------------------------------------


@dataclass
class Fake:
    """What the loopback registry holds. Every repository serves the same content."""

    manifests: dict[str, bytes] = field(default_factory=dict)  # tag or digest -> raw manifest/index
    blobs: dict[str, bytes] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)  # listed as given: duplicates, junk and all
    referrers_api: dict[str, bytes] | None = None  # subject digest -> the referrers API's index; None: 404
    trickle: float = 0.0  # seconds between 1 KiB pieces of every blob body
    requests: Counter[str] = field(default_factory=Counter)
    host: str = ""

    def add(self, raw: bytes, *tags: str) -> bytes:
        self.manifests[_digest(raw)] = raw
        for tag in tags:
            self.manifests[tag] = raw
        return raw

    def blob(self, data: bytes) -> bytes:
        self.blobs[_digest(data)] = data
        return data


@contextlib.contextmanager
def fake_registry(fake: Fake) -> Iterator[Fake]:
    fake.blob(CONFIG)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def setup(self) -> None:
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _missing(self) -> None:
            self._send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}',
                       {"Content-Type": "application/json"})

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            path, _, query = self.path.partition("?")
            parts = path.split("/")
            fake.requests[f"{self.command} {parts[-2] if len(parts) > 2 else path}"] += 1
            if path == "/v2/":
                self._send(200, b"{}", {"Content-Type": "application/json"})
            elif path.endswith("/tags/list"):
                self._tags(path, dict(urllib.parse.parse_qsl(query)))
            elif "/manifests/" in path:
                raw = fake.manifests.get(parts[-1])
                if raw is None:
                    return self._missing()
                media = json.loads(raw)["mediaType"]
                self._send(200, raw, {"Content-Type": media, "Docker-Content-Digest": _digest(raw)})
            elif "/blobs/" in path:
                data = fake.blobs.get(parts[-1])
                if data is None:
                    return self._send(404, b'{"errors":[{"code":"BLOB_UNKNOWN"}]}')
                self._blob(data)
            elif "/referrers/" in path and fake.referrers_api is not None:
                body = fake.referrers_api.get(parts[-1], _index([]))
                self._send(200, body, {"Content-Type": OCI_INDEX})
            else:
                self._send(404, b'{"errors":[{"code":"NOT_FOUND"}]}')

        def _tags(self, path: str, params: dict[str, str]) -> None:
            start = int(params.get("last", "0"))
            n = int(params.get("n", "1000"))
            page = fake.tags[start : start + n]
            headers = {"Content-Type": "application/json"}
            if start + n < len(fake.tags):
                headers["Link"] = f'<{path}?n={n}&last={start + n}>; rel="next"'
            self._send(200, json.dumps({"name": "acme/app", "tags": page}).encode(), headers)

        def _blob(self, data: bytes) -> None:
            if not fake.trickle or self.command == "HEAD":
                return self._send(200, data, {"Content-Type": "application/octet-stream"})
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                for at in range(0, len(data), 1024):
                    self.wfile.write(data[at : at + 1024])
                    self.wfile.flush()
                    time.sleep(fake.trickle)
            except OSError:
                pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    fake.host = f"127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- referrer lists that lie ---------------------------------------------------------------------------

SUBJECT = _manifest("subject", layers=(b"subject layer",))
REF_A = _manifest("A", subject=SUBJECT)
REF_B = _manifest("B", subject=REF_A)
GHOST = _manifest("ghost", subject=SUBJECT)  # listed, never stored
LAYER = b"a layer, not a manifest " * 10
OTHER = _manifest("other image", artifact_type="application/vnd.acme.other", layers=(b"other layer",))


def _resized(data: bytes, size: int) -> dict[str, object]:
    return {**_desc(data), "size": size}


# kind -> (the subject's list, the other fallback lists by subject, the exit codes copy --referrers may end with)
LISTS: dict[str, tuple[list[dict[str, object]], dict[bytes, list[dict[str, object]]], set[int]]] = {
    "lists-its-subject": ([_desc(SUBJECT), _desc(REF_A), _desc(SUBJECT)], {}, {0}),
    "cycle": ([_desc(REF_A)], {REF_A: [_desc(REF_B)], REF_B: [_desc(REF_A), _desc(SUBJECT)]}, {0}),
    "missing-manifest": ([_desc(GHOST)], {}, {3}),
    "a-blob": ([_desc(LAYER, "application/octet-stream")], {}, {3, 5}),
    "a-blob-said-to-be-a-manifest": ([_desc(LAYER)], {}, {3, 5}),
    "wrong-size": ([_resized(REF_A, len(REF_A) + 5)], {}, {5}),
    "huge-size": ([_resized(REF_A, 10**12)], {}, {5}),
    "wrong-digest": ([{**_desc(REF_A), "digest": _digest(b"nothing")}], {}, {3, 5}),
}
STORED = [SUBJECT, REF_A, REF_B, LAYER, b"subject layer", OTHER, b"other layer"]


def _lying_layout(root: Path, kind: str) -> str:
    listing, others, _ = LISTS[kind]
    fallbacks = [_index(listing), *(_index(v) for v in others.values())]
    entries = [_desc(SUBJECT, annotations={REF_NAME: "v1"}),
               _desc(fallbacks[0], OCI_INDEX, annotations={REF_NAME: _fallback_tag(SUBJECT)})]
    entries += [_desc(raw, OCI_INDEX, annotations={REF_NAME: _fallback_tag(subject)})
                for subject, raw in zip(others, fallbacks[1:], strict=True)]
    return _layout(root, [*STORED, *fallbacks], entries)


def _lying_registry(fake: Fake, kind: str) -> None:
    listing, others, _ = LISTS[kind]
    for raw in (SUBJECT, REF_A, REF_B, OTHER):
        fake.add(raw)
    fake.add(SUBJECT, "v1")
    for data in (LAYER, b"subject layer", b"other layer"):
        fake.blob(data)
    fake.add(_index(listing), _fallback_tag(SUBJECT))
    for subject, entries in others.items():
        fake.add(_index(entries), _fallback_tag(subject))


def _existing_destination(kind: str, out: Path, tmp: Path) -> Path:
    """A destination that already holds another image, tagged `old`: a failed copy must leave it so."""
    import ocisift

    other = _layout(tmp / "other-src", [OTHER, b"other layer"], [_desc(OTHER, annotations={REF_NAME: "old"})])
    if kind == "layout":
        ocisift.copy(f"{other}:old", f"oci:{out}:old")
        return out / "index.json"
    out.mkdir(parents=True, exist_ok=True)
    ocisift.copy(f"{other}:old", f"oci-archive:{out}/bundle.tar:old")
    return out / "bundle.tar"


def _destination(kind: str, out: Path) -> str:
    return f"oci:{out}:v1" if kind == "layout" else f"oci-archive:{out}/bundle.tar:v1"


def _check_lying_copy(arena, kind: str, dst_kind: str, marker: Path, before: str, result) -> None:
    allowed = LISTS[kind][2]
    assert result.code in allowed, result.describe()
    assert "internal error" not in result.out + result.err, result.describe()
    assert _leftovers(arena.parent) == [], _leftovers(arena.parent)
    if dst_kind == "layout":
        _layout_consistent(arena.out)
        if result.code == 0:
            assert {"old", "v1"} <= _tags_in(arena.out)
        else:
            assert _file_digest(marker) == before, "a failed copy changed the destination's index.json"
    else:
        if result.code == 0:  # and the source's fallback index, kept as the subject's (copy.py's _adopt)
            assert {t for t in _archive_tags(marker) if not t.startswith("sha256-")} == {"old", "v1"}
        else:
            assert _file_digest(marker) == before, "a failed copy changed the destination archive"


@pytest.mark.parametrize("dst_kind", ["layout", "archive"])
@pytest.mark.parametrize("kind", sorted(LISTS))
def test_a_layout_fallback_index_that_lies(arena, tmp_path, kind, dst_kind):
    src = _lying_layout(tmp_path / "src", kind)
    listed = arena.run(["referrers", f"{src}:v1", "--recursive", "--format", "json"])
    arena.check(listed, 0)
    tree = listed.json()
    assert _digest(SUBJECT) not in [m["digest"] for m in tree["manifests"]]  # never its own referrer
    marker = _existing_destination(dst_kind, arena.out, tmp_path)
    before = _file_digest(marker)
    arena.snapshot()
    result = arena.run(["copy", "--referrers", f"{src}:v1", _destination(dst_kind, arena.out), "--format", "json"])
    assert result.seconds <= 30 and result.rss_mib <= 200, result.describe()
    arena.check_untouched()
    _check_lying_copy(arena, kind, dst_kind, marker, before, result)
    if kind == "cycle":
        assert sorted(result.json()["referrers"]) == sorted([_digest(REF_A), _digest(REF_B)])


@pytest.mark.parametrize("kind", sorted(LISTS))
def test_a_registry_fallback_tag_that_lies(arena, tmp_path, kind):
    with fake_registry(Fake()) as fake:
        _lying_registry(fake, kind)
        src = f"{fake.host}/acme/app:v1"
        listed = arena.run(["referrers", src, "--recursive", "--format", "json"])
        arena.check(listed, 0)
        assert _digest(SUBJECT) not in [m["digest"] for m in listed.json()["manifests"]]
        marker = _existing_destination("archive", arena.out, tmp_path)
        before = _file_digest(marker)
        arena.snapshot()
        result = arena.run(["copy", "--referrers", src, _destination("archive", arena.out), "--format", "json"])
    assert result.seconds <= 30 and result.rss_mib <= 200, result.describe()
    arena.check_untouched()
    _check_lying_copy(arena, kind, "archive", marker, before, result)


# -- referrer lists that are long ----------------------------------------------------------------------

# 26,000 entries are 3.9 MB of referrers list, inside the 4 MiB a list may be; copying them (all missing)
# fails at the first, and listing them reads one document. Both are linear work, seconds at most.
MANY = 26_000


def _many_missing(n: int) -> list[dict[str, object]]:
    return [{"mediaType": OCI_MANIFEST, "digest": f"sha256:{i:064x}", "size": 100} for i in range(n)]


def test_copy_referrers_with_a_fallback_index_of_26000_missing_manifests_fails_fast(arena, tmp_path):
    listing = _index(_many_missing(MANY))
    assert len(listing) < 4 << 20
    src = _layout(tmp_path / "src", [SUBJECT, b"subject layer", listing],
                  [_desc(SUBJECT, annotations={REF_NAME: "v1"}),
                   _desc(listing, OCI_INDEX, annotations={REF_NAME: _fallback_tag(SUBJECT)})])
    shown = arena.check(arena.run(["referrers", f"{src}:v1", "--format", "json"]), 0)
    assert len(shown.json()["manifests"]) == MANY
    arena.check(arena.run(["copy", "--referrers", f"{src}:v1", f"oci:{arena.out}:v1", "--format", "json"]), 3)
    assert _tags_in(arena.out) == set()


def test_copy_referrers_with_a_referrers_api_of_26000_missing_manifests_fails_fast(arena):
    with fake_registry(Fake()) as fake:
        _lying_registry(fake, "cycle")
        fake.referrers_api = {_digest(SUBJECT): _index(_many_missing(MANY))}
        src = f"{fake.host}/acme/app:v1"
        arena.check(arena.run(["copy", "--referrers", src, f"oci-archive:{arena.out}.tar:v1", "--format", "json"]), 3)
    assert not Path(f"{arena.out}.tar").exists()


def test_recursive_referrers_of_2000_through_the_api_is_linear(arena):
    with fake_registry(Fake()) as fake:
        _lying_registry(fake, "cycle")
        fake.referrers_api = {_digest(SUBJECT): _index(_many_missing(2000))}
        listed = arena.check(arena.run(["referrers", f"{fake.host}/acme/app:v1", "--recursive", "--format", "json"]), 0)
        assert len(listed.json()["manifests"]) == 2000
        assert fake.requests["GET referrers"] <= 2001  # one question per node, none asked twice


def _flat_layout(root: Path, n: int) -> str:
    """A subject with `n` signatures, each an index.json entry whose manifest names the subject (as
    `oras attach` and `ocisift push --subject` leave them in a layout)."""
    refs = [_manifest(f"sig {i}", subject=SUBJECT) for i in range(n)]
    return _layout(root, [SUBJECT, b"subject layer", *refs],
                   [_desc(SUBJECT, annotations={REF_NAME: "v1"}), *(_desc(r, artifactType=SIG) for r in refs)])


def test_recursive_referrers_of_1000_signatures_in_a_layout(arena, tmp_path):
    src = _flat_layout(tmp_path / "src", 1000)
    flat = arena.check(arena.run(["referrers", f"{src}:v1", "--format", "json"]), 0)
    assert len(flat.json()["manifests"]) == 1000
    deep = arena.check(arena.run(["referrers", f"{src}:v1", "--recursive", "--format", "json"]), 0)
    assert len(deep.json()["manifests"]) == 1000


def test_copy_referrers_of_1000_signatures_from_a_layout(arena, tmp_path):
    src = _flat_layout(tmp_path / "src", 1000)
    done = arena.check(arena.run(["copy", "--referrers", f"{src}:v1", f"oci:{arena.out}:v1", "--format", "json"]), 0)
    assert len(done.json()["referrers"]) == 1000
    _layout_consistent(arena.out)


def test_a_layout_fallback_index_over_the_size_limit_is_an_error_not_silence(arena, tmp_path):
    """A list too large to read is refused (as a registry's is), not taken as "no referrers": a mirror
    made with --referrers would otherwise lack every signature and say nothing."""
    listing = _index([_desc(REF_A), *_many_missing(30_000)])
    assert len(listing) > 4 << 20
    src = _layout(tmp_path / "src", [*STORED, listing],
                  [_desc(SUBJECT, annotations={REF_NAME: "v1"}),
                   _desc(listing, OCI_INDEX, annotations={REF_NAME: _fallback_tag(SUBJECT)})])
    arena.check(arena.run(["referrers", f"{src}:v1", "--format", "json"]), 5)
    arena.check(arena.run(["copy", "--referrers", f"{src}:v1", f"oci:{arena.out}:v1", "--format", "json"]), 5)


def test_a_registry_fallback_index_over_the_size_limit_is_an_error(arena):
    with fake_registry(Fake()) as fake:
        _lying_registry(fake, "cycle")
        fake.add(_index([_desc(REF_A), *_many_missing(30_000)]), _fallback_tag(SUBJECT))
        arena.check(arena.run(["referrers", f"{fake.host}/acme/app:v1", "--format", "json"]), 5)
        fake.referrers_api = {_digest(SUBJECT): _index([_desc(REF_A), *_many_missing(30_000)])}
        arena.check(arena.run(["referrers", f"{fake.host}/acme/app:v1", "--format", "json"]), 5)


def _ladder(depth: int) -> tuple[list[bytes], dict[bytes, bytes]]:
    """Two referrers per level, each listing both of the next level: `depth` levels of 2 (a few dozen
    documents) unfold into 2 + 4 + … + 2^depth nodes when every path is walked on its own."""
    levels = [[_manifest(f"L{d}-{w}") for w in range(2)] for d in range(depth)]
    fallbacks: dict[bytes, bytes] = {}
    parents = [SUBJECT]
    for level in levels:
        listing = _index([_desc(m) for m in level])
        for parent in parents:
            fallbacks[parent] = listing
        parents = level
    return [m for level in levels for m in level], fallbacks


def test_recursive_referrers_of_a_shared_ladder_in_a_layout(arena, tmp_path):
    """30 index.json entries over 31 small documents: the listing must not grow with the paths through them."""
    manifests, fallbacks = _ladder(15)
    src = _layout(tmp_path / "src", [*STORED, *manifests, *fallbacks.values()],
                  [_desc(SUBJECT, annotations={REF_NAME: "v1"}),
                   *(_desc(raw, OCI_INDEX, annotations={REF_NAME: _fallback_tag(subject)})
                     for subject, raw in fallbacks.items())])
    res = arena.run(["referrers", f"{src}:v1", "--recursive", "--format", "json"])
    assert res.code in (0, 5), res.describe()
    assert res.rss_mib <= 200 and res.seconds <= 30, res.describe()
    assert len(res.out) < 16 << 20, f"{len(res.out)} bytes of output for 30 index.json entries"


def test_recursive_referrers_of_a_shared_ladder_on_a_registry(arena):
    manifests, fallbacks = _ladder(15)
    with fake_registry(Fake()) as fake:
        _lying_registry(fake, "cycle")
        for raw in manifests:
            fake.add(raw)
        for subject, raw in fallbacks.items():
            fake.add(raw, _fallback_tag(subject))
        res = arena.run(["referrers", f"{fake.host}/acme/app:v1", "--recursive", "--format", "json"])
        asked = fake.requests["GET referrers"]
    assert res.code in (0, 5), res.describe()
    assert res.rss_mib <= 200 and res.seconds <= 30, res.describe()
    assert asked <= 100, f"{asked} referrers requests for 31 distinct subjects"


# -- tag lists ---------------------------------------------------------------------------------------

def _hostile_tags(n: int) -> list[str]:
    """`n` release tags, each listed twice, among junk: 200-character tags, invalid ones, near-versions."""
    tags = [f"1.{i // 100}.{i % 100}" for i in range(n)]
    junk = ["v" * 200, "1.0.0-" + "x" * 150, "-bad", ".bad", "a b", "", "1.2", "20240101", "latest",
            "sha256-" + "0" * 64, "9" * 30 + ".0.0", "1.0.0+" + "b" * 121]
    return [*tags, *junk, *tags, *junk]


def _tagged_registry(fake: Fake, tags: list[str]) -> None:
    image = fake.add(_manifest("image", artifact_type="application/vnd.acme.thing", layers=(b"image layer",)))
    fake.blob(b"image layer")
    fake.tags = tags
    for tag in tags:
        fake.manifests[tag] = image


def test_ten_thousand_tags_duplicated_among_junk(arena):
    with fake_registry(Fake()) as fake:
        _tagged_registry(fake, _hostile_tags(10_000))
        repo = f"{fake.host}/acme/app"
        listed = arena.check(arena.run(["tags", repo, "--format", "json"]), 0)
        assert len(listed.out) < 4 << 20
        chosen = arena.check(arena.run(["tags", repo, "--semver", ">=1.0.0", "--format", "json"]), 0).json()
        names = chosen["tags"] if isinstance(chosen, dict) else chosen
        assert names[-1] == "1.99.99", names[-5:]
        picked = arena.check(arena.run(["resolve", repo, "--semver", "^1.50", "--format", "json"]), 0)
        assert "1.99.99" in picked.out
        copied = arena.run(["copy", repo, f"oci:{arena.out}", "--semver", "~1.42", "--format", "json"])
        arena.check(copied, 0)
        assert _tags_in(arena.out) == {"1.42.99"}


def test_tags_in_a_range_are_listed_once_when_the_registry_lists_them_twice(arena):
    with fake_registry(Fake()) as fake:
        _tagged_registry(fake, ["1.0.0", "1.1.0", "1.0.0", "1.1.0", "latest", "latest"])
        repo = f"{fake.host}/acme/app"
        chosen = arena.check(arena.run(["tags", repo, "--semver", ">=1.0.0", "--format", "json"]), 0).json()
        assert (chosen["tags"] if isinstance(chosen, dict) else chosen) == ["1.0.0", "1.1.0"]


def test_copy_all_tags_of_ten_thousand_into_a_layout(arena):
    with fake_registry(Fake()) as fake:
        _tagged_registry(fake, _hostile_tags(10_000))
        repo = f"{fake.host}/acme/app"
        done = arena.run(["copy", "--all-tags", repo, f"oci:{arena.out}", "--format", "json"], timeout=60)
        arena.check(done, 0)
        assert len(_tags_in(arena.out)) == 10_000 + 4  # the releases, 1.2, 20240101, latest, 9…9.0.0: once each


PATHOLOGICAL = r"^(\d+\.?)+$"  # innocent-looking; backtracks exponentially on a long run of digits that fails


def test_a_pathological_tag_regex_is_bounded(arena):
    with fake_registry(Fake()) as fake:
        _tagged_registry(fake, ["1.0.0", "1.1.0", "1" * 60 + "a"])
        repo = f"{fake.host}/acme/app"
        res = arena.run(["tags", repo, "--tag-regex", PATHOLOGICAL, "--format", "json"])
        assert res.code in (0, 2), res.describe()
        assert res.seconds <= 30 and "internal error" not in res.out + res.err, res.describe()
        res = arena.run(["copy", repo, f"oci:{arena.out}", "--semver", "*", "--tag-regex", PATHOLOGICAL])
        assert res.code in (0, 2), res.describe()


# -- sync ----------------------------------------------------------------------------------------------

IMAGE_A = _manifest("image A", artifact_type="application/vnd.acme.a", layers=(b"layer A",))
IMAGE_B = _manifest("image B", artifact_type="application/vnd.acme.b", layers=(b"layer B",))


def _sources(tmp: Path) -> tuple[str, str]:
    a = _layout(tmp / "src-a", [IMAGE_A, b"layer A"], [_desc(IMAGE_A, annotations={REF_NAME: "1.0"})])
    b = _layout(tmp / "src-b", [IMAGE_B, b"layer B"], [_desc(IMAGE_B, annotations={REF_NAME: "2.0"})])
    return a, b


def _spec(tmp: Path, images: list[tuple[str, str, str]], name: str = "mirror.yaml") -> str:
    lines = ["images:"]
    for source, tags, destination in images:
        lines += [f"  - source: {source}", f"    tags: {tags}", f"    destination: {destination}"]
    path = tmp / name
    path.write_text("\n".join(lines) + "\n")
    return str(path)


# two spellings of one destination store each: the same text, and the same place written differently
SPELLINGS = {
    "same-text": ("{out}/bundle.tar", "{out}/bundle.tar"),
    "dot-segment": ("{out}/./bundle.tar", "{out}/bundle.tar"),
    "parent-segment": ("{out}/../out/bundle.tar", "{out}/bundle.tar"),
}


@pytest.mark.parametrize("spelling", sorted(SPELLINGS))
def test_sync_two_images_into_one_archive_keeps_both(arena, tmp_path, spelling):
    a, b = _sources(tmp_path)
    one, two = (s.format(out=arena.out) for s in SPELLINGS[spelling])
    spec = _spec(tmp_path, [(a, '["1.0"]', f"oci-archive:{one}"), (b, '["2.0"]', f"oci-archive:{two}")])
    arena.check(arena.run(["sync", spec, "--format", "json"]), 0)
    assert _archive_tags(arena.out / "bundle.tar") == {"1.0", "2.0"}, "one image's copy was lost"


@pytest.mark.parametrize("spelling", sorted(SPELLINGS))
def test_sync_two_images_into_one_layout_keeps_both(arena, tmp_path, spelling):
    a, b = _sources(tmp_path)
    one, two = (s.format(out=arena.out).replace("bundle.tar", "mirror") for s in SPELLINGS[spelling])
    spec = _spec(tmp_path, [(a, '["1.0"]', f"oci:{one}"), (b, '["2.0"]', f"oci:{two}")])
    arena.check(arena.run(["sync", spec, "--format", "json"]), 0)
    assert _tags_in(arena.out / "mirror") == {"1.0", "2.0"}
    _layout_consistent(arena.out / "mirror")


def test_sync_of_1000_images_from_a_dead_registry_ends_soon_with_the_worst_code(arena, tmp_path):
    dead = f"127.0.0.1:{_closed_port()}"
    with fake_registry(Fake()) as fake:
        _tagged_registry(fake, ["1.0.0"])
        images = [(f"{fake.host}/acme/app", '["9.9.9"]', f"oci:{arena.out}/missing")]  # not found: exit 3
        images += [(f"{dead}/acme/app{i}", '["1.0"]', f"oci:{arena.out}/m{i}") for i in range(999)]
        spec = _spec(tmp_path, images)
        res = arena.run(["sync", spec, "--format", "json"], timeout=90)
    assert res.code == 3, res.describe()
    assert len(res.json()["failed"]) == 1000
    assert res.seconds <= 90 and res.rss_mib <= 200, res.describe()


def _child(args: list[str]) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (SRC, env.get("PYTHONPATH")) if p)
    env.pop("OCISIFT_DEBUG", None)
    return subprocess.Popen([sys.executable, "-m", "ocisift", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, start_new_session=True)


def test_ctrl_c_during_sync_exits_130_and_leaves_the_archive_as_it_was(arena, tmp_path):
    marker = _existing_destination("archive", arena.out, tmp_path)
    before = _file_digest(marker)
    big = os.urandom(2 << 20)
    with fake_registry(Fake(trickle=0.005)) as fake:
        fake.blob(big)
        fake.add(_manifest("big", layers=(big,)), "v1")
        a, _ = _sources(tmp_path)
        spec = _spec(tmp_path, [(a, '["1.0"]', f"oci-archive:{marker}"),
                                (f"{fake.host}/acme/app", '["v1"]', f"oci-archive:{marker}")])
        arena.snapshot()
        proc = _child(["sync", spec])
        try:
            deadline = time.monotonic() + 20
            while not fake.requests["GET blobs"] and time.monotonic() < deadline:
                time.sleep(0.05)
            assert fake.requests["GET blobs"], "the sync never started moving the blob"
            time.sleep(0.5)
            os.kill(proc.pid, signal.SIGINT)
            out, err = proc.communicate(timeout=15)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()
    assert proc.returncode == 130, (proc.returncode, out, err)
    assert "internal error" not in out + err and "Traceback" not in err, err
    assert _leftovers(arena.parent) == [], _leftovers(arena.parent)
    assert _file_digest(marker) == before, "an interrupted sync changed the archive"
    arena.check_untouched()


@pytest.mark.parametrize("what", ["layout-is-a-file", "archive-is-a-directory", "layout-below-a-file"])
def test_sync_with_a_destination_of_the_wrong_kind_fails_that_image_only(arena, tmp_path, what):
    a, b = _sources(tmp_path)
    arena.out.mkdir()
    (arena.out / "afile").write_text("the user's file\n")
    (arena.out / "adir").mkdir()
    bad = {"layout-is-a-file": f"oci:{arena.out}/afile", "archive-is-a-directory": f"oci-archive:{arena.out}/adir",
           "layout-below-a-file": f"oci:{arena.out}/afile/sub"}[what]
    spec = _spec(tmp_path, [(a, '["1.0"]', bad), (b, '["2.0"]', f"oci:{arena.out}/good")])
    res = arena.run(["sync", spec, "--format", "json"])
    assert res.code in (1, 2), res.describe()
    assert "internal error" not in res.out + res.err, res.describe()
    assert (arena.out / "afile").read_text() == "the user's file\n" and list((arena.out / "adir").iterdir()) == []
    assert _leftovers(arena.parent) == []
    arena.check_untouched()
    out = res.json()
    assert "images" in out, f"the run stopped as a whole instead of failing one image: {out}"
    assert out["images"][0]["error"]["code"] in (1, 2) and "error" not in out["images"][1]
    assert _tags_in(arena.out / "good") == {"2.0"}, "one image's bad destination stopped the other"


@pytest.mark.parametrize("spelling", ["same", "dot-segment", "trailing-slash"])
def test_sync_refuses_a_source_that_is_its_destination(arena, tmp_path, spelling):
    a, _ = _sources(tmp_path)
    path = a.removeprefix("oci:")
    dst = {"same": a, "dot-segment": f"oci:{Path(path).parent}/./{Path(path).name}", "trailing-slash": f"{a}/"}[spelling]
    spec = _spec(tmp_path, [(a, '["1.0"]', dst)])
    res = arena.check(arena.run(["sync", spec, "--format", "json"]), 2)
    assert "source itself" in res.message, res.describe()


def test_sync_whose_every_image_failed_publishes_no_archive(arena, tmp_path):
    dead = f"127.0.0.1:{_closed_port()}"
    a, _ = _sources(tmp_path)
    arena.out.mkdir()
    existing = arena.out / "existing.tar"  # written by another tool: GNU format, another owner
    with tarfile.open(existing, "w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in (("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
                           ("index.json", _index([_desc(IMAGE_A, annotations={REF_NAME: "old"})])),
                           (f"blobs/sha256/{_digest(IMAGE_A)[7:]}", IMAGE_A), (f"blobs/sha256/{_digest(CONFIG)[7:]}", CONFIG),
                           (f"blobs/sha256/{_digest(b'layer A')[7:]}", b"layer A")):
            info = tarfile.TarInfo(name)
            info.size, info.uname, info.uid, info.mtime = len(data), "someone", 4321, 1_600_000_000
            tar.addfile(info, io.BytesIO(data))
    before = _file_digest(existing)
    spec = _spec(tmp_path, [(f"{dead}/acme/app", '["1.0"]', f"oci-archive:{arena.out}/new.tar"),
                            (a, '["9.9"]', f"oci-archive:{existing}")])
    res = arena.run(["sync", spec, "--format", "json"], timeout=60)
    assert res.code == 3, res.describe()
    assert not (arena.out / "new.tar").exists(), "a sync that copied nothing created an (empty) archive"
    assert _file_digest(existing) == before, "a sync that copied nothing rewrote the archive"
    assert _leftovers(arena.parent) == []


def test_the_sync_help_example_writes_one_archive_with_both_names(arena, tmp_path):
    """`ocisift sync --help` shows `destination: oci-archive:bundle.tar/acme/app`: names inside one archive."""
    a, b = _sources(tmp_path)
    spec = _spec(tmp_path, [(a, '["1.0"]', f"oci-archive:{arena.out}/bundle.tar/acme/app"),
                            (b, '["2.0"]', f"oci-archive:{arena.out}/bundle.tar/acme/web")])
    arena.check(arena.run(["sync", spec, "--format", "json"]), 0)
    assert (arena.out / "bundle.tar").is_file(), sorted(str(p) for p in arena.out.rglob("*"))


def test_sync_prints_a_failing_image_message_with_its_line_breaks(arena, tmp_path):
    a, _ = _sources(tmp_path)
    spec = _spec(tmp_path, [(a, '["9.9"]', f"oci:{arena.out}/m")])
    res = arena.run(["sync", spec])
    assert res.code == 3, res.describe()
    assert "\\u000a" not in res.err, res.err


# -- copy --all-tags -------------------------------------------------------------------------------------

ZERO = "sha256:" + "0" * 64


@pytest.mark.parametrize("dst", ["oci:{out}:1.0", "oci:{out}@" + ZERO, "oci:{out}:1.0@" + ZERO,
                                 "oci-archive:{out}.tar:1.0", "oci-archive:{out}.tar@" + ZERO,
                                 "{reg}/acme/app:1.0", "{reg}/acme/app:latest", "{reg}/acme/app@" + ZERO,
                                 "oci:{out}/acme/app:1.0"])
def test_copy_all_tags_into_a_tagged_or_pinned_destination_is_a_usage_error(arena, tmp_path, dst):
    a, _ = _sources(tmp_path)
    dead = f"127.0.0.1:{_closed_port()}"
    target = dst.format(out=arena.out, reg=dead)
    res = arena.check(arena.run(["copy", "--all-tags", a, target, "--format", "json"]), 2)
    assert "destination" in res.message, res.describe()
    assert not arena.out.exists() and not Path(f"{arena.out}.tar").exists()


def test_copy_all_tags_from_a_tagged_source_is_a_usage_error(arena, tmp_path):
    a, _ = _sources(tmp_path)
    arena.check(arena.run(["copy", "--all-tags", f"{a}:1.0", f"oci:{arena.out}", "--format", "json"]), 2)
    assert not arena.out.exists()


def test_copy_all_tags_into_a_named_repository_of_an_existing_layout(arena, tmp_path):
    """`oci:DIR/NAME` names a repository inside a layout (sync takes it as one); no tag was written."""
    a, b = _sources(tmp_path)
    import ocisift

    ocisift.copy(f"{b}:2.0", f"oci:{arena.out}:2.0")
    res = arena.run(["copy", "--all-tags", a, f"oci:{arena.out}/acme/app", "--format", "json"])
    arena.check(res, 0)
