"""Blob uploads: monolithic (POST, PUT), chunked (POST, PATCH…, PUT), and cross-repository mounts.

Upload locations come from the registry's Location headers and may name
another origin; the session sends credentials only to the registry's own.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..._core.digest import verified
from ..._core.errors import OcisiftError
from ..._core.models import Descriptor
from ..._core.sources import ByteSource
from .blobs import blob_exists
from .repository import Repository
from .session import discard, error_text

_IN_FLIGHT: dict[tuple[str, str, str], threading.Event] = {}
_IN_FLIGHT_LOCK = threading.Lock()


@contextmanager
def single_upload(repo: Repository, desc: Descriptor) -> Iterator[bool]:
    """One upload of a blob into a repository at a time in this process; yields False when another
    thread has just uploaded it (the caller then skips). Distribution 2.8 can answer a manifest PUT with
    "blob unknown" when two uploads of one blob into one repository overlap, so they never do here."""
    key = (repo.base, repo.name, str(desc.digest))
    while True:
        with _IN_FLIGHT_LOCK:
            running = _IN_FLIGHT.get(key)
            if running is None:
                mine = _IN_FLIGHT[key] = threading.Event()
                break
        running.wait()
        if blob_exists(repo, desc.digest):
            yield False
            return
    try:
        yield True
    finally:
        with _IN_FLIGHT_LOCK:
            _IN_FLIGHT.pop(key, None)
        mine.set()


def start_upload(repo: Repository) -> str:
    resp = repo.request("POST", repo.url("blobs/uploads/"), push=True)
    location = resp.headers.get("Location")
    if resp.status != 202 or not location:
        raise OcisiftError(f"registry refused to start an upload ({resp.status}): {error_text(resp)}")
    discard(resp)
    return repo.absolute(location)


def upload_blob(repo: Repository, desc: Descriptor, stream: ByteSource, chunk_size: int | None) -> None:
    """Monolithic PUT, or PATCH chunks then PUT when the blob is larger than `chunk_size`."""
    location = start_upload(repo)  # authenticates too, so the streamed PUT below is not refused
    reader = verified(stream, desc.digest, desc.size, what=f"blob {desc.digest.short}")
    body: Any
    if chunk_size and desc.size > chunk_size:
        offset = 0
        while offset < desc.size:
            chunk = reader.read(min(chunk_size, desc.size - offset))
            if not chunk:
                raise OcisiftError(f"blob {desc.digest} ended after {offset} of {desc.size} bytes")
            resp = repo.request("PATCH", location, push=True, body=chunk, headers={
                "Content-Type": "application/octet-stream", "Content-Length": str(len(chunk)),
                "Content-Range": f"{offset}-{offset + len(chunk) - 1}"})
            if resp.status != 202:
                raise OcisiftError(f"registry refused a chunk of blob {desc.digest} ({resp.status}): "
                                   f"{error_text(resp)}")
            offset += len(chunk)
            location = repo.absolute(resp.headers.get("Location") or location)
            discard(resp)
        if reader.read(1):  # the verifying read past the end checks the digest
            raise OcisiftError(f"blob {desc.digest} is longer than its descriptor's {desc.size} bytes")
        body, length = b"", "0"
    else:
        body, length = reader, str(desc.size)
    sep = "&" if "?" in location else "?"
    resp = repo.request("PUT", f"{location}{sep}digest={desc.digest}", push=True, body=body,
                        headers={"Content-Type": "application/octet-stream", "Content-Length": length})
    if resp.status != 201:
        raise OcisiftError(f"registry refused blob {desc.digest} ({resp.status}): {error_text(resp)}")
    discard(resp)


def mount_blob(repo: Repository, desc: Descriptor, source: Repository) -> bool:
    """POST …/uploads/?mount=…&from=…; True on 201. A 202 means the registry opened a plain upload instead."""
    scope = repo.scope(True, source.name)
    resp = repo.request("POST", repo.url(f"blobs/uploads/?mount={desc.digest}&from={source.name}"), scope=scope)
    status = resp.status
    if status in (201, 202):
        discard(resp)  # a 202's upload session is left to lapse
        return status == 201
    raise OcisiftError(f"registry answered {status} to a mount of {desc.digest}: {error_text(resp)}")
