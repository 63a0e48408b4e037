"""TLS trust as Docker, containerd and containers/image users already have it on disk.

For each server (host and port) one SSL context, built once per process:

- the system's trust (OpenSSL's default paths, which `SSL_CERT_FILE` and
  `SSL_CERT_DIR` override), or only `--ca-file` when one is given (as curl's
  `--cacert` and ORAS's `--ca-file` do);
- plus every `*.crt` in the first `certs.d/HOST:PORT/` (else `certs.d/HOST/`)
  directory found on the search path, as Docker and containers/image add
  them to the system's pool;
- plus the first `NAME.cert` with its `NAME.key` in that directory, the client
  certificate for mutual TLS;
- or, with `--insecure`, no verification at all.

The search path is `--certs-dir` (repeatable), else `OCISIFT_CERTS_DIRS`
(directories separated by `:`), else `~/.config/containers/certs.d`,
`/etc/containers/certs.d`, `/etc/docker/certs.d`, the order containers/image
looks in.

A certificate the server shows that does not verify is named for what is
wrong with it (unknown authority, another name, expired) with the ways to fix
it, since "certificate verify failed" alone tells a user nothing to do.
"""

from __future__ import annotations

import os
import ssl
import threading
from dataclasses import dataclass

from ..._core.errors import OcisiftError
from ..._core.options import RegistryOptions

CERTS_DIRS_ENV = "OCISIFT_CERTS_DIRS"
DEFAULT_CERTS_DIRS = ("~/.config/containers/certs.d", "/etc/containers/certs.d", "/etc/docker/certs.d")

# OpenSSL's X509_V_ERR_* codes that SSLCertVerificationError carries.
_EXPIRED = 10
_NOT_YET_VALID = 9
_SELF_SIGNED = 18
_SELF_SIGNED_IN_CHAIN = 19
_UNKNOWN_ISSUER = 20
_UNKNOWN_ISSUER_LEAF = 21
_HOSTNAME_MISMATCH = 62
_IP_ADDRESS_MISMATCH = 64


def certs_search_path(options: RegistryOptions) -> tuple[str, ...]:
    if options.certs_dirs is not None:
        return options.certs_dirs
    from_env = os.environ.get(CERTS_DIRS_ENV)
    if from_env is not None:
        return tuple(p for p in from_env.split(os.pathsep) if p)
    return tuple(os.path.expanduser(p) for p in DEFAULT_CERTS_DIRS)


def host_directory(search: tuple[str, ...], host: str, port: int) -> str | None:
    """The first `certs.d/HOST:PORT` (else `certs.d/HOST`, for the default port only) that exists."""
    names = [f"{host}:{port}"] + ([host] if port == 443 else [])
    if ":" in host:  # an IPv6 literal is written in brackets in a directory name, as in a URL
        names = [f"[{host}]:{port}"] + ([f"[{host}]", host] if port == 443 else [])
    for root in search:
        for name in names:
            path = os.path.join(root, name)
            if os.path.isdir(path):
                return path
    return None


@dataclass(frozen=True, slots=True)
class HostTrust:
    """What was found for one server: where it came from, for messages."""

    directory: str | None
    authorities: tuple[str, ...]
    client_cert: tuple[str, str] | None


def host_trust(options: RegistryOptions, host: str, port: int) -> HostTrust:
    directory = host_directory(certs_search_path(options), host, port)
    if directory is None:
        return HostTrust(None, (), None)
    names = sorted(os.listdir(directory))
    authorities = tuple(os.path.join(directory, n) for n in names if n.endswith(".crt"))
    client = None
    for name in names:
        if name.endswith(".cert"):
            key = os.path.join(directory, name[: -len(".cert")] + ".key")
            if not os.path.isfile(key):
                raise OcisiftError(f"{os.path.join(directory, name)} is a client certificate without its key "
                                   f"({key} is missing)")
            client = (os.path.join(directory, name), key)
            break
    return HostTrust(directory, authorities, client)


def build_context(options: RegistryOptions, trust: HostTrust) -> ssl.SSLContext:
    if options.insecure:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context = ssl.create_default_context(cafile=options.ca_file)  # no ca_file: the system's trust
    try:
        for authority in trust.authorities:
            context.load_verify_locations(cafile=authority)
        if trust.client_cert is not None:
            context.load_cert_chain(*trust.client_cert)
    except (ssl.SSLError, OSError) as exc:
        raise OcisiftError(f"cannot use the certificates in {trust.directory}: {exc}") from None
    return context


class TrustCache:
    """One context per server for the process's life: building one reads files and parses certificates."""

    def __init__(self, options: RegistryOptions) -> None:
        self.options = options
        self._contexts: dict[tuple[str, int], tuple[ssl.SSLContext, HostTrust]] = {}
        self._lock = threading.Lock()

    def context(self, host: str, port: int) -> tuple[ssl.SSLContext, HostTrust]:
        key = (host.lower(), port)
        with self._lock:
            found = self._contexts.get(key)
            if found is None:
                trust = host_trust(self.options, *key)
                found = self._contexts[key] = (build_context(self.options, trust), trust)
            return found


def verification_failure(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification error inside what urllib3 raised, if that is what it was."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return current
        nested = getattr(current, "reason", None)
        if not isinstance(nested, BaseException):
            nested = next((a for a in current.args if isinstance(a, BaseException)), None)
        current = nested if nested is not None else (current.__cause__ or current.__context__)
    return None


def explain_verification(failure: ssl.SSLCertVerificationError, host: str, port: int, options: RegistryOptions,
                         trust: HostTrust) -> str:
    """What is wrong with the server's certificate, and the ways to fix it."""
    code = failure.verify_code
    where = f"{host}:{port}"
    if code in (_SELF_SIGNED, _SELF_SIGNED_IN_CHAIN, _UNKNOWN_ISSUER, _UNKNOWN_ISSUER_LEAF):
        trusted = (f"only --ca-file {options.ca_file}" if options.ca_file else "the system's certificate authorities")
        if trust.directory:
            trusted += f" and those in {trust.directory}"
        problem = f"its certificate is signed by an authority ocisift does not trust ({trusted})"
        fixes = (f"put the authority's certificate in {certs_search_path(options)[0]}/{where}/ca.crt, "
                 "pass --ca-file FILE, or set SSL_CERT_FILE; --insecure skips verification")
    elif code in (_HOSTNAME_MISMATCH, _IP_ADDRESS_MISMATCH):
        problem = f"its certificate is for another name ({failure.verify_message})"
        fixes = (f"use the name the certificate was issued for, or have it reissued for {host}; "
                 "--insecure skips verification")
    elif code in (_EXPIRED, _NOT_YET_VALID):
        problem = ("its certificate has expired" if code == _EXPIRED else "its certificate is not valid yet")
        fixes = "have the certificate renewed (or check this machine's clock); --insecure skips verification"
    else:
        problem = f"its certificate does not verify ({failure.verify_message})"
        fixes = "see --ca-file, certs.d directories and --insecure in ocisift's README (Networks)"
    return f"TLS to {where} failed: {problem}. To fix: {fixes}"
