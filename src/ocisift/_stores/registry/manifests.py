"""Manifests on a registry: GET with content negotiation, capped and verified; PUT by digest or tag."""

from __future__ import annotations

from ..._core import mediatypes as mt
from ..._core.digest import Digest, verify_bytes
from ..._core.errors import IntegrityError, MalformedDocument, NotFoundError, OcisiftError
from ..._core.models import MAX_MANIFEST_BYTES, parse_document
from .repository import Repository
from .session import BodyTooLarge, discard, error_text, read_capped

ACCEPT = ", ".join([mt.OCI_INDEX, mt.OCI_MANIFEST, mt.DOCKER_LIST, mt.DOCKER_MANIFEST])


def get_manifest(repo: Repository, ident: str, pinned: Digest | None) -> tuple[bytes, str] | None:
    """The exact bytes and media type of a manifest by tag or digest; None when the registry has none.

    Pinned by digest, the bytes must hash to it; by tag, they must hash to the
    registry's Docker-Content-Digest when it sends one.
    """
    resp = repo.request("GET", repo.url(f"manifests/{ident}"), headers={"Accept": ACCEPT})
    if resp.status == 404:
        discard(resp)
        return None
    if resp.status != 200:
        raise OcisiftError(f"registry answered {resp.status} for manifest {ident}: {error_text(resp)}")
    try:
        raw = read_capped(resp, MAX_MANIFEST_BYTES, f"manifest {ident}", repo.session.options.timeout)
    except BodyTooLarge as exc:
        raise MalformedDocument(exc.message) from None
    header = resp.headers.get("Docker-Content-Digest")
    if pinned is not None:
        verify_bytes(raw, pinned, len(raw), what=f"manifest {pinned.short}")
    elif header:
        try:
            claimed = Digest.parse(header.strip())
        except OcisiftError:
            raise IntegrityError(f"registry sent an invalid Docker-Content-Digest for {ident}: {header!r}") from None
        verify_bytes(raw, claimed, len(raw), what=f"manifest {ident}")
    content_type = (resp.headers.get("Content-Type") or "").split(";")[0].strip()
    doc = parse_document(raw, None, what=f"manifest {ident}")
    media_type = content_type if content_type in mt.GRAPH_TYPES else doc.media_type
    return raw, media_type


def put_manifest(repo: Repository, ident: str, raw: bytes, media_type: str) -> bool:
    """PUT; True when the registry says it indexed the subject itself (the OCI-Subject header)."""
    resp = repo.request("PUT", repo.url(f"manifests/{ident}"), push=True, body=raw,
                        headers={"Content-Type": media_type})
    if resp.status != 201:
        raise OcisiftError(f"registry refused manifest {ident} ({resp.status}): {error_text(resp)}")
    subject_seen = bool(resp.headers.get("OCI-Subject"))
    discard(resp)
    return subject_seen


def manifest_exists(repo: Repository, digest: Digest) -> bool:
    resp = repo.request("HEAD", repo.url(f"manifests/{digest}"), headers={"Accept": ACCEPT})
    discard(resp)
    return resp.status == 200


def delete_manifest(repo: Repository, digest: Digest) -> None:
    resp = repo.request("DELETE", repo.url(f"manifests/{digest}"), push=True)
    status, text = resp.status, error_text(resp)
    if status in (200, 202):
        return
    if status == 404:
        raise NotFoundError(f"{digest} is not in {repo.image.name}")
    if status == 405:
        raise OcisiftError(f"{repo.host} does not allow deletes (405); a distribution registry needs "
                           f"storage.delete.enabled: true: {text}")
    raise OcisiftError(f"registry refused to delete {digest} ({status}): {text}")
