"""Non-distributable blobs, fetched from the URLs their descriptors give, when a copy is asked to carry them.

Docker's foreign layers and OCI's non-distributable layers are published
with `urls` and are not meant to be pushed to a registry; by default a copy
keeps their descriptors and leaves the blobs where those URLs say. Asked to
include them (`--include-nondistributable`), a copy takes the blob from the
source store when it has it, else from here: each URL in turn, over HTTPS
only (redirects too), with no credential (the image's author chose the
server, not the user), through the same proxies, trust, retries, resumes and
timeouts as a registry's blobs, and verified against the descriptor.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from urllib.parse import urlsplit

import urllib3

from ..._core.digest import VerifyingReader
from ..._core.errors import NotFoundError, OcisiftError, UnsafeContentError
from ..._core.models import Descriptor
from ..._core.options import RegistryOptions
from .blobs import ResumingBody
from .session import Origin, Session, error_text


class _AtItsUrl:
    """What a resumed download of a URL goes through: that URL's own session, anonymously."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def request(self, method: str, url: str, *, headers: Mapping[str, str] | None = None) -> urllib3.BaseHTTPResponse:
        return self.session.fetch_external(url, headers)


class ExternalBlobs:
    """A `BlobFetcher` over the URLs of each descriptor it is asked for."""

    location = "the blobs' own URLs"

    def __init__(self, options: RegistryOptions) -> None:
        self.options = options
        self._sessions: dict[Origin, Session] = {}

    def _session(self, url: str) -> Session:
        origin = Origin.of(url)
        session = self._sessions.get(origin)
        if session is None:
            session = self._sessions[origin] = Session(origin, urlsplit(url).netloc, self.options)
        return session

    @contextmanager
    def fetch(self, desc: Descriptor) -> Iterator[VerifyingReader]:
        tried: list[str] = []
        for url in desc.urls:
            shown = url.split("?")[0]
            if urlsplit(url).scheme.lower() != "https":
                tried.append(f"{shown}: not HTTPS")
                continue
            session = self._session(url)
            try:
                resp = session.fetch_external(url)
            except UnsafeContentError as exc:
                tried.append(exc.message)
                continue
            except OcisiftError as exc:
                tried.append(f"{shown}: {exc.message}")
                continue
            if resp.status != 200:
                tried.append(f"{shown}: answered {resp.status} {error_text(resp)}")
                continue
            body = ResumingBody(_AtItsUrl(session), url, resp, desc.size)
            reader = VerifyingReader(body, desc.digest, desc.size, what=f"non-distributable blob {desc.digest.short}")
            try:
                yield reader
            finally:
                body.close()
            return
        if tried and all(t.endswith("not HTTPS") or "over HTTPS only" in t for t in tried):
            raise UnsafeContentError(f"refusing to fetch non-distributable blob {desc.digest} over plain HTTP: "
                                     + "; ".join(tried))
        raise NotFoundError(f"non-distributable blob {desc.digest} could not be fetched from its URLs: "
                            + ("; ".join(tried) or "it lists none"))

    def close(self) -> None:
        for session in self._sessions.values():
            session.close()
        self._sessions.clear()


__all__ = ["ExternalBlobs"]
