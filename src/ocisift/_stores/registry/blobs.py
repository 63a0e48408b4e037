"""Blobs on a registry: streamed GETs that resume with Range where they broke, and HEAD checks."""

from __future__ import annotations

import http.client
import io
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol

import urllib3

from ..._core import cancel
from ..._core.digest import Digest, VerifyingReader
from ..._core.errors import IncompleteTransfer, IntegrityError, NotFoundError, OcisiftError, TransferTimeout
from ..._core.models import Descriptor
from .repository import Repository
from .session import Session, discard, error_text, header_number
from .watchdog import MIN_BYTES, WATCHDOG, Watch, socket_of

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

MAX_RESUMES = 5


@contextmanager
def fetch_blob(repo: Repository, desc: Descriptor) -> Iterator[VerifyingReader]:
    url = repo.url(f"blobs/{desc.digest}")
    resp = repo.request("GET", url)
    if resp.status == 404:
        discard(resp)
        raise NotFoundError(f"blob {desc.digest} not found in {repo.image.name}")
    if resp.status != 200:
        raise OcisiftError(f"registry answered {resp.status} for blob {desc.digest}: {error_text(resp)}")
    body = ResumingBody(repo, url, resp, desc.size)
    reader = VerifyingReader(body, desc.digest, desc.size, what=f"blob {desc.digest.short}")
    try:
        yield reader
    finally:
        body.close()


def blob_exists(repo: Repository, digest: Digest) -> bool:
    resp = repo.request("HEAD", repo.url(f"blobs/{digest}"))
    discard(resp)
    return resp.status == 200


def blob_size(repo: Repository, digest: Digest) -> int | None:
    """The size a registry gives for a blob (HEAD's Content-Length); None when it has no such blob."""
    resp = repo.request("HEAD", repo.url(f"blobs/{digest}"))
    discard(resp)
    if resp.status == 404:
        return None
    length = header_number(resp.headers.get("Content-Length"))
    if resp.status != 200 or length is None:
        raise OcisiftError(f"registry answered {resp.status} without a size for blob {digest}")
    return length


def _range_start(header: str | None) -> int | None:
    """The first byte of `Content-Range: bytes START-END/TOTAL`, or None."""
    if not header or not header.startswith("bytes "):
        return None
    return header_number(header[6:].split("-", 1)[0])


class BlobRequester(Protocol):
    """Who a resumed GET goes through: a repository (its session, its credentials), or a URL's own session."""

    @property
    def session(self) -> Session: ...

    def request(self, method: str, url: str, *, headers: Mapping[str, str] | None = None) -> urllib3.BaseHTTPResponse:
        ...


class ResumingBody(io.RawIOBase):
    """A blob response that picks up where it broke, with Range, a bounded number of times."""

    # OSError covers resets, timeouts and a TLS connection cut mid-stream (ssl.SSLEOFError).
    _BROKEN = (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError)

    def __init__(self, repo: BlobRequester, url: str, resp: urllib3.BaseHTTPResponse, size: int,
                 attempts: int = MAX_RESUMES) -> None:
        super().__init__()
        self.repo, self.url, self.size = repo, url, size
        self.timeout = repo.session.options.timeout
        self.watch: Watch | None = None
        self._use(resp)
        self.got = 0
        self.attempts = attempts
        self.resumed = 0

    def readable(self) -> bool:
        return True

    def _use(self, resp: urllib3.BaseHTTPResponse) -> None:
        """Read a plain body straight from the socket-level response under urllib3's.

        urllib3's readinto reads into a new bytes object and copies it over; for
        blobs of gigabytes that allocation and copy per chunk is a measurable
        share of the work. A body with a Content-Encoding still goes through
        urllib3, which decodes it.
        """
        self.resp = resp
        if self.watch is not None:
            WATCHDOG.done(self.watch)
        # At least MIN_BYTES every two timeouts, or the transfer ends as a timeout: a drip is not a download.
        self.watch = WATCHDOG.watch(socket_of(resp), window=2 * self.timeout)
        under = getattr(resp, "_fp", None)
        plain = resp.headers.get("Content-Encoding", "identity").lower() == "identity"
        self._reader: http.client.HTTPResponse | urllib3.BaseHTTPResponse = (
            under if plain and isinstance(under, http.client.HTTPResponse) else resp
        )

    def readinto(self, buffer: WriteableBuffer) -> int:
        while True:
            try:
                n = self._reader.readinto(memoryview(buffer).cast("B")) or 0
            except self._BROKEN as exc:
                cancel.check()  # broken because the transfer was cancelled: not a timeout, not resumed
                self._timed_out()
                self._resume(exc)
                continue
            if n == 0 and self.got < self.size:
                cancel.check()
                self._timed_out()
                self._resume(None)
                continue
            self.got += n
            if self.watch is not None:
                self.watch.progress(n)
            return n

    def _timed_out(self) -> None:
        if self.watch is not None and self.watch.expired:
            raise TransferTimeout(f"download of {self.url} trickled: under {MIN_BYTES // 1024} KiB in "
                                  f"{2 * self.timeout:g} s after {self.got} of {self.size} bytes (--timeout)")

    def _resume(self, cause: BaseException | None) -> None:
        discard(self.resp)
        if self.resumed >= self.attempts:
            raise IncompleteTransfer(f"download of {self.url} broke {self.resumed + 1} times; giving up "
                                 f"after {self.got} of {self.size} bytes ({cause})")
        self.resumed += 1
        resp = self.repo.request("GET", self.url, headers={"Range": f"bytes={self.got}-"})
        if resp.status == 206 and _range_start(resp.headers.get("Content-Range")) == self.got:
            self._use(resp)
            return
        if resp.status in (200, 206):  # Range ignored (or answered from elsewhere): skip what we already have
            start = (_range_start(resp.headers.get("Content-Range")) or 0) if resp.status == 206 else 0
            skip = self.got - start
            try:
                while skip > 0:
                    chunk = resp.read(min(skip, 1 << 20))
                    if not chunk:
                        break
                    skip -= len(chunk)
            except self._BROKEN as exc:
                raise IncompleteTransfer(f"download of {self.url} broke again while resuming: {exc}") from None
            if skip != 0:  # started past what we have, or ended before reaching it
                discard(resp)
                raise IntegrityError(f"registry answered a resume of {self.url} with a range that does not fit")
            self._use(resp)
            return
        if resp.status == 416:  # nothing at or past where the body ended: the blob is shorter than claimed
            discard(resp)
            raise IntegrityError(f"{self.url} holds {self.got} bytes where its descriptor says {self.size} "
                                 "(a resume past the end was refused)")
        raise OcisiftError(f"registry answered {resp.status} when resuming {self.url}: {error_text(resp)}")

    def close(self) -> None:
        if self.watch is not None:
            WATCHDOG.done(self.watch)
        try:
            discard(self.resp)
        finally:
            super().close()
