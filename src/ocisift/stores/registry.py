"""Distribution-spec registries behind the Store protocol (read path).

One pooled urllib3 client per store; blobs stream through VerifyingReader,
manifests are read with a 4 MiB cap and checked against Docker-Content-Digest.
urllib3 drops the Authorization header when a redirect leaves the host.
"""

from __future__ import annotations

import http.client
import io
import ipaddress
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import IO, Any
from urllib.parse import urlencode

import urllib3

from .. import mediatypes as mt
from ..auth import Challenge, Credentials, lookup_credentials, parse_challenge
from ..digest import Digest, VerifyingReader, verify_bytes
from ..errors import AuthError, IntegrityError, NotFoundError, OcisiftError, UsageError
from ..models import MAX_MANIFEST_BYTES, Descriptor, MalformedDocument, parse_document
from ..reference import ImageName, Reference, RegistryReference

_FALLBACK_LOCKS: dict[str, threading.Lock] = {}
_FALLBACK_LOCKS_GUARD = threading.Lock()
ACCEPT = ", ".join([mt.OCI_INDEX, mt.OCI_MANIFEST, mt.DOCKER_LIST, mt.DOCKER_MANIFEST])
MAX_TAG_PAGES = 1000
_LINK_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


def is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host[1 : host.index("]")]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class RegistryStore:
    """One repository of one registry."""

    def __init__(self, image: ImageName, *, plain_http: bool | None = None, insecure: bool = False,
                 timeout: float = 30.0, retries: int = 4, credentials: Credentials | None = None,
                 ca_file: str | None = None, chunk_size: int | None = None) -> None:
        self.chunk_size = chunk_size
        self.tag_page_size = 1000
        self.image = image
        self._credentials = credentials
        self._credentials_looked_up = credentials is not None
        self._authorization: dict[str, str] = {}
        self._probed: set[str] = set()
        self.location = image.name
        host = "registry-1.docker.io" if image.host == "docker.io" else image.host
        scheme = "http" if (plain_http if plain_http is not None else is_loopback(host)) else "https"
        self.base = f"{scheme}://{host}/v2/{image.repository}"
        retry = urllib3.Retry(
            total=retries, connect=retries, read=retries, backoff_factor=0.25, backoff_jitter=0.25,
            status_forcelist=(429, 500, 502, 503, 504), respect_retry_after_header=True,
            allowed_methods=frozenset({"GET", "HEAD"}), raise_on_status=False,
        )
        self.http = urllib3.PoolManager(
            num_pools=4, maxsize=8, retries=retry,
            timeout=urllib3.Timeout(connect=min(timeout, 10.0), read=timeout),
            cert_reqs="CERT_NONE" if insecure else "CERT_REQUIRED",
            **({"ca_certs": ca_file} if ca_file else {}),
        )
        self._manifests: dict[str, bytes] = {}

    # -- HTTP ------------------------------------------------------------------------

    def _send(self, method: str, url: str, headers: dict[str, str], stream: bool,
              body: Any = None) -> urllib3.BaseHTTPResponse:
        try:
            return self.http.request(method, url, headers=headers, body=body, preload_content=not stream,
                                     redirect=method in ("GET", "HEAD"))
        except urllib3.exceptions.MaxRetryError as exc:
            raise OcisiftError(f"registry {self.image.host} is unreachable: {exc.reason}") from None
        except urllib3.exceptions.HTTPError as exc:
            raise OcisiftError(f"registry {self.image.host} failed: {exc}") from None

    def _request(self, method: str, url: str, *, headers: Mapping[str, str] | None = None,
                 stream: bool = False, scope: str = "pull", body: Any = None) -> urllib3.BaseHTTPResponse:
        sent = dict(headers or {})
        if scope in self._authorization:
            sent["Authorization"] = self._authorization[scope]
        if (body is not None and not isinstance(body, bytes) and "Authorization" not in sent
                and scope not in self._probed):
            # A streamed body cannot be sent twice: settle authentication first.
            self._probed.add(scope)
            self._request("GET", f"{self.base}/tags/list?n=1", scope=scope).release_conn()
            if scope in self._authorization:
                sent["Authorization"] = self._authorization[scope]
        resp = self._send(method, url, sent, stream, body)
        if resp.status == 401 and "Authorization" not in sent:
            challenge = parse_challenge(resp.headers.get("WWW-Authenticate", ""))
            resp.release_conn()
            if challenge is not None:
                self._authorization[scope] = self._authenticate(challenge, scope)
                sent["Authorization"] = self._authorization[scope]
                resp = self._send(method, url, sent, stream, body)
        if resp.status in (401, 403):
            resp.release_conn()
            hint = "" if self._creds() else " (no credentials found: use docker login or DOCKER_CONFIG)"
            raise AuthError(f"{self.image.host} refused access to {self.image.repository} ({resp.status}){hint}")
        return resp

    def _creds(self) -> Credentials | None:
        if not self._credentials_looked_up:
            self._credentials = lookup_credentials(self.image.host)
            self._credentials_looked_up = True
        return self._credentials

    def _authenticate(self, challenge: Challenge, scope: str) -> str:
        creds = self._creds()
        if challenge.scheme == "basic":
            if creds is None or creds.basic is None:
                raise AuthError(f"{self.image.host} wants a username and password; none found")
            return creds.basic
        if challenge.scheme != "bearer" or "realm" not in challenge.params:
            raise AuthError(f"{self.image.host} asked for unsupported authentication {challenge.scheme!r}")
        # A scope key is "ACTIONS" for this repository, plus " from:REPO" when a mount also reads REPO.
        actions, _, mount_from = scope.partition(" from:")
        scopes = [f"repository:{self.image.repository}:{actions}"]
        if mount_from:
            scopes.append(f"repository:{mount_from}:pull")
        fields: dict[str, Any] = {"scope": scopes}
        if "service" in challenge.params:
            fields["service"] = challenge.params["service"]
        headers = {}
        if creds is not None and creds.basic:
            headers["Authorization"] = creds.basic
        realm = challenge.params["realm"]
        try:
            if creds is not None and creds.identity_token:
                body = {"grant_type": "refresh_token", "refresh_token": creds.identity_token,
                        "scope": " ".join(scopes), "client_id": "ocisift",
                        **({"service": fields["service"]} if "service" in fields else {})}
                resp = self.http.request("POST", realm, fields=body, encode_multipart=False)
            else:
                sep = "&" if "?" in realm else "?"
                resp = self.http.request("GET", realm + sep + urlencode(fields, doseq=True), headers=headers)
        except urllib3.exceptions.HTTPError as exc:
            raise AuthError(f"token service {realm} is unreachable: {exc}") from None
        if resp.status != 200:
            raise AuthError(f"token service {realm} refused ({resp.status})")
        try:
            token = (resp.json().get("token") or resp.json().get("access_token"))
        except ValueError:
            token = None
        if not token:
            raise AuthError(f"token service {realm} returned no token")
        return f"Bearer {token}"

    # -- Store protocol ------------------------------------------------------------------

    def resolve(self, ref: Reference) -> list[Descriptor]:
        if not isinstance(ref, RegistryReference):
            raise UsageError(f"{ref} is not a registry reference")
        ident = ref.image.identifier
        assert ident is not None
        raw, media_type = self._get_manifest(ident, ref.image.digest)
        if raw is None:
            return []
        digest = ref.image.digest or Digest.of(raw)
        return [Descriptor(media_type, digest, len(raw))]

    def _get_manifest(self, ident: str, pinned: Digest | None) -> tuple[bytes | None, str]:
        resp = self._request("GET", f"{self.base}/manifests/{ident}", headers={"Accept": ACCEPT}, stream=True)
        try:
            if resp.status == 404:
                return None, ""
            if resp.status != 200:
                raise OcisiftError(f"registry answered {resp.status} for manifest {ident}")
            length = resp.headers.get("Content-Length")
            if length and int(length) > MAX_MANIFEST_BYTES:
                raise MalformedDocument(f"manifest {ident} is {length} bytes, over the {MAX_MANIFEST_BYTES}-byte limit")
            raw = resp.read(MAX_MANIFEST_BYTES + 1)
            if len(raw) > MAX_MANIFEST_BYTES:
                raise MalformedDocument(f"manifest {ident} is over the {MAX_MANIFEST_BYTES}-byte limit")
        finally:
            resp.release_conn()
        header = resp.headers.get("Docker-Content-Digest")
        if pinned is not None:
            verify_bytes(raw, pinned, len(raw), what=f"manifest {pinned.short}")
        elif header:
            claimed = Digest.parse(header)
            verify_bytes(raw, claimed, len(raw), what=f"manifest {ident}")
        content_type = (resp.headers.get("Content-Type") or "").split(";")[0].strip()
        doc = parse_document(raw, None, what=f"manifest {ident}")
        media_type = content_type if content_type in mt.GRAPH_TYPES else doc.media_type
        self._manifests[str(pinned or Digest.of(raw))] = raw
        return raw, media_type

    def roots(self) -> list[Descriptor]:
        return []

    def fetch_manifest(self, desc: Descriptor) -> bytes:
        if desc.size > MAX_MANIFEST_BYTES:
            raise MalformedDocument(f"manifest {desc.digest} claims {desc.size} bytes, over the limit")
        raw = self._manifests.get(str(desc.digest))
        if raw is None:
            raw, _ = self._get_manifest(str(desc.digest), desc.digest)
            if raw is None:
                raise NotFoundError(f"manifest {desc.digest} not found in {self.location}")
        return verify_bytes(raw, desc.digest, desc.size, what=f"manifest {desc.digest.short}")

    @contextmanager
    def fetch(self, desc: Descriptor) -> Iterator[VerifyingReader]:
        resp = self._request("GET", f"{self.base}/blobs/{desc.digest}", stream=True)
        if resp.status == 404:
            resp.release_conn()
            raise NotFoundError(f"blob {desc.digest} not found in {self.location}")
        if resp.status != 200:
            resp.release_conn()
            raise OcisiftError(f"registry answered {resp.status} for blob {desc.digest}")
        body = _ResumingBody(self, f"{self.base}/blobs/{desc.digest}", resp, desc.size)
        reader = VerifyingReader(body, desc.digest, desc.size, what=f"blob {desc.digest.short}")
        try:
            yield reader
        finally:
            body.close()

    def exists(self, desc: Descriptor) -> bool:
        """Registries keep manifests apart from blobs, so ask the right endpoint."""
        kind = "manifests" if (mt.is_manifest(desc.media_type) or mt.is_index(desc.media_type)) else "blobs"
        resp = self._request("HEAD", f"{self.base}/{kind}/{desc.digest}", headers={"Accept": ACCEPT})
        resp.release_conn()
        return resp.status == 200

    def tags(self) -> list[str]:
        out: list[str] = []
        url: str | None = f"{self.base}/tags/list?n={self.tag_page_size}"
        for _ in range(MAX_TAG_PAGES):
            if url is None:
                return out
            resp = self._request("GET", url)
            if resp.status == 404:
                raise NotFoundError(f"repository {self.location} not found")
            if resp.status != 200:
                raise OcisiftError(f"registry answered {resp.status} listing tags")
            body: Any = resp.json()
            out.extend(body.get("tags") or [])
            match = _LINK_NEXT.search(resp.headers.get("Link", ""))
            url = None
            if match:
                nxt = match.group(1)
                url = nxt if nxt.startswith("http") else self.base.split("/v2/")[0] + nxt
        raise OcisiftError(f"tag listing of {self.location} exceeded {MAX_TAG_PAGES} pages")

    def referrers(self, desc: Descriptor) -> list[Descriptor]:
        """The referrers API, else the `sha256-<hex>` fallback tag index."""
        resp = self._request("GET", f"{self.base}/referrers/{desc.digest}", headers={"Accept": mt.OCI_INDEX})
        if resp.status == 200 and (resp.headers.get("Content-Type") or "").startswith(mt.OCI_INDEX):
            doc = parse_document(resp.data, mt.OCI_INDEX, what="referrers")
            return list(getattr(doc, "manifests", ()))
        raw, _ = self._get_manifest(f"{desc.digest.algorithm}-{desc.digest.hex}", None)
        if raw is None:
            return []
        doc = parse_document(raw, None, what="referrers fallback index")
        return list(getattr(doc, "manifests", ()))

    def push(self, desc: Descriptor, stream: IO[bytes]) -> None:
        """Blobs by monolithic upload (POST then PUT); manifests and indexes by PUT to their digest."""
        if mt.is_manifest(desc.media_type) or mt.is_index(desc.media_type):
            raw = stream.read(MAX_MANIFEST_BYTES + 1)
            verify_bytes(raw, desc.digest, desc.size, what=f"manifest {desc.digest.short}")
            subject_seen = self._put_manifest(str(desc.digest), raw, desc.media_type)
            self._manifests[str(desc.digest)] = raw
            doc = parse_document(raw, desc.media_type, what=f"manifest {desc.digest.short}")
            if doc.subject is not None and not subject_seen:
                self._add_fallback_referrer(doc.subject, desc, doc)
            return
        self._upload(desc, stream, self._start_upload(f"{self.base}/blobs/uploads/", "pull,push"))

    def _start_upload(self, url: str, scope: str) -> str:
        resp = self._request("POST", url, scope=scope)
        location = resp.headers.get("Location")
        resp.release_conn()
        if resp.status != 202 or not location:
            raise OcisiftError(f"registry refused to start an upload ({resp.status})")
        return self.base.split("/v2/")[0] + location if location.startswith("/") else location

    def _upload(self, desc: Descriptor, stream: IO[bytes], location: str) -> None:
        """Monolithic PUT, or PATCH chunks then PUT when the blob is larger than `chunk_size`."""
        reader = VerifyingReader(stream, desc.digest, desc.size, what=f"blob {desc.digest.short}")
        if self.chunk_size and desc.size > self.chunk_size:
            offset = 0
            while offset < desc.size:
                chunk = reader.read(min(self.chunk_size, desc.size - offset))
                resp = self._request("PATCH", location, scope="pull,push", body=chunk, headers={
                    "Content-Type": "application/octet-stream", "Content-Length": str(len(chunk)),
                    "Content-Range": f"{offset}-{offset + len(chunk) - 1}"})
                resp.release_conn()
                if resp.status != 202:
                    raise OcisiftError(f"registry refused a chunk of blob {desc.digest} ({resp.status})")
                offset += len(chunk)
                nxt = resp.headers.get("Location") or location
                location = self.base.split("/v2/")[0] + nxt if nxt.startswith("/") else nxt
            reader.drain()
            body: Any = b""
            length = "0"
        else:
            body, length = reader, str(desc.size)
        sep = "&" if "?" in location else "?"
        resp = self._request("PUT", f"{location}{sep}digest={desc.digest}", scope="pull,push", body=body,
                             headers={"Content-Type": "application/octet-stream", "Content-Length": length})
        resp.release_conn()
        if resp.status != 201:
            raise OcisiftError(f"registry refused blob {desc.digest} ({resp.status})")

    def mount(self, desc: Descriptor, source: object) -> bool:
        """Cross-repository mount from another repository of this registry; False when it cannot be used."""
        if not isinstance(source, RegistryStore) or source.image.host != self.image.host or source is self:
            return False
        if source.image.repository == self.image.repository:
            return False
        scope = f"pull,push from:{source.image.repository}"
        url = f"{self.base}/blobs/uploads/?mount={desc.digest}&from={source.image.repository}"
        resp = self._request("POST", url, scope=scope)
        resp.release_conn()
        if resp.status == 201:
            return True
        if resp.status == 202:  # not mountable here: the registry opened an ordinary upload; let it lapse
            return False
        raise OcisiftError(f"registry answered {resp.status} to a mount of {desc.digest}")

    def _put_manifest(self, ident: str, raw: bytes, media_type: str) -> bool:
        """PUT; True when the registry says it indexed the subject itself (OCI-Subject header)."""
        resp = self._request("PUT", f"{self.base}/manifests/{ident}", scope="pull,push", body=raw,
                             headers={"Content-Type": media_type})
        text = resp.data[:500].decode(errors="replace") if resp.status != 201 else ""
        resp.release_conn()
        if resp.status != 201:
            raise OcisiftError(f"registry refused manifest {ident} ({resp.status}): {text}")
        return bool(resp.headers.get("OCI-Subject"))

    def _add_fallback_referrer(self, subject: Descriptor, desc: Descriptor, doc: Any, attempts: int = 8) -> None:
        """The referrers tag schema: add `desc` to the index tagged sha256-<hex>.

        Two pushers may race on that tag; re-read after writing and try again
        until our entry is there, so neither loses the other's referrer.
        """

        tag = f"{subject.digest.algorithm}-{subject.digest.hex}"
        artifact_type = getattr(doc, "effective_artifact_type", None) or doc.artifact_type
        entry = Descriptor(desc.media_type, desc.digest, desc.size, doc.annotations, None, artifact_type)
        import time

        key = f"{self.image.host}/{self.image.repository}:{tag}"
        with _FALLBACK_LOCKS_GUARD:
            lock = _FALLBACK_LOCKS.setdefault(key, threading.Lock())
        with lock:
            self._add_fallback_locked(tag, desc, entry, attempts)
            time.sleep(0.05)  # another process may have written just now: look once more
            self._add_fallback_locked(tag, desc, entry, attempts)

    def _add_fallback_locked(self, tag: str, desc: Descriptor, entry: Descriptor, attempts: int) -> None:
        import json as _json
        import time

        last: OcisiftError | None = None
        for attempt in range(attempts):
            raw, _ = self._get_manifest(tag, None)
            current = list(getattr(parse_document(raw, None, what="referrers index"), "manifests", ())) if raw else []
            if any(d.digest == desc.digest for d in current):
                return
            body = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX,
                    "manifests": [d.to_json() for d in [*current, entry]]}
            try:
                self._put_manifest(tag, _json.dumps(body, separators=(",", ":")).encode(), mt.OCI_INDEX)
            except OcisiftError as exc:  # a racing writer's manifest not yet visible: read again
                last = exc
                time.sleep(0.05 * (attempt + 1))
        raise OcisiftError(f"could not record referrer {desc.digest} under tag {tag} after {attempts} attempts"
                           + (f": {last.message}" if last else ""))

    def tag(self, desc: Descriptor, tag: str | None, annotations: Mapping[str, str] | None = None) -> None:
        if tag is None:
            return  # pushed content is reachable by digest; a registry has no unnamed entries
        self._put_manifest(tag, self.fetch_manifest(desc), desc.media_type)

    def finish(self) -> None:
        pass  # every write is already on the registry

    def pinned(self, desc: Descriptor) -> str:
        return f"{self.image.name}@{desc.digest}"

    def close(self) -> None:
        self.http.clear()


__all__ = ["RegistryStore", "is_loopback", "verify_login"]


class _ResumingBody(io.RawIOBase):
    """A blob response that picks up where it broke, with Range, a bounded number of times."""

    _BROKEN = (urllib3.exceptions.ProtocolError, urllib3.exceptions.ReadTimeoutError,
               urllib3.exceptions.IncompleteRead, http.client.HTTPException, ConnectionError, TimeoutError)

    def __init__(self, store: RegistryStore, url: str, resp: urllib3.BaseHTTPResponse, size: int,
                 attempts: int = 5) -> None:
        super().__init__()
        self.store, self.url, self.size = store, url, size
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
        under = getattr(resp, "_fp", None)
        plain = resp.headers.get("Content-Encoding", "identity").lower() == "identity"
        self._reader = under if plain and isinstance(under, http.client.HTTPResponse) else resp

    def readinto(self, buffer) -> int:  # type: ignore[override]
        while True:
            try:
                n = self._reader.readinto(buffer)  # type: ignore[union-attr]
            except self._BROKEN as exc:
                self._resume(exc)
                continue
            if n == 0 and self.got < self.size:
                self._resume(None)
                continue
            self.got += n
            return n

    def _resume(self, cause: BaseException | None) -> None:
        self.resp.release_conn()
        if self.resumed >= self.attempts:
            raise IntegrityError(f"download of {self.url} broke {self.resumed + 1} times; giving up "
                                 f"after {self.got} of {self.size} bytes ({cause})")
        self.resumed += 1
        resp = self.store._request("GET", self.url, headers={"Range": f"bytes={self.got}-"}, stream=True)
        if resp.status == 206:
            self._use(resp)
            return
        if resp.status == 200:  # the server ignored Range: skip what we already have
            skip = self.got
            while skip:
                chunk = resp.read(min(skip, 1 << 20))
                if not chunk:
                    break
                skip -= len(chunk)
            self._use(resp)
            return
        resp.release_conn()
        raise OcisiftError(f"registry answered {resp.status} when resuming {self.url}")

    def close(self) -> None:
        try:
            self.resp.release_conn()
        finally:
            super().close()


def verify_login(host: str, credentials: Credentials, *, plain_http: bool | None = None, insecure: bool = False,
                 ca_file: str | None = None, timeout: float = 30.0) -> None:
    """GET /v2/ through the challenge with these credentials; AuthError unless the registry accepts them."""
    store = RegistryStore(ImageName(host, "ocisift-login-check"), plain_http=plain_http, insecure=insecure,
                          ca_file=ca_file, timeout=timeout, retries=2, credentials=credentials)
    root = store.base.split("/v2/")[0] + "/v2/"
    try:
        resp = store._send("GET", root, {}, False)
        if resp.status == 401:
            challenge = parse_challenge(resp.headers.get("WWW-Authenticate", ""))
            if challenge is None:
                raise AuthError(f"{host} refused the login without saying how to authenticate")
            if challenge.scheme == "bearer":
                challenge = Challenge("bearer", {k: v for k, v in challenge.params.items() if k != "scope"})
            header = store._authenticate(challenge, "pull")
            resp = store._send("GET", root, {"Authorization": header}, False)
        if resp.status in (401, 403):
            raise AuthError(f"{host} refused these credentials ({resp.status})")
        if resp.status != 200:
            raise OcisiftError(f"{host} answered {resp.status} to /v2/")
    finally:
        store.close()
