"""Credentials, found the way Docker finds them, and stored the way `docker login` stores them.

In order: explicit username/password, then Docker's config.json
(`credHelpers` for the host, else `credsStore`, else `auths`).
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from typing import Any

from ..._core import jsontext
from ..._core.errors import AuthError

_HELPER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str | None = None
    password: str | None = None
    identity_token: str | None = None

    @property
    def basic(self) -> str | None:
        if self.username is None or self.password is None:
            return None
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()


def docker_config_path() -> str:
    base = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    return os.path.join(base, "config.json")


def _config_keys(host: str) -> list[str]:
    keys = [host, f"https://{host}", f"http://{host}"]
    if host in ("docker.io", "registry-1.docker.io", "index.docker.io"):
        keys += ["https://index.docker.io/v1/", "index.docker.io", "docker.io"]
    return keys


def _helper(name: object, host: str) -> Credentials | None:
    """Ask `docker-credential-NAME` on PATH; NAME must be a plain name, never a path."""
    if not isinstance(name, str) or not _HELPER_NAME.fullmatch(name) or ".." in name:
        raise AuthError(f"refusing credential helper name {name!r} from config.json: it must be a plain name")
    try:
        proc = subprocess.run([f"docker-credential-{name}", "get"], input=host.encode(), capture_output=True,
                              timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AuthError(f"credential helper docker-credential-{name} failed: {exc}") from None
    if proc.returncode != 0:
        return None  # the helper has nothing for this host
    try:
        body = jsontext.loads(proc.stdout)
    except ValueError:
        raise AuthError(f"credential helper docker-credential-{name} answered something that is not JSON") from None
    if not isinstance(body, dict):
        raise AuthError(f"credential helper docker-credential-{name} answered JSON that is not an object")
    user, secret = body.get("Username"), body.get("Secret")
    if not isinstance(user, str) or not isinstance(secret, str):
        return None
    if user == "<token>":
        return Credentials(identity_token=secret)
    return Credentials(user, secret)


def lookup_credentials(host: str, config_path: str | None = None) -> Credentials | None:
    path = config_path or docker_config_path()
    try:
        with open(path, "rb") as fh:
            config: dict[str, Any] = jsontext.load(fh)
    except FileNotFoundError:
        return None
    except ValueError:
        raise AuthError(f"{path} is not valid JSON") from None
    if not isinstance(config, dict):
        raise AuthError(f"{path} is not a JSON object")
    helpers = config.get("credHelpers") or {}
    if not isinstance(helpers, dict):
        raise AuthError(f"{path}: credHelpers must be an object")
    for key in _config_keys(host):
        if key in helpers:
            return _helper(helpers[key], key)
    if config.get("credsStore"):
        found = _helper(config["credsStore"], host)
        if found:
            return found
    auths = config.get("auths") or {}
    if not isinstance(auths, dict):
        raise AuthError(f"{path}: auths must be an object")
    for key in _config_keys(host):
        entry = auths.get(key)
        if not isinstance(entry, dict) or not entry:
            continue
        if entry.get("identitytoken"):
            return Credentials(identity_token=entry["identitytoken"])
        if entry.get("auth"):
            try:
                user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                raise AuthError(f"{path}: the auth entry for {key} is not valid base64") from None
            return Credentials(user, password)
        if entry.get("username") and entry.get("password"):
            return Credentials(entry["username"], entry["password"])
    return None


def store_credentials(host: str, creds: Credentials | None, config_path: str | None = None) -> str:
    """Write (or, with None, remove) `auths[host]` in Docker's config.json, atomically, mode 0600."""
    path = config_path or docker_config_path()
    try:
        with open(path, "rb") as fh:
            config: dict[str, Any] = jsontext.load(fh)
    except FileNotFoundError:
        config = {}
    except ValueError:
        raise AuthError(f"{path} is not valid JSON; not touching it") from None
    auths = config.setdefault("auths", {})
    if creds is None:
        if host not in auths:
            raise AuthError(f"not logged in to {host}")
        del auths[host]
    else:
        auths[host] = {"auth": base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()}
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".config-", dir=os.path.dirname(path) or ".")
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(config, out, indent=2)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path
