"""Docker's config.json of every shape, read by every registry command, and rewritten by login and logout.

Reading: each shape is given to every registry command against the recording server (tests/recorder.py):
what Docker reads as nothing (no file, an empty file, `null`, `auths: null`, other registries' entries
and keys of other tools, whatever they hold) is nothing here too, and anything else that cannot be used
is exit 6 with a message naming the file, before anything is sent. Writing: login and logout change only
their own entries, keep every other key and value, write atomically (a temporary file renamed, mode
0600, the owner and a symlink kept), serialise with each other, and never rewrite a file they cannot read
whole: it stays byte for byte, and login refuses before sending the password anywhere.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from credworld import ANONYMOUS, REFUSED, SENT, World, b64, check_every_command, make_world
from ocisift._demo import build_sample_layout
from recorder import basic

pytestmark = pytest.mark.skipif(shutil.which("docker-registry") is None, reason="docker-registry is needed")

GOOD = basic(b"u", b"p")
SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture(scope="module")
def sample_layout(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("sample") / "layout")
    build_sample_layout(path)
    return path


@pytest.fixture
def world(tmp_path, sample_layout, monkeypatch, capsys) -> Iterator[World]:
    with make_world(tmp_path, sample_layout, monkeypatch, capsys) as made:
        yield made


def _good(host: str) -> dict[str, object]:
    return {host: {"auth": b64(b"u:p")}}


def _text(body: object) -> Callable[[World], None]:
    return lambda w: w.config.write_text(json.dumps(body) if not isinstance(body, str) else body)


def _with_host(make: Callable[[str], object]) -> Callable[[World], None]:
    return lambda w: w.config.write_text(json.dumps(make(w.recorder.host)))


def _raw(data: bytes | Callable[[str], bytes]) -> Callable[[World], None]:
    return lambda w: w.config.write_bytes(data(w.recorder.host) if callable(data) else data)


def _directory(w: World) -> None:
    w.config.mkdir()
    (w.config / "auths").write_text("{}")


def _fifo(w: World) -> None:
    os.mkfifo(w.config)


def _symlink(target: str) -> Callable[[World], None]:
    return lambda w: os.symlink(target, w.config)


def _loop(w: World) -> None:
    os.symlink(w.config.name, w.config)


def _good_bytes(host: str) -> bytes:
    return json.dumps({"auths": _good(host)}).encode()


# name: (how the file is made, what every registry command must do, the detail, whether login and logout
# may rewrite it)
SHAPES: dict[str, tuple[Callable[[World], None] | None, str, object, bool]] = {
    "no-file": (None, ANONYMOUS, None, True),
    "empty-file": (_raw(b""), ANONYMOUS, None, True),
    "only-whitespace": (_raw(b" \n\t\n"), ANONYMOUS, None, True),
    "null": (_raw(b"null"), ANONYMOUS, None, True),
    "empty-object": (_raw(b"{}"), ANONYMOUS, None, True),
    "a-list": (_raw(b"[]"), REFUSED, "holds a list, where Docker's config file is a JSON object", False),
    "a-number": (_raw(b"5"), REFUSED, "holds a number", False),
    "a-string": (_raw(b'"auths"'), REFUSED, "holds a string", False),
    "true": (_raw(b"true"), REFUSED, "holds true/false", False),
    "invalid-json": (_raw(b'{"auths": {'), REFUSED, "is not valid JSON", False),
    "trailing-garbage": (_raw(lambda h: _good_bytes(h) + b" }"), REFUSED, "is not valid JSON", False),
    "single-quotes": (_raw(b"{'auths': {}}"), REFUSED, "is not valid JSON", False),
    "not-utf-8": (_raw(lambda h: _good_bytes(h)[:-2] + b', "\xff\xfe": 1}'), REFUSED, "is not UTF-8", False),
    "utf-16": (_raw(lambda h: _good_bytes(h).decode().encode("utf-16")), REFUSED, "is not UTF-8", False),
    "byte-order-mark": (_raw(lambda h: b"\xef\xbb\xbf" + _good_bytes(h)), SENT, GOOD, True),
    "nested-too-deeply": (_raw(lambda h: _good_bytes(h)[:-1] + b', "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
                          REFUSED, "nested too deeply", False),
    "number-too-long": (_raw(lambda h: _good_bytes(h)[:-1] + b', "x": ' + b"9" * 5000 + b"}"), REFUSED,
                        "is not valid JSON", False),
    "huge-file": (_raw(lambda h: _good_bytes(h)[:-1] + b', "x": "' + b"a" * (5 << 20) + b'"}'), REFUSED,
                  "over the 4 MiB", False),
    "nan-elsewhere": (_raw(lambda h: _good_bytes(h)[:-1] + b', "x": NaN, "y": 1e999}'), SENT, GOOD, False),
    "auths-null": (_text({"auths": None}), ANONYMOUS, None, True),
    "auths-a-list": (_text({"auths": [{"auth": b64(b"u:p")}]}), REFUSED, "auths is a list, where", False),
    "auths-a-number": (_text({"auths": 5}), REFUSED, "auths is a number, where", False),
    "auths-a-string": (_text({"auths": "x"}), REFUSED, "auths is a string, where", False),
    "auths-true": (_text({"auths": True}), REFUSED, "auths is true/false, where", False),
    "entry-not-an-object": (_with_host(lambda h: {"auths": {h: [b64(b"u:p")]}}), REFUSED, "is a list, where", True),
    "entry-bad-base64": (_with_host(lambda h: {"auths": {h: {"auth": "%%%"}}}), REFUSED, "is not valid base64", True),
    "entry-auth-without-colon": (_with_host(lambda h: {"auths": {h: {"auth": b64(b"alice")}}}), REFUSED,
                                 "does not decode to USER:PASSWORD", True),
    "other-registries-broken": (_with_host(lambda h: {"auths": {**_good(h), "other.example": 5, "x.example": [1],
                                                                "y.example": {"auth": "%%%", "username": []}}}),
                                SENT, GOOD, True),
    "keys-of-other-tools": (_with_host(lambda h: {"auths": _good(h), "proxies": 5, "HttpHeaders": ["x"],
                                                  "currentContext": {"a": [1, None]}, "psFormat": None,
                                                  "plugins": "x", "aliases": 3.5, "features": True}),
                            SENT, GOOD, True),
    "credHelpers-null": (_with_host(lambda h: {"credHelpers": None, "auths": _good(h)}), SENT, GOOD, True),
    "credHelpers-a-list": (_with_host(lambda h: {"credHelpers": ["x"], "auths": _good(h)}), REFUSED,
                           "credHelpers is a list, where", True),
    "credHelpers-for-others-broken": (_with_host(lambda h: {"credHelpers": {"other.example": 5, "y": ["z"]},
                                                            "auths": _good(h)}), SENT, GOOD, True),
    "credsStore-a-number": (_with_host(lambda h: {"credsStore": 5, "auths": _good(h)}), REFUSED,
                            "credsStore is a number, where", True),
    "credsStore-a-list": (_with_host(lambda h: {"credsStore": ["x"], "auths": _good(h)}), REFUSED,
                          "credsStore is a list, where", True),
    "credsStore-empty": (_with_host(lambda h: {"credsStore": "", "auths": _good(h)}), SENT, GOOD, True),
    "a-url-key": (_with_host(lambda h: {"auths": {f"https://{h}/v1/": {"auth": b64(b"u:p")}}}), SENT, GOOD, True),
    "a-directory": (_directory, REFUSED, "is a directory, not Docker's config file", False),
    "a-fifo": (_fifo, REFUSED, "is not a regular file", False),
    "dev-zero": (_symlink("/dev/zero"), REFUSED, "is not a regular file", False),
    "dev-null": (_symlink("/dev/null"), REFUSED, "is not a regular file", False),
    "dangling-symlink": (_symlink("nowhere.json"), ANONYMOUS, None, True),
    "symlink-loop": (_loop, REFUSED, "cannot read", False),
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_every_registry_command_reads_a_config_of_any_shape(world, shape):
    make, expect, detail, _ = SHAPES[shape]
    if make is not None:
        make(world)
    check_every_command(world, expect, detail)
    if expect == REFUSED:
        _, message = world.run(world.commands()["resolve"])
        assert str(world.config) in message, message


def _state(path: Path) -> tuple[object, ...]:
    """What is at `path`, to compare before and after: kind, mode and bytes (or link target)."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return ("absent",)
    if stat.S_ISLNK(info.st_mode):
        return ("link", os.readlink(path), _state(path.parent / os.readlink(path)) if path.exists() else None)
    if stat.S_ISREG(info.st_mode):
        return ("file", stat.S_IMODE(info.st_mode), path.read_bytes())
    return ("other", stat.S_IFMT(info.st_mode))


@pytest.mark.parametrize("shape", list(SHAPES))
def test_login_and_logout_rewrite_only_a_config_they_can_read_whole(world, shape):
    make, _, _, rewritable = SHAPES[shape]
    if make is not None:
        make(world)
    host = world.recorder.host
    world.recorder.accepts.add(basic(b"me", b"secret"))
    before = _state(world.config)
    parsed_before = _parsed(world.config) if rewritable else None
    code, message = world.run(["login", host, "-u", "me", "--password-stdin"], b"secret\n")
    if not rewritable:
        assert code == 6 and str(world.config) in message and "does not rewrite" in message, (code, message)
        assert world.recorder.requests == [], "login sent the password before finding it could not store it"
        assert _state(world.config) == before
        code, message = world.run(["logout", host])
        assert code == 6 and str(world.config) in message, (code, message)
        assert _state(world.config) == before
        assert _leftovers(world) == []
        return
    assert code == 0, message
    after = _parsed(world.config)
    assert after["auths"][host] == {"auth": b64(b"me:secret")}
    _assert_kept(parsed_before, after, host)
    assert stat.S_IMODE(os.stat(world.config).st_mode) == 0o600
    if os.path.islink(world.config.parent / "config.json") or shape == "dangling-symlink":
        assert os.path.islink(world.config), "the symlink was replaced by a file"
    code, message = world.run(["logout", host])
    assert code == 0, message
    gone = _parsed(world.config)
    assert not any(k in gone["auths"] for k in (host, f"https://{host}", f"http://{host}", f"https://{host}/v1/"))
    _assert_kept(parsed_before, gone, host)
    assert _leftovers(world) == []


def _parsed(path: Path) -> dict:
    if not path.exists():
        return {}
    text = path.read_bytes().decode("utf-8-sig")
    return (json.loads(text) if text.strip() else None) or {}


def _assert_kept(before: dict | None, after: dict, host: str) -> None:
    """Everything but the registry's own entries has the value it had."""
    before = dict(before or {})
    mine = {host, f"https://{host}", f"http://{host}", f"https://{host}/v1/"}
    kept_auths = {k: v for k, v in (before.pop("auths", None) or {}).items() if k not in mine}
    after = dict(after)
    assert {k: v for k, v in after.pop("auths").items() if k not in mine} == kept_auths
    assert after == before


def _leftovers(world: World) -> list[str]:
    return [p.name for p in world.config.parent.iterdir() if p.name.startswith(".config.json.")]


# -- what login and logout keep ------------------------------------------------------------------------------


RICH = {
    "auths": {
        "other.example": {"auth": b64(b"x:y"), "email": "x@example.com"},
        "https://index.docker.io/v1/": {"auth": b64(b"hub:pw")},
        "weird.example": {"auth": 5, "identitytoken": ["t"], "nested": {"deep": [1, 2.5, None, True, "\u00e9"]}},
        "日本.example": {},
    },
    "credHelpers": {"gcr.io": "gcloud", "weird": 5},
    "credsStore": "",
    "proxies": {"default": {"httpProxy": "http://proxy:3128", "noProxy": "*.local"}},
    "currentContext": "remote",
    "HttpHeaders": {"X-Meta": "a\r\nb"},
    "psFormat": "table {{.ID}}\t{{.Names}}",
    "big": 123456789012345678901234567890,
    "float": 1.5e300,
    "negative-zero": -0.0,
    "escaped": "😀 \u0000 \\ \"",
    "lone-surrogate": "\udc80",
    "unicode-key-\u2603": {"\u00fc": [[], {}, [[[]]]]},
}


def test_login_and_logout_keep_every_key_and_entry_they_do_not_own(world):
    host = world.recorder.host
    world.recorder.accepts.add(basic(b"me", b"secret"))
    world.config.write_text(json.dumps(RICH))
    assert world.run(["login", host, "-u", "me", "--password-stdin"], b"secret\n")[0] == 0
    after = json.loads(world.config.read_text())
    assert after["auths"].pop(host) == {"auth": b64(b"me:secret")}
    assert after == RICH
    assert list(after) == list(RICH), "the keys' order changed"
    assert world.run(["logout", host])[0] == 0
    assert json.loads(world.config.read_text()) == RICH


def test_login_keeps_an_entry_of_another_form_for_the_same_host_and_logout_removes_every_form(world):
    host = world.recorder.host
    world.recorder.accepts.add(basic(b"me", b"secret"))
    world.config.write_text(json.dumps({"auths": {f"https://{host}": {"auth": b64(b"old:one")},
                                                  f"http://{host}/v1/": {"auth": b64(b"older:one")},
                                                  "keep.example": {"auth": b64(b"k:k")}}}))
    assert world.run(["login", f"https://{host}/v2/", "-u", "me", "--password-stdin"], b"secret\n")[0] == 0
    auths = json.loads(world.config.read_text())["auths"]
    assert auths[host] == {"auth": b64(b"me:secret")}  # a URL is stored under its host, as docker login does
    world.recorder.clear()
    world.run(["resolve", f"{host}/acme/app:1"])  # the recorder answers 200 with no manifest: exit 5
    assert world.recorder.sent() == {basic(b"me", b"secret")}, "the new entry is the one found first"
    assert world.run(["logout", host])[0] == 0
    assert json.loads(world.config.read_text()) == {"auths": {"keep.example": {"auth": b64(b"k:k")}}}
    code, message = world.run(["logout", host])
    assert code == 6 and "not logged in" in message


def test_logout_without_a_config_creates_nothing(world, tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "not-there"))
    code, message = world.run(["logout", world.recorder.host])
    assert code == 6 and "not logged in" in message
    assert not (tmp_path / "not-there").exists()


def test_a_refused_login_leaves_the_config_byte_for_byte(world):
    world.config.write_text(json.dumps(RICH))
    world.config.chmod(0o640)
    before = _state(world.config)
    code, message = world.run(["login", world.recorder.host, "-u", "me", "--password-stdin"], b"wrong\n")
    assert code == 6 and "refused" in message
    assert _state(world.config) == before
    assert _leftovers(world) == []


@pytest.mark.parametrize("host", ["", "a b", "host with space/path", "ho\r\nst", "exa mple.com:5000", ":5000",
                                  "http://", "[::1", "host:port"])
def test_login_and_logout_of_something_that_is_no_host_are_usage_errors(world, host):
    world.config.write_text(json.dumps(RICH))
    before = _state(world.config)
    for args, stdin in ((["login", host, "-u", "me", "--password-stdin"], b"secret\n"), (["logout", host], b"")):
        code, message = world.run(args, stdin)
        assert code == 2 and "is not a registry host" in message, (args, code, message)
    assert _state(world.config) == before and world.recorder.requests == []


def test_login_writes_0600_keeps_the_owner_and_writes_through_a_symlink(world, tmp_path):
    host = world.recorder.host
    world.recorder.accepts.add(basic(b"me", b"secret"))
    # a fresh directory: made 0700, the file 0600
    fresh = tmp_path / "fresh" / "deeper"
    os.environ["DOCKER_CONFIG"] = str(fresh)  # restored by the fixture's monkeypatch
    assert world.run(["login", host, "-u", "me", "--password-stdin"], b"secret\n")[0] == 0
    assert stat.S_IMODE(os.stat(fresh).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(fresh / "config.json").st_mode) == 0o600
    # an existing file, world-readable and someone else's: 0600 afterwards, still theirs
    os.environ["DOCKER_CONFIG"] = str(world.config.parent)
    world.config.write_text("{}")
    world.config.chmod(0o644)
    os.chown(world.config, 1234, 4321)
    assert world.run(["login", host, "-u", "me", "--password-stdin"], b"secret\n")[0] == 0
    info = os.stat(world.config)
    assert stat.S_IMODE(info.st_mode) == 0o600 and (info.st_uid, info.st_gid) == (1234, 4321)
    # a symlink to a file kept elsewhere (dotfiles): the link stays, its target changes
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    (dotfiles / "docker.json").write_text(json.dumps({"auths": {"keep.example": {}}}))
    world.config.unlink()
    os.symlink(dotfiles / "docker.json", world.config)
    assert world.run(["login", host, "-u", "me", "--password-stdin"], b"secret\n")[0] == 0
    assert os.path.islink(world.config)
    assert set(json.loads((dotfiles / "docker.json").read_text())["auths"]) == {"keep.example", host}
    assert [p.name for p in dotfiles.iterdir()] == ["docker.json"]


def test_logins_at_once_keep_each_other_s_entries(tmp_path):
    """Sixteen processes storing credentials for sixteen registries into one config.json at once: all
    sixteen are there afterwards (the directory's lock), and no temporary file is left."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps(RICH))
    script = ("import sys; from ocisift._stores.registry.credentials import Credentials, store_credentials\n"
              "for n in range(5):\n"
              "    store_credentials(f'r{sys.argv[1]}-{n}.example', Credentials('u', sys.argv[1]), sys.argv[2])\n")
    env = {**os.environ, "PYTHONPATH": SRC}
    procs = [subprocess.Popen([sys.executable, "-c", script, str(i), str(config)], env=env) for i in range(16)]
    assert [p.wait(timeout=120) for p in procs] == [0] * 16
    auths = json.loads(config.read_text())["auths"]
    for i in range(16):
        for n in range(5):
            assert base64.b64decode(auths[f"r{i}-{n}.example"]["auth"]) == f"u:{i}".encode()
    assert {k: v for k, v in auths.items() if not k.startswith("r")} == RICH["auths"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]


# -- in a child process --------------------------------------------------------------------------------------


def test_an_unreadable_config_is_exit_6_naming_it(world, bounded, tmp_path):
    """Root reads every file; without CAP_DAC_OVERRIDE (setpriv) a file of mode 000 is unreadable, as it is
    to anyone else."""
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv is needed to drop root's override of file permissions")
    world.config.write_text(json.dumps({"auths": _good(world.recorder.host)}))
    world.config.chmod(0o000)
    before = _state(world.config)
    env = {**os.environ, "PYTHONPATH": SRC}
    drop = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", sys.executable, "-m", "ocisift"]
    for args in (["resolve", f"{world.recorder.host}/acme/app:1"], ["logout", world.recorder.host],
                 ["login", world.recorder.host, "-u", "me", "--password-stdin"]):
        world.recorder.clear()
        proc = subprocess.run([*drop, *args, "--format", "json"], env=env, capture_output=True, timeout=60,
                              input=b"secret\n")
        message = json.loads(proc.stdout)["error"]["message"]
        assert proc.returncode == 6 and str(world.config) in message and "Permission denied" in message, message
        assert world.recorder.sent() == set()
    assert world.recorder.requests == [], "login sent the password before finding it could not store it"
    assert _state(world.config) == before


@pytest.mark.parametrize("shape", ["huge-file", "a-fifo", "dev-zero", "nested-too-deeply"])
def test_configs_that_could_cost_time_or_memory_are_refused_within_bounds(world, bounded, shape):
    make = SHAPES[shape][0]
    assert make is not None
    make(world)
    for args in (["resolve", f"{world.recorder.host}/acme/app:1"], ["logout", world.recorder.host]):
        res = bounded([*args, "--format", "json"], timeout=20)
        assert res.code == 6 and str(world.config) in res.message, res.describe()
        assert res.seconds < 10 and res.rss_mib < 150, res.describe()
