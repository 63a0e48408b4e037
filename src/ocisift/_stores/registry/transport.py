"""Bytes to and from one URL: the right proxy, the right TLS trust for that server, and a trace.

A session talks to its registry, to the registry's token service and to
wherever blobs are redirected (object storage); each of those servers has its
own trust (its certs.d directory) and each URL its own proxy decision. So the
transport keeps one urllib3 manager per (proxy, server trust) pair and picks
per request; the managers' pools keep connections alive across requests.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import urllib3

from ..._core.errors import AuthError, OcisiftError
from ..._core.options import RegistryOptions
from . import trace
from .proxies import Proxy, proxy_for
from .tls import TrustCache, explain_verification, verification_failure
from .watchdog import watched_pools


class TLSVerificationError(OcisiftError):
    """The server's certificate does not verify: retrying cannot help, the message says what can."""


class ProxyAuthError(AuthError):
    """The proxy wants credentials (407)."""


class Transport:
    def __init__(self, options: RegistryOptions) -> None:
        self.options = options
        self.trust = TrustCache(options)
        self._managers: dict[tuple[Proxy | None, int], urllib3.PoolManager] = {}
        self._lock = threading.Lock()
        if options.insecure:  # asked for: urllib3's warning on every request would only be noise
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

    def _manager(self, proxy: Proxy | None, context: ssl.SSLContext | None) -> urllib3.PoolManager:
        key = (proxy, id(context))
        with self._lock:
            manager = self._managers.get(key)
            if manager is not None:
                return manager
            kw: dict[str, Any] = {
                "num_pools": 8, "maxsize": 16, "retries": False,
                "timeout": urllib3.Timeout(connect=min(self.options.timeout, 10.0), read=self.options.timeout),
            }
            if context is not None:
                kw["ssl_context"] = context
                if self.options.insecure:
                    kw["cert_reqs"], kw["assert_hostname"] = "CERT_NONE", False
            if proxy is None:
                manager = urllib3.PoolManager(**kw)
            else:
                headers = urllib3.make_headers(proxy_basic_auth=proxy.basic_auth) if proxy.basic_auth else None
                manager = urllib3.ProxyManager(proxy.url, proxy_headers=headers, **kw)
            # Its connections bound the wait for a response's headers as a whole, not per byte.
            manager.pool_classes_by_scheme = watched_pools(self.options.timeout)
            self._managers[key] = manager
            return manager

    def request(self, method: str, url: str, headers: Mapping[str, str], body: Any) -> urllib3.BaseHTTPResponse:
        """One request, no redirects followed and no retries (the session decides both)."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        host = parts.hostname or ""
        port = parts.port or (443 if scheme == "https" else 80)
        proxy = proxy_for(scheme, host, port)
        context, found = self.trust.context(host, port) if scheme == "https" else (None, None)
        manager = self._manager(proxy, context)
        tracing = trace.enabled()
        if tracing:
            trace.request(method, url, headers.items(), proxy.url if proxy else None)
        started = time.monotonic()
        try:
            resp = manager.request(method, url, headers=dict(headers), body=body, preload_content=False,
                                   redirect=False, retries=False)
        except urllib3.exceptions.HTTPError as exc:
            if tracing:
                trace.failure(method, url, str(getattr(exc, "reason", None) or exc), time.monotonic() - started)
            failure = verification_failure(exc)
            if failure is not None and found is not None:
                raise TLSVerificationError(explain_verification(failure, host, port, self.options, found)) from None
            reason = str(getattr(exc, "reason", None) or exc)
            if isinstance(exc, urllib3.exceptions.ProxyError) and proxy is not None and "Tunnel connection failed" in reason:
                # The proxy answered the CONNECT and refused it: asking again gets the same answer.
                tunnel = reason[reason.index("Tunnel connection failed") :].split("'")[0].rstrip(")\"")
                if " 407" in tunnel:
                    raise ProxyAuthError(f"the proxy {proxy.url} wants credentials for {host}:{port} (407): "
                                         "put them in the proxy URL, http://USER:PASSWORD@HOST:PORT") from None
                raise OcisiftError(f"the proxy {proxy.url} refused to connect to {host}:{port}: {tunnel}") from None
            raise
        if tracing:
            trace.response(method, url, resp.status, resp.headers.items(), time.monotonic() - started)
        return resp

    def close(self) -> None:
        with self._lock:
            for manager in self._managers.values():
                manager.clear()
            self._managers.clear()
