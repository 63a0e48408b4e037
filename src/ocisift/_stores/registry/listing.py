"""Tag lists (paginated by Link, bounded) and referrers (the API, else the `sha256-<hex>` fallback tag)."""

from __future__ import annotations

import json
import re
import threading
import time
from typing import Any

from ..._core import jsontext
from ..._core import mediatypes as mt
from ..._core.digest import Digest
from ..._core.errors import MalformedDocument, NotFoundError, OcisiftError
from ..._core.models import MAX_MANIFEST_BYTES, Descriptor, Index, Manifest, parse_document, referrer_descriptor
from ..._core.names import referrers_tag
from .manifests import get_manifest, head_manifest, put_manifest
from .repository import Repository
from .session import BodyTooLarge, discard, error_text, read_capped

MAX_TAG_PAGES = 1000
MAX_TAGS = 1_000_000  # in all, over every page: the pages' byte cap alone would allow gigabytes
MAX_TAG_PAGE_BYTES = 4 * 1024 * 1024
TAG_PAGE_SIZE = 1000
_LINK_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')
_FALLBACK_LOCKS: dict[str, threading.Lock] = {}
_FALLBACK_LOCKS_GUARD = threading.Lock()


def list_tags(repo: Repository, page_size: int = TAG_PAGE_SIZE, limit: int | None = None) -> list[str]:
    out: list[str] = []
    url: str | None = repo.url(f"tags/list?n={page_size}")
    for _ in range(MAX_TAG_PAGES):
        if url is None or (limit is not None and len(out) >= limit):
            return out[:limit]
        resp = repo.request("GET", url)
        if resp.status == 404:
            discard(resp)
            raise NotFoundError(f"repository {repo.name} does not exist on {repo.host}")
        if resp.status != 200:
            raise OcisiftError(f"registry answered {resp.status} listing tags: {error_text(resp)}")
        link = resp.headers.get("Link", "")
        body: Any = _json(read_capped(resp, MAX_TAG_PAGE_BYTES, "a page of the tag list",
                                      repo.session.options.timeout), "the tag list")
        page = body.get("tags") if isinstance(body, dict) else None
        if page is not None and (not isinstance(page, list) or not all(isinstance(t, str) for t in page)):
            raise MalformedDocument(f"{repo.host} sent a tag list whose tags are not strings")
        out.extend(page or [])
        if len(out) > MAX_TAGS:
            raise OcisiftError(f"{repo.image.name} lists more than {MAX_TAGS} tags; refusing to read more")
        match = _LINK_NEXT.search(link)
        url = repo.absolute(match.group(1)) if match else None
    raise OcisiftError(f"tag listing of {repo.image.name} exceeded {MAX_TAG_PAGES} pages")


def _json(data: bytes, what: str) -> Any:
    try:
        return jsontext.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise MalformedDocument(f"{what} is not valid JSON") from None


def fallback_tag(subject: Descriptor) -> str:
    return referrers_tag(subject.digest)


def list_referrers(repo: Repository, desc: Descriptor) -> list[Descriptor]:
    """The referrers API, else the `sha256-<hex>` fallback tag index (straight away, once the registry
    has answered 404 to the API: it does not have one)."""
    raw = referrer_index(repo, desc)
    return _listed(raw) if raw is not None else []


def referrer_index(repo: Repository, desc: Descriptor) -> bytes | None:
    """The exact bytes of the index listing the subject's referrers: the referrers API's answer, else the
    fallback tag's index; None when neither lists any."""
    raw = _from_api(repo, desc)
    if raw is None:
        found = get_manifest(repo, fallback_tag(desc), None)
        raw = found[0] if found is not None else None
    return raw if raw is not None and _listed(raw) else None


def peek_referrer_index(repo: Repository, desc: Descriptor) -> tuple[Digest, bytes | None] | None:
    """The digest of that index for one request: the referrers API's answer (its bytes come along, and are
    returned), else a HEAD of the fallback tag. None when nothing refers to the subject."""
    raw = _from_api(repo, desc)
    if raw is not None:
        return (Digest.of(raw), raw) if _listed(raw) else None
    found = head_manifest(repo, fallback_tag(desc))
    return (found[0], None) if found is not None else None


def adopt_referrer_index(repo: Repository, subject: Descriptor, raw: bytes) -> bool:
    """Write another store's index of the subject's referrers as this repository's fallback tag, byte for
    byte, so the next comparison of the two ends' digests agrees; False (nothing written) where the
    registry has the referrers API and lists them itself."""
    if repo.session.referrers_api is None:
        _from_api(repo, subject)  # learn whether it has one
    if repo.session.referrers_api:
        return False
    doc = parse_document(raw, None, what="the referrers index to adopt")
    if not isinstance(doc, Index):
        raise MalformedDocument("the referrers index to adopt is not an image index")
    tag = fallback_tag(subject)
    with _fallback_lock(repo, tag):  # this process's pushes of referrers to the subject wait
        put_manifest(repo, tag, raw, doc.media_type)
    return True


def _from_api(repo: Repository, desc: Descriptor) -> bytes | None:
    """The referrers API's answer, or None where the registry has no such API (learnt from its first 404,
    after which it is not asked again) or did not answer with an index."""
    session = repo.session
    if session.referrers_api is None:
        with session.referrers_probe:  # the first asks; the others wait for what it learns
            if session.referrers_api is None:
                return _ask_api(repo, desc)
    if session.referrers_api is False:
        return None
    return _ask_api(repo, desc)


def _ask_api(repo: Repository, desc: Descriptor) -> bytes | None:
    resp = repo.request("GET", repo.url(f"referrers/{desc.digest}"), headers={"Accept": mt.OCI_INDEX})
    if resp.status == 200 and (resp.headers.get("Content-Type") or "").startswith(mt.OCI_INDEX):
        try:
            raw = read_capped(resp, MAX_MANIFEST_BYTES, "the referrers list", repo.session.options.timeout)
        except BodyTooLarge as exc:
            raise MalformedDocument(exc.message) from None
        repo.session.referrers_api = True
        return raw
    discard(resp)
    if resp.status == 404:
        repo.session.referrers_api = False
    return None


def _listed(raw: bytes) -> list[Descriptor]:
    doc = parse_document(raw, None, what="the referrers index")
    return list(doc.manifests) if isinstance(doc, Index) else []


def _fallback_lock(repo: Repository, tag: str) -> threading.Lock:
    key = f"{repo.host}/{repo.name}:{tag}"
    with _FALLBACK_LOCKS_GUARD:
        return _FALLBACK_LOCKS.setdefault(key, threading.Lock())


def add_fallback_referrer(repo: Repository, subject: Descriptor, desc: Descriptor, doc: Manifest | Index,
                          attempts: int = 8) -> None:
    """The referrers tag schema: add `desc` to the index tagged sha256-<hex>.

    Two pushers may race on that tag; re-read after writing and try again
    until our entry is there, so neither loses the other's referrer.
    """
    tag = fallback_tag(subject)
    entry = referrer_descriptor(desc, doc)
    with _fallback_lock(repo, tag):
        _add_fallback_locked(repo, tag, entry, attempts)
        time.sleep(0.05)  # another process may have written just now: look once more
        _add_fallback_locked(repo, tag, entry, attempts)


def _add_fallback_locked(repo: Repository, tag: str, entry: Descriptor, attempts: int) -> None:
    last: OcisiftError | None = None
    for attempt in range(attempts):
        found = get_manifest(repo, tag, None)
        current: list[Descriptor] = []
        if found is not None:
            doc = parse_document(found[0], None, what="referrers index")
            current = list(doc.manifests) if isinstance(doc, Index) else []
        if any(d.digest == entry.digest for d in current):
            return
        body = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [d.to_json() for d in [*current, entry]]}
        try:
            put_manifest(repo, tag, json.dumps(body, separators=(",", ":")).encode(), mt.OCI_INDEX)
        except OcisiftError as exc:  # a racing writer's manifest not yet visible: read again
            last = exc
            time.sleep(0.05 * (attempt + 1))
    raise OcisiftError(f"could not record referrer {entry.digest} under tag {tag} after {attempts} attempts"
                       + (f": {last.message}" if last else ""))
