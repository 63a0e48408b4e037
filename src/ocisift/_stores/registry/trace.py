"""`--debug`: every request and response on the `ocisift.http` logger, with secrets redacted first.

What is redacted is redacted here, before anything reaches a logger, so no
handler a program installs can see a secret: the values of Authorization,
Proxy-Authorization, Cookie and Set-Cookie headers (their scheme is kept:
"Bearer <redacted>"), a URL's user and password, and the values of query
parameters that carry secrets (tokens, passwords, signatures, credentials,
an upload's `_state`). A token service's answer is a body, and bodies are
never traced.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

LOGGER = logging.getLogger("ocisift.http")
REDACTED = "<redacted>"

_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie",
                             "x-registry-auth", "x-amz-security-token"})
_SECRET_QUERY = re.compile(r"token|password|passwd|secret|signature|sig|credential|key|_state|code", re.IGNORECASE)


def enabled() -> bool:
    return LOGGER.isEnabledFor(logging.DEBUG)


def redact_header(name: str, value: str) -> str:
    if name.lower() in ("location", "content-location"):
        return redact_url(value)
    if name.lower() not in _SECRET_HEADERS:
        return value
    scheme, sep, _ = value.partition(" ")
    if sep and scheme.lower() in ("bearer", "basic"):
        return f"{scheme} {REDACTED}"
    return REDACTED


def redact_url(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rsplit('@', 1)[1]}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, REDACTED if _SECRET_QUERY.search(k) else v) for k, v in pairs], safe="<>")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _headers(items: Iterable[tuple[str, str]]) -> str:
    return "".join(f"\n    {name}: {redact_header(name, value)}" for name, value in items)


def request(method: str, url: str, headers: Iterable[tuple[str, str]], via: str | None) -> None:
    route = f" (via proxy {redact_url(via)})" if via else ""
    LOGGER.debug("> %s %s%s%s", method, redact_url(url), route, _headers(headers))


def response(method: str, url: str, status: int, headers: Iterable[tuple[str, str]], seconds: float) -> None:
    LOGGER.debug("< %d %s %s (%.3f s)%s", status, method, redact_url(url), seconds, _headers(headers))


def failure(method: str, url: str, reason: str, seconds: float) -> None:
    LOGGER.debug("< failed %s %s (%.3f s): %s", method, redact_url(url), seconds, reason)
