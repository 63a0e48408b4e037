"""Manifests on a registry: GET with content negotiation, capped and verified; PUT by digest or tag."""

from __future__ import annotations

from ..._core import cancel
from ..._core import mediatypes as mt
from ..._core.digest import Digest, verify_bytes
from ..._core.errors import IntegrityError, MalformedDocument, NotFoundError, OcisiftError
from ..._core.models import MAX_MANIFEST_BYTES, parse_document
from .repository import Repository
from .session import BodyTooLarge, discard, error_text, header_number, read_capped

NOBODYS_DIGEST = Digest.parse("sha256:" + "0" * 64)
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


BLOB_UNKNOWN_RETRIES = (0.1, 0.3, 0.9)  # seconds between tries of a manifest whose blobs are there


def put_manifest(repo: Repository, ident: str, raw: bytes, media_type: str) -> bool:
    """PUT; True when the registry says it indexed the subject itself (the OCI-Subject header).

    Written only after its blobs are there, so a refusal naming one of them unknown is tried again a
    few times: distribution's filesystem storage rewrites a repository's link to a blob in place
    whenever another writer uploads that blob too (shards mirroring tags that share layers do), and a
    manifest checked in that moment names a blob the registry does not see; a moment later it does.
    """
    for pause in (*BLOB_UNKNOWN_RETRIES, None):
        resp = repo.request("PUT", repo.url(f"manifests/{ident}"), push=True, body=raw,
                            headers={"Content-Type": media_type})
        if resp.status == 201:
            break
        text = error_text(resp)
        if resp.status != 400 or "BLOB_UNKNOWN" not in text or pause is None:
            raise OcisiftError(f"registry refused manifest {ident} ({resp.status}): {text}")
        cancel.sleep(pause)
    subject_seen = bool(resp.headers.get("OCI-Subject"))
    discard(resp)
    return subject_seen


def head_manifest(repo: Repository, ident: str) -> tuple[Digest, str, int] | None:
    """Digest, media type and size of what a tag names, from one HEAD; None when the registry has no such tag.

    A HEAD is what a mirror can afford per tag (registries that limit pulls count GETs of manifests, not
    HEADs). A registry that answers without a usable Docker-Content-Digest is asked with a GET instead.
    """
    resp = repo.request("HEAD", repo.url(f"manifests/{ident}"), headers={"Accept": ACCEPT})
    discard(resp)
    if resp.status == 404:
        return None
    header = (resp.headers.get("Docker-Content-Digest") or "").strip()
    content_type = (resp.headers.get("Content-Type") or "").split(";")[0].strip()
    length = header_number(resp.headers.get("Content-Length"))
    if resp.status == 200 and header and content_type in mt.GRAPH_TYPES and length is not None:
        try:
            return Digest.parse(header), content_type, length
        except OcisiftError:
            pass  # a registry's odd header: the bytes say it for sure
    found = get_manifest(repo, ident, None)
    return (Digest.of(found[0]), found[1], len(found[0])) if found is not None else None


def manifest_digest(repo: Repository, ident: str) -> Digest | None:
    """What a tag names (by HEAD, else GET); None when the registry has no such tag."""
    found = head_manifest(repo, ident)
    return found[0] if found is not None else None


def delete_tag(repo: Repository, tag: str) -> bool:
    """DELETE of the tag itself (OCI distribution 1.1); False when the registry cannot delete a tag alone.

    Distribution 2.x answers 400 DIGEST_INVALID (it takes the tag for a digest); others answer 405
    UNSUPPORTED or 400 with a tag-invalid code. A registry with deletes disabled answers 405 too, which
    the caller learns from deleting by digest instead.
    """
    resp = repo.request("DELETE", repo.url(f"manifests/{tag}"), push=True)
    status, text = resp.status, error_text(resp)
    if status in (200, 202):
        return True
    if status == 404:
        raise NotFoundError(f"tag {tag} is not in {repo.image.name}")
    if status in (400, 405):
        return False
    raise OcisiftError(f"registry refused to delete tag {tag} ({status}): {text}")


def check_deletes_allowed(repo: Repository) -> None:
    """Refuse, as deleting by digest would, when the registry does not allow deletes (asked by deleting a
    digest nobody has: distribution answers 405 when deletes are off, before it looks, else 404)."""
    resp = repo.request("DELETE", repo.url(f"manifests/{NOBODYS_DIGEST}"), push=True)
    status, text = resp.status, error_text(resp)
    if status == 405:
        raise OcisiftError(_deletes_off(repo, text))


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
        raise OcisiftError(_deletes_off(repo, text))
    raise OcisiftError(f"registry refused to delete {digest} ({status}): {text}")


def _deletes_off(repo: Repository, text: str) -> str:
    return f"{repo.host} does not allow deletes (405); a distribution registry needs storage.delete.enabled: true: {text}"
