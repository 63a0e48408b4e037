"""How to reach registries: the options every registry-facing call shares."""

from __future__ import annotations

from dataclasses import dataclass

from .bounds import CHUNK_SIZE, MAX_RETRY_WAIT, RETRIES, TIMEOUT
from .errors import UsageError


@dataclass(frozen=True, slots=True)
class RegistryOptions:
    """`plain_http` None means: plain HTTP for loopback and localhost, HTTPS elsewhere.

    Numbers are checked against their ranges (`bounds.py`) and credentials against what Basic
    authentication can carry (`check_username`), here, where they enter: a UsageError, never a
    request with a value the server cannot read.
    """

    plain_http: bool | None = None
    insecure: bool = False
    ca_file: str | None = None
    certs_dirs: tuple[str, ...] | None = None  # certs.d roots searched for HOST:PORT/; None: the environment's
    username: str | None = None
    password: str | None = None
    timeout: float = 30.0
    retries: int = 4
    max_retry_wait: float = 60.0  # the longest Retry-After honoured; a server asking for more is an error
    chunk_size: int | None = None  # upload blobs larger than this in PATCH chunks

    def __post_init__(self) -> None:
        TIMEOUT.check(self.timeout)
        RETRIES.check(self.retries)
        MAX_RETRY_WAIT.check(self.max_retry_wait)
        if self.chunk_size is not None:
            CHUNK_SIZE.check(self.chunk_size)
        if self.username is not None:
            problem = username_problem(self.username)
            if problem:
                raise UsageError(f"the username {problem}")
            if self.password is None:
                raise UsageError("a username needs its password (--password-stdin)")
            problem = secret_problem(self.password)
            if problem:
                raise UsageError(f"the password {problem}")
        elif self.password is not None:
            raise UsageError("a password needs its username (--username)")


def username_problem(value: object) -> str | None:
    """Why `value` cannot be sent as the user of Basic authentication (RFC 7617), or None.

    A user-id cannot hold ':' (the server splits there) and a control character in one is a mistake
    (a line ending read with it); anything else, non-Latin-1 included, goes as UTF-8 in base64.
    """
    if not isinstance(value, str):
        return f"is {json_kind(value)}, not a string"
    if not value:
        return "is empty"
    if ":" in value:
        return "contains ':', which Basic authentication cannot carry in a username"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return "contains control characters (a line ending?)"
    return secret_problem(value)


def secret_problem(value: object) -> str | None:
    """Why `value` cannot be sent as a password or an identity token, or None: any text that has bytes
    (arguments not in UTF-8 keep theirs, as surrogate escapes); a lone surrogate from JSON has none."""
    if not isinstance(value, str):
        return f"is {json_kind(value)}, not a string"
    try:
        text_bytes(value)
    except UnicodeEncodeError:
        return "contains a lone surrogate (\\ud800-\\udfff), which has no UTF-8 bytes"
    return None


def text_bytes(value: str) -> bytes:
    """The bytes of a credential: UTF-8, and the original bytes of an argument or input that was not UTF-8."""
    return value.encode("utf-8", "surrogateescape")


def json_kind(value: object) -> str:
    """What a value read from JSON is, for a message: "a list", "a number", "null"."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, str):
        return "a string"
    return type(value).__name__
