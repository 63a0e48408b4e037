"""The registry auth handshake: parsing challenges, and tokens with their lifetime.

A 401 answer carries `WWW-Authenticate: Bearer realm=…,service=…,scope=…` or
`Basic realm=…`. Bearer tokens come from the realm (Docker's token spec, or the
OAuth2 refresh-token grant for identity tokens) with an `expires_in` that
defaults to 60 seconds; a token is renewed a little before that.

A token is sent as it came, in the Authorization header, so it must be what a
header can carry: visible ASCII (RFC 6750's b64token is a subset; Go's
net/http refuses the rest), at most MAX_TOKEN_CHARS. Anything else a token
service answers (a list, a number, CR/LF, non-Latin-1, a megabyte) is exit 6
saying so, and nothing is sent with it.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from typing import Any

from ..._core import jsontext
from ..._core.errors import AuthError
from ..._core.options import json_kind

_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')
DEFAULT_TOKEN_SECONDS = 60.0
MAX_TOKEN_BODY = 1 << 20
MAX_TOKEN_CHARS = 64 * 1024  # far past any real token (JWTs of a few KiB), short of what servers take in a header
_HEADER_SAFE = re.compile(r"[\x21-\x7e]+")


@dataclass(frozen=True, slots=True)
class Challenge:
    scheme: str
    params: dict[str, str]

    @property
    def realm(self) -> str | None:
        return self.params.get("realm")


def parse_challenge(header: str) -> Challenge | None:
    """`Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`."""
    header = header.strip()
    if not header:
        return None
    scheme, _, rest = header.partition(" ")
    params = {m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3)) for m in _PARAM.finditer(rest)}
    return Challenge(scheme.lower(), params)


@dataclass(frozen=True, slots=True)
class Token:
    """An Authorization header value and the monotonic time after which it is renewed before use."""

    header: str
    renew_at: float

    @property
    def fresh(self) -> bool:
        return time.monotonic() < self.renew_at


def renewal_time(received: float, expires_in: float) -> float:
    """Renew before expiry: a tenth of the lifetime early, at most ten seconds early."""
    return received + max(expires_in - min(expires_in * 0.1, 10.0), 0.0)


def token_problem(token: object) -> str | None:
    """Why `token` cannot go into an Authorization header as it is, or None."""
    if not isinstance(token, str):
        return f"is {json_kind(token)}, not a string"
    if len(token) > MAX_TOKEN_CHARS:
        return f"is {len(token):,} characters long, over the {MAX_TOKEN_CHARS // 1024} KiB ocisift sends in a header"
    if not _HEADER_SAFE.fullmatch(token):
        return "holds characters a header cannot carry (only visible ASCII: no spaces, CR/LF or non-ASCII)"
    return None


def parse_token_response(body: bytes, realm: str, received: float) -> Token:
    """`{"token": …}` or `{"access_token": …}`, with an optional `expires_in` (seconds)."""
    try:
        obj: Any = jsontext.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise AuthError(f"token service {realm} answered something that is not JSON") from None
    if not isinstance(obj, dict):
        raise AuthError(f"token service {realm} answered JSON that is not an object")
    token = obj.get("token") or obj.get("access_token")
    if token is None or token == "":
        raise AuthError(f"token service {realm} returned no token (neither \"token\" nor \"access_token\")")
    problem = token_problem(token)
    if problem:
        raise AuthError(f"token service {realm} returned a token that {problem}; it is not sent anywhere")
    expires_in = obj.get("expires_in", DEFAULT_TOKEN_SECONDS)
    if (isinstance(expires_in, bool) or not isinstance(expires_in, (int, float)) or not math.isfinite(expires_in)
            or expires_in <= 0):
        expires_in = DEFAULT_TOKEN_SECONDS
    return Token(f"Bearer {token}", renewal_time(received, float(expires_in)))
