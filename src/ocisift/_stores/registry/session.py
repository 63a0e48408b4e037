"""One session per registry origin: one connection pool, one retry policy, one token cache.

Every repository of a registry that a process talks to shares the session of
that registry's origin (scheme, host, port). The session

- attaches Authorization only to requests whose URL has its own origin, so a
  redirect, a pagination `Link` or an upload `Location` that names another
  host never receives a credential;
- follows redirects itself, bounded, re-deciding that at every hop;
- retries idempotent requests on connection errors, 429 and 5xx with backoff
  and jitter, honouring `Retry-After` up to a cap;
- caches tokens per scope for the whole process, renews them shortly before
  `expires_in` runs out, and renews once when a request with a cached token
  is answered 401.
"""

from __future__ import annotations

import email.utils
import http.client
import ipaddress
import math
import random
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import urllib3

from ..._core import cancel
from ..._core.errors import AuthError, OcisiftError, TransferTimeout, UnsafeContentError
from ..._core.meter import count_request
from ..._core.options import RegistryOptions
from .auth import MAX_TOKEN_BODY, Challenge, Token, parse_challenge, parse_token_response
from .credentials import Credentials, lookup_credentials
from .tls import certs_search_path, host_directory
from .transport import ProxyAuthError, Transport
from .watchdog import WATCHDOG, headers_timed_out, socket_of

Scope = tuple[str, ...]
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 10
UNREACHABLE_MEMORY_S = 30.0  # how long a registry no connection reached is taken as down
MAX_ERROR_BODY = 64 * 1024
DEFAULT_TIMEOUT = 30.0
_IDEMPOTENT = frozenset({"GET", "HEAD"})
MAX_BACKOFF = 30.0
_NOT_CONNECTED = (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError)
_BROKEN_CONNECTION = (
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.ReadTimeoutError,
    urllib3.exceptions.SSLError,
    urllib3.exceptions.ProxyError,
)


def is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host[1 : host.index("]")]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class Origin:
    """scheme, host and port: what a credential is bound to."""

    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, url: str) -> Origin:
        """The origin of a URL; a URL a server sent that does not parse is an error of that server's."""
        try:
            parts = urlsplit(url)
            scheme = parts.scheme.lower()
            port = parts.port
            host = (parts.hostname or "").lower()
        except ValueError:
            raise OcisiftError(f"the registry sent a URL that does not parse: {url[:200]!r}") from None
        return cls(scheme, host, port or (443 if scheme == "https" else 80))

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def registry_origin(host: str, options: RegistryOptions) -> tuple[Origin, str]:
    """The origin and base URL (`scheme://host[:port]`) of a registry host as users write it.

    HTTPS, but plain HTTP for loopback hosts unless TLS was set up for them (`--ca-file`, or a certs.d
    directory for that host and port): whoever put a CA there means the registry to be spoken to in TLS.
    `--plain-http`/`--https` decide outright.
    """
    host = "registry-1.docker.io" if host == "docker.io" else host
    plain = options.plain_http
    if plain is None:
        plain = is_loopback(host) and options.ca_file is None and not _has_certs_dir(host, options)
    base = f"{'http' if plain else 'https'}://{host}"
    return Origin.of(base), base


def _has_certs_dir(host: str, options: RegistryOptions) -> bool:
    origin = Origin.of(f"https://{host}")
    return host_directory(certs_search_path(options), origin.host, origin.port) is not None


def repository_scope(repository: str, actions: str, *also_pull: str) -> Scope:
    """`repository:NAME:ACTIONS`, plus pull on other repositories (a mount reads its source)."""
    return (f"repository:{repository}:{actions}", *(f"repository:{r}:pull" for r in also_pull))


def join_url(base: str, location: str) -> str:
    """A Location or Link target made absolute; one that does not parse is the server's error."""
    try:
        joined = urljoin(base, location)
        scheme = urlsplit(joined).scheme
    except ValueError:
        joined, scheme = "", ""
    if scheme not in ("http", "https"):
        raise OcisiftError(f"the registry sent a location that is not an http(s) URL: {location[:200]!r}")
    Origin.of(joined)  # fails here, not later, if its host or port is malformed
    return joined


_DECIMAL = re.compile(r"[0-9]{1,19}")  # ASCII digits only ("²".isdigit() is True), and within an int64


def header_number(value: str | None) -> int | None:
    """A byte count from a header a server wrote (Content-Length, a Range start), or None if it is not one.

    Bounded before conversion: Python refuses to convert integers of over 4,300 digits with a
    ValueError, and `str.isdigit` accepts superscripts that `int` rejects.
    """
    text = (value or "").strip()
    return int(text) if _DECIMAL.fullmatch(text) else None


class BodyTooLarge(OcisiftError):
    """A body longer than what ocisift holds in memory for it (a manifest turns this into exit 5)."""


def read_capped(resp: urllib3.BaseHTTPResponse, limit: int, what: str, timeout: float = DEFAULT_TIMEOUT) -> bytes:
    """A response body read into memory: refused when longer than `limit`, or not whole within `timeout`."""
    length = header_number(resp.headers.get("Content-Length"))
    if length is not None and length > limit:
        discard(resp)
        raise BodyTooLarge(f"{what} is {length} bytes, over the {limit}-byte limit")
    watch = WATCHDOG.watch(socket_of(resp), whole=timeout)
    try:
        data = resp.read(limit + 1)
    except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as exc:
        resp.close()
        resp.release_conn()
        cancel.check()
        if watch.expired:
            raise TransferTimeout(f"{what} did not arrive whole within {timeout:g} s (--timeout)") from None
        raise OcisiftError(f"the connection broke while reading {what}: {exc}") from None
    finally:
        WATCHDOG.done(watch)  # a read that returned has the whole body, however late the watchdog looked
    if len(data) > limit:
        discard(resp)
        raise BodyTooLarge(f"{what} is over the {limit}-byte limit")
    resp.release_conn()
    return data


def discard(resp: urllib3.BaseHTTPResponse) -> None:
    """Done with a response whose body is not wanted: drain a short body, drop the connection of a long one.

    Draining keeps the connection for the next request; a body of unknown or
    large length could take any time to drain, so its connection is closed.
    """
    remaining = getattr(getattr(resp, "_fp", None), "length", None)  # http.client knows what is left (0 for HEAD)
    try:
        if isinstance(remaining, int) and remaining <= MAX_ERROR_BODY:
            resp.drain_conn()
        else:
            resp.close()
    except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError):
        resp.close()
    resp.release_conn()


def error_text(resp: urllib3.BaseHTTPResponse) -> str:
    """What a registry said when it refused, shortened, for a message."""
    try:
        data = read_capped(resp, MAX_ERROR_BODY, "error body", timeout=5.0)
    except OcisiftError:
        return ""
    return data[:500].decode(errors="replace").strip()


def retry_after(resp: urllib3.BaseHTTPResponse) -> float | None:
    value = (resp.headers.get("Retry-After") or "").strip()
    if not value:
        return None
    seconds = header_number(value)
    if seconds is not None:
        return float(seconds)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


class Session:
    """What one process says to one registry origin."""

    def __init__(self, origin: Origin, host: str, options: RegistryOptions,
                 credentials: Credentials | None = None) -> None:
        self.origin = origin
        self.host = host
        self.options = options
        self.transport = Transport(options)
        self._credentials = credentials
        self._credentials_known = credentials is not None
        self._basic: str | None = None
        self._bearer: Challenge | None = None
        self._tokens: dict[Scope, Token] = {}
        self._lock = threading.Lock()
        self._scope_locks: dict[Scope, threading.Lock] = {}
        self.token_requests = 0
        # Learnt from the first answer, for the whole process: a registry with the referrers API never
        # answers 404 to it (distribution-spec 1.1), so one 404 means every subject's list is the fallback tag.
        self.referrers_api: bool | None = None
        self.referrers_probe = threading.Lock()  # held while it is learnt: images in flight ask it once
        # A registry that could not be connected to after every retry is not asked again for a while:
        # a mirror of 1,000 images from a dead registry must not pay the retries 1,000 times.
        self._unreachable: tuple[float, str] | None = None
        self.withheld_from: str | None = None  # a realm the password was not sent to, for the error message

    # -- credentials ------------------------------------------------------------------

    def credentials(self) -> Credentials | None:
        if not self._credentials_known:
            self._credentials = lookup_credentials(self.host, timeout=self.options.timeout)
            self._credentials_known = True
        return self._credentials

    def _scope_lock(self, scope: Scope) -> threading.Lock:
        with self._lock:
            return self._scope_locks.setdefault(scope, threading.Lock())

    def authorization(self, scope: Scope) -> str | None:
        """The header for this scope: Basic if the registry wants it, else a fresh cached token (renewed if due)."""
        if self._basic is not None:
            return self._basic
        token = self._tokens.get(scope)
        if token is not None and token.fresh:
            return token.header
        if token is not None and self._bearer is not None:
            return self._renew(self._bearer, scope, stale=token.header)
        return None

    def _renew(self, challenge: Challenge, scope: Scope, stale: str | None) -> str:
        """A new credential for `scope`; threads that ask at once wait for the first one's answer."""
        with self._scope_lock(scope):
            current = self._basic or (token.header if (token := self._tokens.get(scope)) and token.fresh else None)
            if current is not None and current != stale:
                return current
            creds = self.credentials()
            if challenge.scheme == "basic":
                if creds is None or creds.basic is None:
                    raise AuthError(f"{self.host} wants a username and password; none found "
                                    "(use ocisift login, docker login or DOCKER_CONFIG)")
                if stale == creds.basic:
                    raise AuthError(f"{self.host} refused the username and password")
                self._basic = creds.basic
                return creds.basic
            if challenge.scheme != "bearer" or not challenge.realm:
                raise AuthError(f"{self.host} asked for unsupported authentication {challenge.scheme!r}")
            self._bearer = challenge
            if creds is not None and creds.registry_token:  # Docker's registrytoken: the Bearer token itself
                header = f"Bearer {creds.registry_token}"
                if stale == header:
                    raise AuthError(f"{self.host} refused the registry token (registrytoken in config.json)")
                self._tokens[scope] = Token(header, math.inf)
                return header
            token = self._fetch_token(challenge, scope, creds)
            self._tokens[scope] = token
            return token.header

    def _fetch_token(self, challenge: Challenge, scope: Scope, creds: Credentials | None) -> Token:
        realm = challenge.realm or ""
        service = challenge.params.get("service")
        received = time.monotonic()
        self.token_requests += 1
        bound = Origin.of(realm)  # the password goes to the realm's origin only, never where it redirects
        if creds is not None and not (bound.scheme == "https" or bound == self.origin):
            # A secret crosses to another origin only encrypted: a plain-HTTP realm elsewhere gets no password
            # (an anonymous request, which a public repository still answers).
            self.withheld_from = realm
            creds = None
        try:
            if creds is not None and creds.identity_token:
                form = {"grant_type": "refresh_token", "refresh_token": creds.identity_token,
                        "scope": " ".join(scope), "client_id": "ocisift", **({"service": service} if service else {})}
                resp, _ = self._send("POST", realm, {"Content-Type": "application/x-www-form-urlencoded"},
                                     urlencode(form).encode(), None, bound)
            else:
                fields: dict[str, Any] = {"scope": list(scope), **({"service": service} if service else {})}
                sep = "&" if "?" in realm else "?"
                basic = creds.basic if creds is not None else None
                resp, _ = self._send("GET", realm + sep + urlencode(fields, doseq=True), {}, None, basic, bound)
        except OcisiftError as exc:
            raise AuthError(f"token service {realm} failed: {exc.message}") from None
        if resp.status != 200:
            discard(resp)
            why = (" (its address is plain HTTP and not the registry's own, so ocisift sent it no password; "
                   "a token service needs HTTPS to receive one)") if self.withheld_from == realm else ""
            raise AuthError(f"token service {realm} refused ({resp.status}){why}")
        try:
            body = read_capped(resp, MAX_TOKEN_BODY, f"the answer of token service {realm}", self.options.timeout)
        except OcisiftError as exc:
            raise AuthError(exc.message) from None
        return parse_token_response(body, realm, received)

    # -- requests ---------------------------------------------------------------------

    def request(self, method: str, url: str, *, scope: Scope, headers: Mapping[str, str] | None = None,
                body: Any = None) -> urllib3.BaseHTTPResponse:
        """Send, following redirects, retrying, authenticating; 401 and 403 end as AuthError.

        The body is never preloaded: callers stream it, read it with `read_capped`, or `discard` it.
        """
        sent = self.authorization(scope) if Origin.of(url) == self.origin else None
        resp, final = self._send(method, url, headers or {}, body, sent, self.origin)
        if resp.status == 401 and Origin.of(final) == self.origin:
            challenge = parse_challenge(resp.headers.get("WWW-Authenticate", ""))
            discard(resp)
            if challenge is None:
                raise AuthError(f"{self.host} refused access ({resp.status}) without saying how to authenticate")
            if body is not None and not isinstance(body, bytes):
                raise AuthError(f"{self.host} asked to authenticate again in the middle of an upload")
            sent = self._renew(challenge, scope, stale=sent)
            resp, final = self._send(method, url, headers or {}, body, sent, self.origin)
        if resp.status in (401, 403):
            discard(resp)
            hint = "" if self.credentials() else " (no credentials found: use ocisift login, docker login or DOCKER_CONFIG)"
            if self.withheld_from is not None:
                hint = (f" (the password was not sent to its token service {self.withheld_from}: plain HTTP on "
                        "another origin receives none)")
            what = " ".join(s.split(":")[1] for s in scope if s.count(":") >= 2) or self.host
            raise AuthError(f"{self.host} refused access to {what} ({resp.status}){hint}")
        return resp

    def _send(self, method: str, url: str, headers: Mapping[str, str], body: Any, authorization: str | None,
              bound_to: Origin) -> tuple[urllib3.BaseHTTPResponse, str]:
        """One request and its redirects; `authorization` only ever goes to URLs of the `bound_to` origin."""
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            sent = dict(headers)
            if authorization is not None and Origin.of(current) == bound_to:
                sent["Authorization"] = authorization
            resp = self._send_with_retries(method, current, sent, body)
            if resp.status == 407:  # a proxy on the way (plain HTTP: no CONNECT) wants credentials
                discard(resp)
                raise ProxyAuthError(f"the proxy for {current.split('?')[0]} wants credentials (407): put them in "
                                     "the proxy URL, http://USER:PASSWORD@HOST:PORT")
            location = resp.headers.get("Location")
            if resp.status not in REDIRECT_STATUSES or method not in _IDEMPOTENT or not location:
                return resp, current
            discard(resp)
            current = join_url(current, location)
        raise OcisiftError(f"{self.host} redirected more than {MAX_REDIRECTS} times for {url}")

    def _send_with_retries(self, method: str, url: str, headers: dict[str, str],
                           body: Any) -> urllib3.BaseHTTPResponse:
        attempts = max(self.options.retries, 0) + 1
        replayable = method in _IDEMPOTENT and (body is None or isinstance(body, bytes))
        down = self._unreachable
        if down is not None and time.monotonic() < down[0]:
            raise OcisiftError(f"{down[1]} (found moments ago; it is asked again {UNREACHABLE_MEMORY_S:g} s later)")
        for attempt in range(attempts):
            last = attempt == attempts - 1
            cancel.check()
            count_request(urlsplit(url).netloc)  # for a sync's report: the requests each tag cost
            try:
                resp = self.transport.request(method, url, headers, body)
            except TransferTimeout:  # the watchdog ended a wait for headers that never came whole
                cancel.check()  # or the transfers were cancelled
                raise TransferTimeout(f"{self.host} did not answer {url} within {self.options.timeout:g} s "
                                      "(--timeout)") from None
            except _NOT_CONNECTED as exc:  # nothing was sent: any method may try again
                self._timed_out(url)
                if last:
                    message = f"registry {self.host} is unreachable: {_reason(exc)}"
                    self._unreachable = (time.monotonic() + UNREACHABLE_MEMORY_S, message)
                    raise OcisiftError(message) from None
                cancel.sleep(self._backoff(attempt))
                continue
            except _BROKEN_CONNECTION as exc:
                self._timed_out(url)
                if not replayable or last:
                    raise OcisiftError(f"registry {self.host} is unreachable: {_reason(exc)}") from None
                cancel.sleep(self._backoff(attempt))
                continue
            except urllib3.exceptions.HTTPError as exc:
                raise OcisiftError(f"registry {self.host} failed: {exc}") from None
            if resp.status in RETRY_STATUSES and replayable and not last:
                wait = retry_after(resp)
                if wait is not None and wait > self.options.max_retry_wait:
                    discard(resp)
                    raise OcisiftError(f"{self.host} asked to wait {wait:.0f} s before retrying (Retry-After), "
                                       f"more than the {self.options.max_retry_wait:g} s ocisift waits")
                discard(resp)
                cancel.sleep(wait if wait is not None else self._backoff(attempt))
                continue
            self._unreachable = None
            return resp
        raise AssertionError("unreachable: the last attempt always returns or raises")

    def fetch_external(self, url: str, headers: Mapping[str, str] | None = None) -> urllib3.BaseHTTPResponse:
        """GET a URL a descriptor names (a non-distributable blob's), never with a credential, following
        redirects only to HTTPS: the URL came with the image, and whoever wrote it chose the server."""
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            if urlsplit(current).scheme.lower() != "https":
                raise UnsafeContentError(f"refusing {current.split('?')[0]}: non-distributable blobs are fetched "
                                         "over HTTPS only")
            resp = self._send_with_retries("GET", current, dict(headers or {}), None)
            location = resp.headers.get("Location")
            if resp.status not in REDIRECT_STATUSES or not location:
                return resp
            discard(resp)
            current = join_url(current, location)
        raise OcisiftError(f"{self.host} redirected more than {MAX_REDIRECTS} times for {url}")

    def _timed_out(self, url: str) -> None:
        """A request whose headers the watchdog gave up on is a timeout, not a broken connection to retry."""
        cancel.check()
        if headers_timed_out():
            raise TransferTimeout(f"{self.host} did not answer {url} within {self.options.timeout:g} s (--timeout)")

    @staticmethod
    def _backoff(attempt: int) -> float:
        """0.25 s, 0.5 s, 1 s, … with jitter, never more than MAX_BACKOFF."""
        return min(0.25 * float(2 ** min(attempt, 16)), MAX_BACKOFF) + random.uniform(0.0, 0.25)

    def close(self) -> None:
        self.transport.close()


def _reason(exc: BaseException) -> str:
    return str(getattr(exc, "reason", None) or exc)


_SESSIONS: dict[tuple[Origin, str, RegistryOptions], Session] = {}
_SESSIONS_LOCK = threading.Lock()


def session_for(host: str, options: RegistryOptions) -> tuple[Session, str]:
    """The process's session for a registry host, and the base URL to build request URLs from."""
    origin, base = registry_origin(host, options)
    key = (origin, host, options)
    with _SESSIONS_LOCK:
        session = _SESSIONS.get(key)
        if session is None:
            explicit = Credentials(options.username, options.password) if options.username is not None else None
            session = _SESSIONS[key] = Session(origin, host, options, explicit)
    return session, base


def forget_sessions(host: str | None = None) -> None:
    """Close the cached sessions of a registry host (login and logout change its credentials), or all of them."""
    with _SESSIONS_LOCK:
        for key in [k for k in _SESSIONS if host is None or k[1] == host]:
            _SESSIONS.pop(key).close()


def check_login(host: str, credentials: Credentials, options: RegistryOptions) -> None:
    """GET /v2/ through the challenge with these credentials; AuthError unless the registry accepts them.

    A fresh session, not the cached one: credentials that fail must not be remembered.
    """
    origin, base = registry_origin(host, options)
    session = Session(origin, host, options, credentials)
    root = base + "/v2/"
    try:
        resp, _ = session._send("GET", root, {}, None, None, origin)
        if resp.status == 401:
            challenge = parse_challenge(resp.headers.get("WWW-Authenticate", ""))
            discard(resp)
            if challenge is None:
                raise AuthError(f"{host} refused the login without saying how to authenticate")
            header = session._renew(challenge, (), stale=None)
            resp, _ = session._send("GET", root, {}, None, header, origin)
        status = resp.status
        discard(resp)
        if status in (401, 403):
            raise AuthError(f"{host} refused these credentials ({status})")
        if status != 200:
            raise OcisiftError(f"{host} answered {status} to /v2/")
    finally:
        session.close()
