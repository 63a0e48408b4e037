"""Credentials, found the way Docker finds them, and stored the way `docker login` stores them.

In order: explicit username/password, then Docker's config.json (`credHelpers`
for the host, else `credsStore`, else `auths`). Within an `auths` entry:
`registrytoken` (sent as the Bearer token itself), else `identitytoken` (an
OAuth2 refresh token for the token service), else `auth` (base64 of
USER:PASSWORD), else `username` and `password`.

Every value is checked for what it must become before anything is sent: a
username and password go inside Basic's base64 (any text; a username without
':' or control characters), an identity token inside a form body (any text),
a registry token straight into the Authorization header (visible ASCII only,
as RFC 6750's b64token and Go's net/http demand). A value of the wrong JSON
type, or one that cannot become what it must, is exit 6 naming the file and
the key: never its Python form sent to a server. Absent, null and empty
values are Docker's zero values: nothing there.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from ..._core import jsontext
from ..._core.errors import AuthError
from ..._core.options import json_kind, secret_problem, text_bytes, username_problem
from . import helpers
from .auth import MAX_TOKEN_CHARS, token_problem
from .dockerconfig import (
    ConfigError,
    check_rewritable,
    docker_config_path,
    is_text,
    quoted,
    read_config,
    section,
    text_field,
    update_config,
)

DOCKER_HUB_KEY = "https://index.docker.io/v1/"  # where docker login keeps Docker Hub's entry
_HUB_HOSTS = ("docker.io", "registry-1.docker.io", "index.docker.io")

__all__ = ["Credentials", "check_rewritable", "docker_config_path", "lookup_credentials", "remove_credentials",
           "store_credentials"]


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str | None = None
    password: str | None = None
    identity_token: str | None = None
    registry_token: str | None = None

    @property
    def basic(self) -> str | None:
        if self.username is None or self.password is None:
            return None
        # Arguments and input that were not UTF-8 keep their own bytes (surrogate escapes), as Docker's do.
        return "Basic " + base64.b64encode(text_bytes(self.username) + b":" + text_bytes(self.password)).decode()


def config_keys(host: str) -> list[str]:
    """The keys of `auths` and `credHelpers` that name `host`, in the order Docker tries them."""
    keys = [host, f"https://{host}", f"http://{host}"]
    if host in _HUB_HOSTS:
        keys += [DOCKER_HUB_KEY, "index.docker.io", "docker.io"]
    return keys


def hostname_of(key: str) -> str:
    """Docker's ConvertToHostname: a key written as a URL (`https://host/v1/`) names its host."""
    for scheme in ("https://", "http://"):
        if key.startswith(scheme):
            key = key[len(scheme):]
            break
    return key.split("/", 1)[0]


def _matching(entries: dict[str, Any], host: str) -> list[str]:
    """Keys naming `host`: Docker's exact forms first, then any other key whose host is `host`."""
    exact = [k for k in config_keys(host) if k in entries]
    names = {host, *(_HUB_HOSTS if host in _HUB_HOSTS else ())}
    return exact + [k for k in entries if k not in exact and hostname_of(k) in names]


def lookup_credentials(host: str, config_path: str | None = None, *, timeout: float = 30.0) -> Credentials | None:
    """The credentials config.json holds for `host`, or None; ConfigError or HelperError (exit 6) when what
    it holds for `host` cannot be used. `timeout` bounds a credential helper's answer."""
    path = config_path or docker_config_path()
    config = read_config(path)
    if config is None:
        return None
    server = DOCKER_HUB_KEY if host in _HUB_HOSTS else host
    helpers_for = section(config, "credHelpers", path)
    for key in _matching(helpers_for, host):
        name = text_field(helpers_for[key], f"credHelpers.{quoted(key)}", path)
        if name is not None:  # an empty name means the default store, as in Docker
            return _from_helper(name, f"credHelpers.{quoted(key)}", server, path, timeout)
    store = text_field(config.get("credsStore"), "credsStore", path)
    if store is not None:
        found = _from_helper(store, "credsStore", server, path, timeout)
        if found is not None:
            return found
    auths = section(config, "auths", path)
    for key in _matching(auths, host):
        found = _from_entry(auths[key], f"auths.{quoted(key)}", path)
        if found is not None:
            return found
    return None


def _from_entry(entry: object, where: str, path: str) -> Credentials | None:
    if entry is None:
        return None
    if not isinstance(entry, dict):
        raise ConfigError(f"{path}: {where} is {json_kind(entry)}, where Docker's config has an object")
    registry_token = text_field(entry.get("registrytoken"), f"{where}.registrytoken", path)
    if registry_token is not None:
        problem = token_problem(registry_token)
        if problem:
            raise ConfigError(f"{path}: {where}.registrytoken {problem}, so it cannot be sent in a header")
        return Credentials(registry_token=registry_token)
    identity_token = text_field(entry.get("identitytoken"), f"{where}.identitytoken", path)
    if identity_token is not None:
        _check_secret(identity_token, f"{where}.identitytoken", path)
        return Credentials(identity_token=identity_token)
    auth = text_field(entry.get("auth"), f"{where}.auth", path)
    if auth is not None:
        return _decoded(auth, f"{where}.auth", path)
    username = text_field(entry.get("username"), f"{where}.username", path)
    password = text_field(entry.get("password"), f"{where}.password", path)
    if username is None or password is None:
        return None
    return _basic(username, password, where, path)


def _decoded(auth: str, where: str, path: str) -> Credentials:
    """`auth`: base64 of USER:PASSWORD, line breaks ignored (as Go's decoder ignores them)."""
    try:
        raw = base64.b64decode(auth.replace("\r", "").replace("\n", ""), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{path}: {where} is not valid base64") from None
    user, colon, password = raw.partition(b":")
    if not colon or not user:
        raise ConfigError(f"{path}: {where} does not decode to USER:PASSWORD (no ':' after a username)")
    return _basic(user.decode("utf-8", "surrogateescape"), password.decode("utf-8", "surrogateescape"), where, path)


def _basic(username: str, password: str, where: str, path: str) -> Credentials:
    problem = username_problem(username)
    if problem:
        raise ConfigError(f"{path}: the username of {where} {problem}")
    _check_secret(password, f"the password of {where}", path)
    return Credentials(username, password)


def _check_secret(value: str, where: str, path: str) -> None:
    problem = secret_problem(value)
    if problem is None and len(text_bytes(value)) > MAX_TOKEN_CHARS:
        problem = f"is over {MAX_TOKEN_CHARS // 1024} KiB"
    if problem:
        raise ConfigError(f"{path}: {where} {problem}")


def _from_helper(name: str, where: str, server: str, path: str, timeout: float) -> Credentials | None:
    """Ask `docker-credential-NAME`; its answer is checked as an `auths` entry is."""
    if not helpers.valid_name(name):
        raise ConfigError(f"{path}: {where} names the credential helper {quoted(name)}; it must be a plain name "
                          "(docker-credential-NAME is run from PATH), not a path")
    answer = helpers.ask(name, server, timeout)
    if answer is None:
        return None
    program = f"credential helper docker-credential-{name}"
    try:
        body = jsontext.loads(answer)
    except UnicodeDecodeError:
        raise helpers.HelperError(f"{program} answered bytes that are not UTF-8") from None
    except ValueError:
        raise helpers.HelperError(f"{program} answered something that is not JSON") from None
    if not isinstance(body, dict):
        raise helpers.HelperError(f"{program} answered {json_kind(body)}, not a JSON object")
    fields: dict[str, str] = {}
    for field in ("Username", "Secret"):
        value = body.get(field)
        if value is not None and not isinstance(value, str):
            raise helpers.HelperError(f"{program} answered a {field} that is {json_kind(value)}, not a string")
        if isinstance(value, str) and not is_text(value):
            raise helpers.HelperError(f"{program} answered a {field} with a lone surrogate escape, which is no text")
        fields[field] = value or ""
    user, secret = fields["Username"], fields["Secret"]
    if not secret:
        return None
    if user == "<token>":
        _check_secret(secret, "its identity token", program)
        return Credentials(identity_token=secret)
    return _basic(user, secret, "its answer", program)


# -- login and logout -----------------------------------------------------------------------------------------


def store_credentials(host: str, creds: Credentials, config_path: str | None = None) -> str:
    """Write `auths[host]` in Docker's config.json (see dockerconfig.update_config); returns its path."""
    assert creds.username is not None and creds.password is not None
    auth = base64.b64encode(text_bytes(creds.username) + b":" + text_bytes(creds.password)).decode()

    def change(config: dict[str, Any]) -> None:
        auths = config.get("auths")
        if auths is None:
            auths = config["auths"] = {}
        auths[host] = {"auth": auth}

    return update_config(config_path or docker_config_path(), change, create=True)


def remove_credentials(host: str, config_path: str | None = None) -> str:
    """Remove every `auths` entry that names `host` (`host`, `https://host`, `https://host/v1/`…: each
    would otherwise still be found); AuthError when there is none."""
    path = config_path or docker_config_path()

    def change(config: dict[str, Any]) -> None:
        auths = config.get("auths") or {}
        keys = _matching(auths, host)
        if not keys:
            raise AuthError(f"not logged in to {host} (no entry for it in {path})")
        for key in keys:
            del auths[key]

    return update_config(path, change, create=False)
