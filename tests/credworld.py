"""What the hostile credential and config tests share: every registry command aimed at a recorder, a
world to run them in, and the check each case holds every command to."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from recorder import Recorder, recording

DIGEST = "sha256:" + "0" * 64


# -- every command that reads credentials -------------------------------------------------------------------------


def registry_commands(host: str, work: Path, sample: str) -> dict[str, list[str]]:
    """Each registry-facing command, aimed at `host`. `login` brings its own credentials (-u and stdin)."""
    ref = f"{host}/acme/app:1"
    spec = work / "sync.yaml"
    spec.write_text(f"images:\n  - source: {host}/acme/app\n    tags: ['1']\n    destination: oci:{work}/mirror\n")
    upload = work / "file.txt"
    upload.write_text("pushed\n")
    private, public = _signing_keys(work)
    return {
        "resolve": ["resolve", ref],
        "manifest get": ["manifest", "get", ref],
        "tags": ["tags", f"{host}/acme/app"],
        "tree": ["tree", ref],
        "pull": ["pull", ref, "-o", str(work / "out")],
        "copy": ["copy", ref, f"oci:{work}/copy:1"],
        "copy (to the registry)": ["copy", f"oci:{sample}:7.2", f"{host}/acme/app:2"],
        "sync": ["sync", str(spec)],
        "referrers": ["referrers", ref],
        "push": ["push", f"{host}/acme/app:3", str(upload)],
        "blob get": ["blob", "get", f"{host}/acme/app@{DIGEST}", "-o", str(work / "blob")],
        "index create": ["index", "create", f"{host}/acme/idx:1", f"oci:{sample}:7.2"],
        "index add": ["index", "add", f"{host}/acme/idx:1", f"oci:{sample}:7.2"],
        "index remove": ["index", "remove", f"{host}/acme/idx:1", DIGEST],
        "tag": ["tag", ref, "2"],
        "untag": ["untag", ref],
        "delete": ["delete", f"{host}/acme/app@{DIGEST}"],
        "login": ["login", host, "-u", "someone", "--password-stdin"],
        "verify": ["verify", ref, "--key", str(public)],
        "sign": ["sign", ref, "--key", str(private)],
    }


def _signing_keys(work: Path) -> tuple[Path, Path]:
    """A P-256 key pair as PEM (unencrypted PKCS#8 and SubjectPublicKeyInfo), for verify and sign."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    private, public = work / "cosign.key", work / "cosign.pub"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


@dataclass
class World:
    recorder: Recorder
    work: Path
    sample: str
    config: Path  # DOCKER_CONFIG/config.json
    bin: Path  # on PATH: the credential helpers the tests write
    run: Callable[..., tuple[int, str]]  # (args, stdin bytes) -> (exit code, message)

    def commands(self, *, login: bool = False) -> dict[str, list[str]]:
        found = registry_commands(self.recorder.host, self.work, self.sample)
        if not login:
            del found["login"]
        return found

    def write_config(self, body: object) -> None:
        self.config.write_text(json.dumps(body))

    def helper(self, name: str, script: str) -> None:
        path = self.bin / f"docker-credential-{name}"
        path.write_text("#!/bin/sh\n" + script + "\n")
        path.chmod(0o755)


def message_of(out: str, err: str) -> str:
    """The error message of a --format json run: the command's, or sync's first image's."""
    try:
        body = json.loads(out)
    except ValueError:
        return err
    if isinstance(body, dict) and "error" in body:
        return str(body["error"]["message"])
    if isinstance(body, dict) and body.get("images"):
        return str((body["images"][0].get("error") or {}).get("message"))
    return out


@contextlib.contextmanager
def make_world(tmp_path: Path, sample: str, monkeypatch: pytest.MonkeyPatch,
               capsys: pytest.CaptureFixture[str]) -> Iterator[World]:
    """DOCKER_CONFIG and a helper directory on PATH of the test's own, no proxies, the recorder running, and
    a runner of the command line in this process (stdin given as bytes, output read as JSON)."""
    from ocisift._cli.main import run

    config_dir = tmp_path / "docker"
    config_dir.mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(config_dir))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    for proxy_var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(proxy_var, raising=False)
    work = tmp_path / "work"
    work.mkdir()

    def invoke(args: list[str], stdin: bytes = b"someone's password\n") -> tuple[int, str]:
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(stdin)))
        capsys.readouterr()
        code = run([*args, "--format", "json"])
        out, err = capsys.readouterr()
        assert "Traceback" not in err and "internal error" not in out + err, (args, out, err)
        return code, message_of(out, err)

    with recording() as rec:
        yield World(rec, work, sample, config_dir / "config.json", bin_dir, invoke)


# What a case expects of every command.
REFUSED = "refused"  # exit 6 naming the problem; nothing sent with Authorization
SENT = "sent"  # exactly these bytes sent as Basic; the server's refusal is exit 6
ANONYMOUS = "anonymous"  # nothing found: sent nothing, exit 6 saying no credentials were found


def check_every_command(world: World, expect: str, detail: object, *, login: bool = False,
                        extra: tuple[str, ...] = (), stdin: bytes = b"someone's password\n",
                        usage: bool = False) -> None:
    """Run each command and hold it to `expect` (REFUSED with `detail` in the message, SENT with `detail` the
    exact Authorization value, ANONYMOUS); `usage`: refused as a usage error (exit 2) instead of exit 6."""
    failures = []
    for name, args in world.commands(login=login).items():
        world.recorder.clear()
        code, message = world.run([*args, *extra], stdin)
        sent = world.recorder.sent()
        problems = world.recorder.problems()
        wanted = 2 if usage else 6
        if code != wanted:
            failures.append(f"{name}: exit {code}, not {wanted}: {message}")
        if problems:
            failures.append(f"{name}: the server received {problems}")
        if expect == SENT:
            if sent != {detail}:
                failures.append(f"{name}: sent {sent}, not {detail!r}")
        elif sent:
            failures.append(f"{name}: sent {sent} where nothing should be")
        if expect == REFUSED and str(detail) not in message:
            failures.append(f"{name}: message {message!r} does not say {detail!r}")
        if expect == ANONYMOUS and "none found" not in message and "no credentials found" not in message:
            failures.append(f"{name}: message {message!r} does not say no credentials were found")
    assert not failures, "\n".join(failures)


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()
