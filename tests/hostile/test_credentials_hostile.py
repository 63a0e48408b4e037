"""Credentials and tokens of any characters or types, through every command that reads them.

Where a credential comes from: Docker's config.json (`auths` entries with `auth`, `username`/`password`,
`identitytoken`, `registrytoken`), a credential helper (a real executable the test writes, answering
hostile JSON, failing, hanging, printing megabytes), a token service, and the command line (`-u`,
`--password-stdin`) and environment (DOCKER_CONFIG). For each, every registry command runs against a
loopback server that keeps the raw bytes of each request head (tests/recorder.py), and the test looks
at what it received: either exactly the Basic value of the credential's own bytes, or nothing at all,
never an injected header line or a Python repr. The outcome is always exit 6 (authentication) or 2
(usage), with a message that names the file, field or helper, never a traceback. Credentials that are
hostile-looking but valid (non-Latin-1, CR inside a password, bytes that are not UTF-8) log in to a real
htpasswd registry; hostile token services are also put behind a real registry in token mode.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from credworld import ANONYMOUS, REFUSED, SENT, World, b64, check_every_command, make_world, registry_commands
from ocisift._cli.main import main
from ocisift._demo import build_sample_layout
from recorder import basic

pytestmark = pytest.mark.skipif(shutil.which("docker-registry") is None, reason="docker-registry is needed")


# -- every command that reads credentials -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_layout(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("sample") / "layout")
    build_sample_layout(path)
    return path


@pytest.fixture
def world(tmp_path, sample_layout, monkeypatch, capsys) -> Iterator[World]:
    with make_world(tmp_path, sample_layout, monkeypatch, capsys) as made:
        yield made


def test_the_command_list_is_every_command_that_takes_registry_credentials(tmp_path):
    """A new registry command joins these tests by being added to registry_commands: this fails until it is."""

    def walk(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                yield from walk(command, (*path, name))
            elif any(p.name == "username" for p in command.params):
                yield (*path, name)

    listed = {tuple(args[:2]) if args[0] in ("manifest", "blob", "index") else (args[0],)
              for args in registry_commands("h:1", tmp_path, str(tmp_path)).values()}
    assert listed == set(walk(main))


# -- config.json auths entries --------------------------------------------------------------------------------------


# name: (the entry for the registry, what every command must do, the detail)
ENTRIES: dict[str, tuple[object, str, object]] = {
    "auth-non-latin-1": ({"auth": b64("ユーザー:пароль€".encode())}, SENT, basic("ユーザー".encode(), "пароль€".encode())),
    "auth-not-utf-8": ({"auth": b64(b"\xff\xfeuser:\x80pass\xc3")}, SENT, basic(b"\xff\xfeuser", b"\x80pass\xc3")),
    "auth-crlf-in-password": ({"auth": b64(b"u:p\r\nX-Injected: 1")}, SENT, basic(b"u", b"p\r\nX-Injected: 1")),
    "auth-nul-in-password": ({"auth": b64(b"u:p\x00q")}, SENT, basic(b"u", b"p\x00q")),
    "auth-colons-in-password": ({"auth": b64(b"u:a:b:c")}, SENT, basic(b"u", b"a:b:c")),
    "auth-with-line-breaks": ({"auth": b64(b"u:p")[:2] + "\r\n" + b64(b"u:p")[2:]}, SENT, basic(b"u", b"p")),
    "auth-bad-base64": ({"auth": "!!!not base64"}, REFUSED, "is not valid base64"),
    "auth-bad-length": ({"auth": "dTpwX"}, REFUSED, "is not valid base64"),
    "auth-non-ascii": ({"auth": "dTpwü"}, REFUSED, "is not valid base64"),
    "auth-without-colon": ({"auth": b64(b"alice")}, REFUSED, "does not decode to USER:PASSWORD"),
    "auth-empty-username": ({"auth": b64(b":password")}, REFUSED, "does not decode to USER:PASSWORD"),
    "auth-crlf-in-username": ({"auth": b64(b"u\r\nX-Injected: 1:p")}, REFUSED, "control characters"),
    "auth-a-list": ({"auth": ["dTpw"]}, REFUSED, ".auth is a list"),
    "auth-a-number": ({"auth": 5}, REFUSED, ".auth is a number"),
    "auth-an-object": ({"auth": {"u": "p"}}, REFUSED, ".auth is an object"),
    "auth-true": ({"auth": True}, REFUSED, ".auth is true/false"),
    "auth-empty": ({"auth": ""}, ANONYMOUS, None),
    "auth-null": ({"auth": None}, ANONYMOUS, None),
    "username-a-list": ({"username": ["a"], "password": "p"}, REFUSED, ".username is a list"),
    "password-a-number": ({"username": "u", "password": 5}, REFUSED, ".password is a number"),
    "password-a-list": ({"username": "u", "password": ["p"]}, REFUSED, ".password is a list"),
    "password-crlf": ({"username": "u", "password": "p\r\nX-Injected: 1"}, SENT, basic(b"u", b"p\r\nX-Injected: 1")),
    "password-non-latin-1": ({"username": "u", "password": "日本語🔑"}, SENT, basic(b"u", "日本語🔑".encode())),
    "password-lone-surrogate": ({"username": "u", "password": "\ud800"}, REFUSED, "lone surrogate"),
    "password-escaped-byte": ({"username": "u", "password": "\udcff"}, REFUSED, "lone surrogate"),
    "username-with-colon": ({"username": "a:b", "password": "p"}, REFUSED, "contains ':'"),
    "username-with-lf": ({"username": "a\nb", "password": "p"}, REFUSED, "control characters"),
    "username-only": ({"username": "u"}, ANONYMOUS, None),
    "password-huge": ({"username": "u", "password": "p" * 70000}, REFUSED, "is over 64 KiB"),
    "identitytoken-a-list": ({"identitytoken": ["t"]}, REFUSED, ".identitytoken is a list"),
    "identitytoken-a-number": ({"identitytoken": 12}, REFUSED, ".identitytoken is a number"),
    "identitytoken-lone-surrogate": ({"identitytoken": "\udc80"}, REFUSED, "lone surrogate"),
    "registrytoken-a-list": ({"registrytoken": ["t"]}, REFUSED, ".registrytoken is a list"),
    "registrytoken-an-object": ({"registrytoken": {"t": 1}}, REFUSED, ".registrytoken is an object"),
    "registrytoken-crlf": ({"registrytoken": "t\r\nX-Injected: 1"}, REFUSED, "cannot be sent in a header"),
    "registrytoken-non-latin-1": ({"registrytoken": "tökén"}, REFUSED, "cannot be sent in a header"),
    "registrytoken-space": ({"registrytoken": "a b"}, REFUSED, "cannot be sent in a header"),
    "registrytoken-huge": ({"registrytoken": "t" * 70000}, REFUSED, "over the 64 KiB"),
    "entry-a-string": ("dTpw", REFUSED, "is a string, where Docker's config has an object"),
    "entry-a-list": ([{"auth": b64(b"u:p")}], REFUSED, "is a list, where Docker's config has an object"),
    "entry-a-number": (5, REFUSED, "is a number, where Docker's config has an object"),
    "entry-null": (None, ANONYMOUS, None),
    "entry-empty": ({}, ANONYMOUS, None),
}


@pytest.mark.parametrize("case", list(ENTRIES))
def test_an_auths_entry_of_any_type_or_characters(world, case):
    entry, expect, detail = ENTRIES[case]
    world.write_config({"auths": {world.recorder.host: entry}})
    if expect == REFUSED:
        detail = f"{world.config}: " if detail is None else detail
    check_every_command(world, expect, detail)
    if expect == REFUSED:  # the message also names the file
        _, message = world.run(world.commands()["resolve"])
        assert str(world.config) in message, message


@pytest.mark.parametrize("case", ["registrytoken-sent-as-it-is", "identitytoken-crlf", "identitytoken-non-latin-1",
                                  "identitytoken-huge"])
def test_tokens_in_auths_against_a_bearer_registry(world, case):
    """A registry token is the Bearer token itself (Docker's registrytoken); an identity token is a refresh
    token POSTed to the token service in a form, so any text stays inside the form, percent-encoded."""
    world.recorder.scheme = "bearer"
    if case == "registrytoken-sent-as-it-is":
        world.write_config({"auths": {world.recorder.host: {"registrytoken": "eyJ.a-b_c~d+e/f=="}}})
        check_every_command(world, SENT, b"Bearer eyJ.a-b_c~d+e/f==")
        assert world.recorder.token_requests() == [], "a registry token needs no token service"
        return
    token = {"identitytoken-crlf": "t\r\nX-Injected: 1\r\n\r\n", "identitytoken-non-latin-1": "тöкен日本",
             "identitytoken-huge": "t" * 70000}[case]
    world.write_config({"auths": {world.recorder.host: {"identitytoken": token}}})
    world.recorder.token_status = 401  # the token service refuses it: exit 6
    if case == "identitytoken-huge":
        check_every_command(world, REFUSED, "is over 64 KiB")
        assert world.recorder.token_requests() == []
        return
    check_every_command(world, REFUSED, "refused (401)")
    forms = world.recorder.token_form()
    assert forms and all(f["refresh_token"] == [token] and f["grant_type"] == ["refresh_token"] for f in forms)


# -- credential helpers ---------------------------------------------------------------------------------------


OK_JSON = '{"ServerURL":"x","Username":"u","Secret":"s"}'
# name: (the helper's script, what every command must do, the detail)
HELPERS: dict[str, tuple[str, str, object]] = {
    "answers": (f"printf '%s' '{OK_JSON}'", SENT, basic(b"u", b"s")),
    "non-latin-1": ("printf '%s' '{\"Username\":\"ユーザー\",\"Secret\":\"пароль€\"}'", SENT,
                    basic("ユーザー".encode(), "пароль€".encode())),
    "crlf-in-secret": ("printf '%s' '{\"Username\":\"u\",\"Secret\":\"p\\r\\nX-Injected: 1\"}'", SENT,
                       basic(b"u", b"p\r\nX-Injected: 1")),
    "crlf-in-username": ("printf '%s' '{\"Username\":\"u\\r\\nX-Injected 1\",\"Secret\":\"s\"}'", REFUSED,
                         "control characters"),
    "colon-in-username": ("printf '%s' '{\"Username\":\"u\\r\\nX-Injected: 1\",\"Secret\":\"s\"}'", REFUSED,
                          "contains ':'"),
    "username-a-list": ("printf '%s' '{\"Username\":[\"u\"],\"Secret\":\"s\"}'", REFUSED, "Username that is a list"),
    "secret-a-number": ("printf '%s' '{\"Username\":\"u\",\"Secret\":5}'", REFUSED, "Secret that is a number"),
    "secret-an-object": ("printf '%s' '{\"Username\":\"u\",\"Secret\":{}}'", REFUSED, "Secret that is an object"),
    "secret-lone-surrogate": ("printf '%s' '{\"Username\":\"u\",\"Secret\":\"\\udcff\"}'", REFUSED,
                              "lone surrogate"),
    "a-list": ("printf '[1, 2]'", REFUSED, "answered a list, not a JSON object"),
    "a-string": ("printf '\"u:s\"'", REFUSED, "answered a string, not a JSON object"),
    "not-json": ("printf 'Username=u Secret=s'", REFUSED, "not JSON"),
    "not-utf-8": ("printf '{\"Username\":\"u\",\"Secret\":\"\\377\\376\"}'", REFUSED, "not UTF-8"),
    "empty-output": ("exit 0", REFUSED, "not JSON"),
    "empty-secret": ("printf '%s' '{\"Username\":\"u\",\"Secret\":\"\"}'", ANONYMOUS, None),
    "huge-output": ("head -c 3000000 /dev/zero | tr '\\0' a", REFUSED, "printed more than 1,048,576 bytes"),
    "huge-stderr": ("head -c 3000000 /dev/zero >&2; exit 1", REFUSED, "printed more than 65,536 bytes"),
    "not-found": ("echo 'credentials not found in native keychain'; exit 1", ANONYMOUS, None),
    "silent-failure": ("exit 3", ANONYMOUS, None),
    "failure-with-a-message": ("printf 'keychain locked\\r\\nerror: a forged line\\n'; exit 2", REFUSED,
                               "failed (exit 2): keychain locked error: a forged line"),
    "killed": ("kill -9 $$", REFUSED, "was killed by SIGKILL"),
}


@pytest.mark.parametrize("configured", ["credHelpers", "credsStore"])
@pytest.mark.parametrize("case", list(HELPERS))
def test_a_credential_helper_answering_anything(world, case, configured):
    script, expect, detail = HELPERS[case]
    world.helper("hostile", script)
    key = {"credHelpers": {world.recorder.host: "hostile"}} if configured == "credHelpers" else {"credsStore": "hostile"}
    world.write_config(key)
    check_every_command(world, expect, detail)


@pytest.mark.parametrize("case", ["hangs", "answers-and-leaves-a-child-holding-its-output"])
def test_a_helper_that_hangs_is_killed_at_the_timeout_with_its_children(world, case):
    pids = world.work / "pids"
    script = {"hangs": f"echo $$ >> {pids}; sleep 1000",
              "answers-and-leaves-a-child-holding-its-output":
                  f"printf '%s' '{OK_JSON}'; sleep 1000 & echo $! >> {pids}; exit 0"}[case]
    world.helper("slow", script)
    world.write_config({"credHelpers": {world.recorder.host: "slow"}})
    began = time.monotonic()
    check_every_command(world, REFUSED, "within 1 s (--timeout)", extra=("--timeout", "1"))
    assert time.monotonic() - began < 1.8 * len(world.commands()) + 10
    time.sleep(0.2)
    alive = [pid for pid in pids.read_text().split() if Path(f"/proc/{pid}").exists()
             and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()]
    assert not alive, f"helper processes left running: {alive}"


NAMES: dict[str, tuple[object, str, object]] = {
    "a-path": ("../../bin/evil", REFUSED, "it must be a plain name"),
    "absolute": ("/bin/sh", REFUSED, "it must be a plain name"),
    "with-a-space": ("a b", REFUSED, "it must be a plain name"),
    "crlf": ("x\r\ny", REFUSED, "it must be a plain name"),
    "a-list": (["x"], REFUSED, "is a list, where Docker's config has a string"),
    "a-number": (5, REFUSED, "is a number, where Docker's config has a string"),
    "not-on-path": ("nowhere-to-be-found", REFUSED, "is not on PATH"),
    "not-executable": ("noexec", REFUSED, "cannot be run"),
    "empty": ("", ANONYMOUS, None),  # Docker: an empty name means the file store
    "null": (None, ANONYMOUS, None),
}


@pytest.mark.parametrize("configured", ["credHelpers", "credsStore"])
@pytest.mark.parametrize("case", list(NAMES))
def test_a_credential_helper_name_of_any_shape(world, case, configured):
    name, expect, detail = NAMES[case]
    (world.bin / "docker-credential-noexec").write_text(f"#!/bin/sh\nprintf '%s' '{OK_JSON}'\n")
    world.write_config({"credHelpers": {world.recorder.host: name}} if configured == "credHelpers"
                       else {"credsStore": name})
    check_every_command(world, expect, detail)


def test_an_empty_helper_name_falls_back_to_auths_as_in_docker(world):
    world.write_config({"credHelpers": {world.recorder.host: ""}, "credsStore": "",
                        "auths": {world.recorder.host: {"auth": b64(b"from:auths")}}})
    check_every_command(world, SENT, basic(b"from", b"auths"))


def test_a_helper_receives_the_server_and_docker_hub_under_its_legacy_key(tmp_path, monkeypatch):
    from ocisift._stores.registry.credentials import lookup_credentials

    seen = tmp_path / "seen"
    helper = tmp_path / "bin" / "docker-credential-echo"
    helper.parent.mkdir()
    helper.write_text(f"#!/bin/sh\ncat >> {seen}; echo >> {seen}\nprintf '%s' '{OK_JSON}'\n")
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{helper.parent}{os.pathsep}{os.environ['PATH']}")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"credsStore": "echo"}))
    for host in ("reg.example:5000", "docker.io"):
        assert lookup_credentials(host, str(config)) is not None
    assert seen.read_text().split("\n")[:2] == ["reg.example:5000", "https://index.docker.io/v1/"]


# -- token services -----------------------------------------------------------------------------------------------


TOKEN_REPLIES: dict[str, tuple[bytes, str]] = {
    "token-a-list": (b'{"token": ["a"]}', "is a list, not a string"),
    "token-a-number": (b'{"token": 5}', "is a number, not a string"),
    "token-an-object": (b'{"token": {"a": 1}}', "is an object, not a string"),
    "token-true": (b'{"token": true}', "is true/false, not a string"),
    "access_token-a-list": (b'{"access_token": ["a"]}', "is a list, not a string"),
    "token-crlf": (b'{"token": "t\\r\\nX-Injected: 1"}', "header cannot carry"),
    "token-lf-at-the-end": (b'{"access_token": "tok\\n"}', "header cannot carry"),
    "token-nul": (b'{"token": "t\\u0000u"}', "header cannot carry"),
    "token-non-latin-1": ('{"token": "tökén日本"}'.encode(), "header cannot carry"),
    "token-latin-1-only": ('{"token": "tök"}'.encode(), "header cannot carry"),
    "token-a-space": (b'{"token": "a b"}', "header cannot carry"),
    "token-huge": (json.dumps({"token": "t" * 100_000}).encode(), "over the 64 KiB"),
    "body-huge": (b'{"token": "' + b"t" * (2 << 20) + b'"}', "over the 1048576-byte limit"),
    "body-not-utf-8": (b'{"token": "\xff\xfe"}', "not JSON"),
    "body-not-json": (b"token=abc", "not JSON"),
    "body-a-list": (b'["abc"]', "not an object"),
    "body-empty": (b"", "not JSON"),
    "no-token": (b'{"expires_in": 300}', "returned no token"),
    "empty-token": (b'{"token": "", "access_token": ""}', "returned no token"),
}


@pytest.mark.parametrize("case", list(TOKEN_REPLIES))
def test_a_token_service_answering_anything(world, case):
    reply, detail = TOKEN_REPLIES[case]
    world.recorder.scheme = "bearer"
    world.recorder.token_reply = reply
    world.write_config({"auths": {world.recorder.host: {"auth": b64(b"u:p")}}})
    check_every_command(world, REFUSED, detail, login=True)
    assert world.recorder.token_requests(), "the token service was never asked"
    login = basic(b"someone", b"someone's password")
    assert all(r.authorizations() in ([basic(b"u", b"p")], [login]) for r in world.recorder.token_requests())


def test_a_token_service_answering_a_usable_token_is_sent_as_it_came(world):
    world.recorder.scheme = "bearer"
    world.recorder.token_reply = b'{"token": "abc.DEF-ghi_~+/=", "expires_in": "NaN"}'
    check_every_command(world, SENT, b"Bearer abc.DEF-ghi_~+/=", login=True)


# -- command line and environment --------------------------------------------------------------------------------


# name: (-u value, stdin bytes, what every command must do, the detail)
FLAGS: dict[str, tuple[str | None, bytes | None, str, object]] = {
    "username-with-colon": ("a:b", b"p\n", REFUSED, "contains ':'"),
    "username-empty": ("", b"p\n", REFUSED, "the username is empty"),
    "username-crlf": ("u\r\nX-Injected 1", b"p\n", REFUSED, "control characters"),
    "username-crlf-and-colon": ("u\r\nX-Injected: 1", b"p\n", REFUSED, "contains ':'"),
    "username-tab": ("u\tv", b"p\n", REFUSED, "control characters"),
    "username-not-utf-8": ("\udcff\udcfeu", b"p\n", SENT, basic(b"\xff\xfeu", b"p")),
    "username-non-latin-1": ("ユーザー", b"p\n", SENT, basic("ユーザー".encode(), b"p")),
    "password-not-utf-8": ("u", b"\xff\xfe\x80pass\n", SENT, basic(b"u", b"\xff\xfe\x80pass")),
    "password-non-latin-1": ("u", "пароль€日本\n".encode(), SENT, basic(b"u", "пароль€日本".encode())),
    "password-crlf-ending": ("u", b"pass\r\n", SENT, basic(b"u", b"pass")),
    "password-cr-inside": ("u", b"pa\rss\n", SENT, basic(b"u", b"pa\rss")),
    "password-nul-inside": ("u", b"pa\x00ss", SENT, basic(b"u", b"pa\x00ss")),
    "password-only-the-first-line": ("u", b"first\nX-Injected: 1\n", SENT, basic(b"u", b"first")),
    "password-empty": ("u", b"\n", REFUSED, "read an empty password"),
    "password-nothing": ("u", b"", REFUSED, "read an empty password"),
    "password-too-long": ("u", b"p" * 70000, REFUSED, "more than 64 KiB"),
    "username-without-password-stdin": ("u", None, REFUSED, "--username needs --password-stdin"),
    "password-stdin-without-username": (None, b"p\n", REFUSED, "--password-stdin needs --username"),
}


@pytest.mark.parametrize("case", list(FLAGS))
def test_credentials_on_the_command_line(world, case):
    user, stdin, expect, detail = FLAGS[case]
    world.write_config({"auths": {world.recorder.host: {"auth": b64(b"from:config")}}})  # flags win over it
    failures = []
    for name, args in world.commands(login=True).items():
        if name == "login":
            args = args[:2]
        extra = (["-u", user] if user is not None else []) + (["--password-stdin"] if stdin is not None else [])
        world.recorder.clear()
        code, message = world.run([*args, *extra], stdin or b"")
        sent = world.recorder.sent()
        wanted = 2 if expect == REFUSED else 6
        if code != wanted:
            failures.append(f"{name}: exit {code}, not {wanted}: {message}")
        if world.recorder.problems():
            failures.append(f"{name}: the server received {world.recorder.problems()}")
        if expect == SENT and sent != {detail}:
            failures.append(f"{name}: sent {sent}, not {detail!r}")
        if expect == REFUSED and (sent or str(detail) not in message):
            failures.append(f"{name}: sent {sent}; message {message!r}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("case", ["a-file", "a-fifo", "unreadable-path", "newline-in-the-path", "not-utf-8-path"])
def test_docker_config_pointing_anywhere(world, monkeypatch, case):
    target = world.work / "elsewhere"
    if case == "a-file":
        target.write_text("{}")  # DOCKER_CONFIG is a file: its config.json cannot be opened
        expect, detail = REFUSED, "cannot read"
    elif case == "a-fifo":
        target.mkdir()
        os.mkfifo(target / "config.json")
        expect, detail = REFUSED, "is not a regular file"
    elif case == "unreadable-path":
        target.mkdir()
        os.symlink("config.json", target / "config.json")  # a loop: ELOOP
        expect, detail = REFUSED, "cannot read"
    elif case == "newline-in-the-path":
        target = world.work / "a\nb\x1b[31m"
        target.mkdir()
        (target / "config.json").write_text('{"auths": 5}')
        expect, detail = REFUSED, "auths is a number"
    else:
        target = Path(os.fsdecode(bytes(world.work) + b"/\xff\xfe"))
        target.mkdir()
        (target / "config.json").write_text(json.dumps({"auths": {world.recorder.host: {"auth": b64(b"u:p")}}}))
        expect, detail = SENT, basic(b"u", b"p")
    monkeypatch.setenv("DOCKER_CONFIG", str(target))
    check_every_command(world, expect, detail)


# -- in a child process: bounded in time and memory --------------------------------------------------------------


def test_bounds_hold_in_a_real_process(world, bounded, tmp_path):
    """The cases that could cost memory or time, measured in a child: a helper printing megabytes, one that
    hangs, a token service answering a megabyte, and --password-stdin from /dev/zero."""
    args = world.commands(login=True)
    world.helper("huge", "head -c 50000000 /dev/zero")
    world.helper("hangs", "sleep 1000")
    for helper, detail, timeout in (("huge", "printed more than", "30"), ("hangs", "did not answer within 2 s", "2")):
        world.write_config({"credHelpers": {world.recorder.host: helper}})
        for name in ("resolve", "pull", "copy (to the registry)"):
            res = bounded([*args[name], "--format", "json", "--timeout", timeout], timeout=20)
            assert res.code == 6 and detail in res.message, (name, res.describe())
            assert res.rss_mib < 120, (name, res.describe())
    world.write_config({})
    for name in ("resolve", "login"):
        extra = [] if name == "login" else ["-u", "u", "--password-stdin"]
        res = bounded([*args[name], *extra, "--format", "json"], timeout=20, stdin="/dev/zero")
        assert res.code == 2 and "more than 64 KiB" in res.message, (name, res.describe())
        assert res.seconds < 10 and res.rss_mib < 120, res.describe()
    res = bounded(["resolve", f"{world.recorder.host}/acme/app:1", "--password-stdin", "--format", "json"],
                  timeout=20, stdin="/dev/zero")
    assert res.code == 2 and "needs --username" in res.message, res.describe()  # refused before reading


def test_a_stop_signal_kills_a_helper_that_hangs(world, tmp_path):
    """SIGTERM while a credential helper hangs: the command ends 143 at once, and the helper with it."""
    import subprocess
    import sys

    pids = tmp_path / "pids"
    world.helper("hangs", f"echo $$ >> {pids}; sleep 1000")
    world.write_config({"credHelpers": {world.recorder.host: "hangs"}})
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "ocisift", "resolve", f"{world.recorder.host}/acme/app:1"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not (pids.exists() and pids.read_text().strip()):
            assert time.monotonic() < deadline, "the helper never started"
            time.sleep(0.05)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 143 and time.monotonic() - sent < 2, (proc.returncode, err)
    assert b"Traceback" not in err
    time.sleep(0.2)
    pid = pids.read_text().split()[0]
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()


# -- against real registries ----------------------------------------------------------------------------------


REAL_USER = "ci-ユーザー"
REAL_PASSWORD = "пароль €\r\t日本".encode() + b"\xff!"  # non-Latin-1, a CR, a tab, a byte that is not UTF-8


@pytest.fixture(scope="module")
def htpasswd_registry(tmp_path_factory, sample_layout):
    import subprocess

    from registry import run_registry

    work = tmp_path_factory.mktemp("htpasswd")
    with run_registry(work, htpasswd=(REAL_USER, REAL_PASSWORD)) as reg:
        creds = base64.b64encode(REAL_USER.encode() + b":" + REAL_PASSWORD).decode()
        config = work / "push-config"
        config.mkdir()
        (config / "config.json").write_text(json.dumps({"auths": {reg.host: {"auth": creds}}}))
        env = {**os.environ, "DOCKER_CONFIG": str(config),
               "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
        import sys

        subprocess.run([sys.executable, "-m", "ocisift", "copy", f"oci:{sample_layout}:7.2", f"{reg.host}/acme/app:1"],
                       env=env, check=True, capture_output=True, timeout=120)
        yield reg


def test_hostile_looking_but_valid_credentials_work_against_a_real_registry(htpasswd_registry, world, monkeypatch):
    """The same bytes reach the registry however they were given: config.json `auth` (base64 of bytes that
    are not UTF-8), a credential helper, and -u with --password-stdin."""
    host = htpasswd_registry.host
    ref = f"{host}/acme/app:1"
    world.write_config({"auths": {host: {"auth": base64.b64encode(REAL_USER.encode() + b":" + REAL_PASSWORD).decode()}}})
    code, message = world.run(["resolve", ref])
    assert code == 0, message
    code, message = world.run(["pull", ref, "-o", str(world.work / "pulled"), "--mode", "extract-all"])
    assert code == 0 and (world.work / "pulled" / "timoni.cue").is_file(), message
    # -u and --password-stdin: the password's bytes are read as they are (surrogate escapes for 0xff)
    world.write_config({})
    code, message = world.run(["resolve", ref, "-u", REAL_USER, "--password-stdin"], REAL_PASSWORD + b"\n")
    assert code == 0, message
    # login stores exactly those bytes, and they work afterwards
    code, message = world.run(["login", host, "-u", REAL_USER, "--password-stdin"], REAL_PASSWORD + b"\r\n")
    assert code == 0, message
    stored = json.loads(world.config.read_text())["auths"][host]["auth"]
    assert base64.b64decode(stored) == REAL_USER.encode() + b":" + REAL_PASSWORD
    assert world.run(["resolve", ref])[0] == 0
    # a helper answering JSON (UTF-8 only: the byte that is not UTF-8 cannot be in its answer) is refused
    # by the registry, as the password differs; a helper answering the right one works
    password_text = REAL_PASSWORD.decode("utf-8", "surrogateescape")
    assert password_text.encode("utf-8", "surrogateescape") == REAL_PASSWORD
    world.helper("real", f"printf '%s' '{json.dumps({'Username': REAL_USER, 'Secret': 'wrong'})}'")
    world.write_config({"credHelpers": {host: "real"}})
    code, message = world.run(["resolve", ref])
    assert code == 6 and "refused" in message, message


def test_hostile_token_services_behind_a_real_registry(tmp_path_factory, monkeypatch, world):
    from tokens import run_token_registry

    work = tmp_path_factory.mktemp("hostile-tokens")
    with run_token_registry(work, ("u", "p")) as (reg, issuer, ca):
        monkeypatch.setenv("SSL_CERT_FILE", str(ca))
        world.write_config({"auths": {reg.host: {"auth": b64(b"u:p")}}})
        ref = f"{reg.host}/acme/app:1"
        for case in ("token-a-list", "token-crlf", "token-non-latin-1", "token-huge", "body-huge", "body-not-utf-8"):
            reply, detail = TOKEN_REPLIES[case]
            issuer.reply = reply
            asked = len(issuer.requests)
            for args in (["resolve", ref], ["copy", f"oci:{world.sample}:7.2", ref],
                         ["login", reg.host, "-u", "u", "--password-stdin"]):
                code, message = world.run(args, b"p\n")
                assert code == 6 and detail in message, (case, args, message)
            assert len(issuer.requests) > asked
        issuer.reply = None
        code, message = world.run(["copy", f"oci:{world.sample}:7.2", ref])
        assert code == 0, message  # the same registry, with a token service that answers well
        log = reg.log_text()
        assert "X-Injected" not in log and "['a']" not in log


# -- the Python API -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("username", "password", "detail"), [
    ("a:b", "p", "contains ':'"), ("", "p", "is empty"), ("u\r\n", "p", "control characters"),
    (["u"], "p", "is a list, not a string"), (5, "p", "is a number, not a string"), ("u", 5, "is a number"),
    ("u", None, "needs its password"), (None, "p", "needs its username"), ("u", "\ud800", "lone surrogate"),
])
def test_the_api_refuses_credentials_it_cannot_send_where_they_enter(world, username, password, detail):
    import ocisift
    from ocisift import RegistryOptions, UsageError

    with pytest.raises(UsageError) as raised:
        RegistryOptions(username=username, password=password)
    assert detail in raised.value.message
    if username is not None and password is not None:
        with pytest.raises(UsageError) as raised:
            ocisift.login(world.recorder.host, username, password)
        assert detail in raised.value.message
        assert world.recorder.requests == [] and not world.config.exists()
