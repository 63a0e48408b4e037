"""Which proxy a request goes through, from the environment, as curl and Go's net/http read it.

`https_proxy` for HTTPS URLs, `http_proxy` for HTTP ones, `all_proxy` for
either when the specific one is unset; each in lower case first, then upper
case. `no_proxy` (either case) lists what goes direct, separated by commas or
spaces: `*` for everything, a domain (`example.com`, `.example.com` or
`*.example.com`: that name and every name under it), an IP address, a CIDR
block (`10.0.0.0/8`, `fd00::/8`: IP hosts inside it), each optionally with
`:PORT` to apply to that port only. As in Go (Docker, containerd, skopeo),
loopback hosts never go through a proxy.

A proxy URL may carry credentials (`http://user:pass@proxy:3128`): they go to
the proxy, as Proxy-Authorization, and nowhere else.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from ..._core.errors import UsageError


@dataclass(frozen=True, slots=True)
class Proxy:
    url: str  # scheme://host:port, without credentials
    basic_auth: str | None  # "user:password", decoded


def _env(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name.lower())
    if value is None:
        value = env.get(name.upper())
    return value.strip() if value and value.strip() else None


def parse_proxy(value: str) -> Proxy:
    """`host:port`, `http://host:port`, `http://user:pass@host:port` (curl takes a bare host:port as HTTP)."""
    url = value if "://" in value else f"http://{value}"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UsageError(f"the proxy {value!r} is not a URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"the proxy {value!r} must be an http:// or https:// URL")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    port = port or (443 if parts.scheme == "https" else 80)
    auth = None
    if parts.username is not None:
        auth = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
    return Proxy(f"{parts.scheme}://{host}:{port}", auth)


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bypassed(no_proxy: str, host: str, port: int) -> bool:
    """Does `no_proxy` send this host and port direct?"""
    host = host.lower().strip("[]").rstrip(".")
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for raw in no_proxy.replace(" ", ",").split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        entry_port: int | None = None
        if entry.startswith("["):  # [v6]:port or [v6]
            close = entry.find("]")
            rest = entry[close + 1 :]
            entry, entry_port = entry[1:close], int(rest[1:]) if rest.startswith(":") and _is_port(rest[1:]) else None
        elif entry.count(":") == 1:
            name, _, maybe_port = entry.partition(":")
            if _is_port(maybe_port):
                entry, entry_port = name, int(maybe_port)
        if entry_port is not None and entry_port != port:
            continue
        if "/" in entry:
            try:
                network = ipaddress.ip_network(entry, strict=False)
            except ValueError:
                continue
            if address is not None and address.version == network.version and address in network:
                return True
            continue
        try:
            entry_address = ipaddress.ip_address(entry)
        except ValueError:
            entry_address = None
        if entry_address is not None:
            if entry_address == address:
                return True
            continue
        domain = entry.removeprefix("*").lstrip(".").rstrip(".")
        if domain and (host == domain or host.endswith("." + domain)):
            return True
    return False


def proxy_for(scheme: str, host: str, port: int, env: Mapping[str, str] | None = None) -> Proxy | None:
    """The proxy for a URL of this scheme, host and port, or None to connect directly."""
    env = os.environ if env is None else env
    if _is_loopback(host.lower().strip("[]")):
        return None
    value = _env(env, f"{scheme}_proxy") or _env(env, "all_proxy")
    if value is None:
        return None
    if bypassed(_env(env, "no_proxy") or "", host, port):
        return None
    return parse_proxy(value)


def _is_port(text: str) -> bool:
    """ASCII digits of a port number (`str.isdigit` also takes superscripts, which `int` refuses)."""
    return text.isascii() and text.isdigit() and len(text) <= 5
