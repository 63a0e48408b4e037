"""One reference grammar for every command.

Parsing is pure: the only outside knowledge is `probe`, which says whether a
path on disk is a layout directory or a file, so that a path containing `:`
is split where the layout really is instead of at the last colon.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from .digest import Digest
from .errors import ReferenceError_, UsageError
from .mediatypes import ANNOTATION_CONTAINERD_NAME

DEFAULT_HOST = "docker.io"
LEGACY_HOSTS = {"index.docker.io", "registry-1.docker.io"}
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_COMPONENT_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_HOST_RE = re.compile(
    r"^(?:(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])(?:\.(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]))*"
    r"|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$"
)

ACCEPTED_FORMS = """accepted reference forms:
  HOST/REPO[:TAG][@DIGEST]   registry (alpine = docker.io/library/alpine:latest)
  oci:PATH[:TAG][@DIGEST]    OCI layout directory (aliases oci-layout://, ocidir://)
  oci:PATH/IMAGE[:TAG]       image by full name inside a layout store
  oci-archive:FILE[:TAG][@DIGEST]   OCI layout packed in a tar file
  docker-archive:FILE[:NAME[:TAG]], docker-archive:FILE@N   docker save / docker load file
  dir:PATH[@DIGEST]          skopeo's directory format (manifest.json, version, blobs by hex)
  docker://HOST/REPO[:TAG]   registry (the skopeo form)
  ./PATH[:TAG], /PATH[:TAG]  shorthand for oci: (oci-archive: when PATH is a file)"""

LayoutKind = Literal["dir", "file"]
Probe = Callable[[str], "LayoutKind | None"]


def default_probe(path: str) -> LayoutKind | None:
    """A directory holding an `oci-layout` file, or a regular file (an archive)."""
    if not path:
        return None
    if os.path.isfile(os.path.join(path, "oci-layout")):
        return "dir"
    if os.path.isfile(path):
        return "file"
    return None


def _bad(text: str, why: str) -> ReferenceError_:
    return ReferenceError_(f"invalid reference {text!r}: {why}\n{ACCEPTED_FORMS}")


def is_tag(text: str) -> bool:
    return bool(_TAG_RE.fullmatch(text))


@dataclass(frozen=True, slots=True)
class ImageName:
    """A normalised Docker-style name: host, repository, optional tag and digest."""

    host: str
    repository: str
    tag: str | None = None
    digest: Digest | None = None

    @property
    def name(self) -> str:
        return f"{self.host}/{self.repository}"

    @property
    def identifier(self) -> str | None:
        """What the registry API takes: the digest if pinned, else the tag."""
        if self.digest:
            return str(self.digest)
        return self.tag

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    def with_tag(self, tag: str | None) -> ImageName:
        return ImageName(self.host, self.repository, tag, self.digest)


def parse_image_name(text: str, *, default_tag: str | None = "latest") -> ImageName:
    """Parse and normalise `[HOST/]REPO[:TAG][@DIGEST]` the way Docker does."""
    original = text
    if not text or text != text.strip():
        raise _bad(original, "empty or surrounded by whitespace")
    digest: Digest | None = None
    if "@" in text:
        text, _, dpart = text.rpartition("@")
        try:
            digest = Digest.parse(dpart)
        except UsageError as exc:
            raise _bad(original, exc.message) from None
    tag: str | None = None
    slash = text.rfind("/")
    colon = text.rfind(":")
    if colon > slash:
        text, tag = text[:colon], text[colon + 1 :]
        if not is_tag(tag):
            raise _bad(original, f"invalid tag {tag!r} (letters, digits, '_', '.', '-'; at most 128)")
    parts = text.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost" or parts[0] != parts[0].lower()):
        host = parts[0]
        path = parts[1:]
        if not _HOST_RE.fullmatch(host):
            raise _bad(original, f"invalid registry host {host!r}")
    else:
        host = DEFAULT_HOST
        path = parts
    if host in LEGACY_HOSTS:
        host = DEFAULT_HOST
    if not path or not all(path):
        raise _bad(original, "empty repository path component")
    for comp in path:
        if not _COMPONENT_RE.fullmatch(comp):
            why = "repository names must be lowercase" if comp.lower() != comp else f"invalid path component {comp!r}"
            raise _bad(original, why)
    if host == DEFAULT_HOST and len(path) == 1:
        path = ["library", *path]
    repository = "/".join(path)
    if len(host) + 1 + len(repository) > 255:
        raise _bad(original, "name longer than 255 characters")
    if tag is None and digest is None:
        tag = default_tag
    return ImageName(host, repository, tag, digest)


def familiar(name: ImageName) -> str:
    """Docker's short spelling: docker.io/library/alpine:3 is alpine:3, as `docker save` writes RepoTags."""
    repository = name.repository
    if name.host == DEFAULT_HOST:
        text = repository.removeprefix("library/") if repository.count("/") == 1 else repository
    else:
        text = f"{name.host}/{repository}"
    return f"{text}:{name.tag}" if name.tag else text


def try_image_name(text: str, *, default_tag: str | None = "latest") -> ImageName | None:
    try:
        return parse_image_name(text, default_tag=default_tag)
    except UsageError:
        return None


@dataclass(frozen=True, slots=True)
class Target:
    """What to look for inside a store, whatever the store: a short tag, a full name, a digest, or nothing.

    Stores resolve a Target, not a reference, so the same rules serve layouts,
    archives, registries and the in-memory store, and unit tests need no paths.
    """

    tag: str | None = None
    name: ImageName | None = None
    digest: Digest | None = None
    position: int | None = None  # the N-th root (docker-archive:FILE@N, for entries that carry no name)

    @property
    def tagless(self) -> bool:
        return self.tag is None and self.name is None and self.digest is None and self.position is None

    @property
    def named_tag(self) -> str | None:
        """The tag this target names (a full name's tag too), None when it pins a digest."""
        if self.digest is not None:
            return None
        return self.tag or (self.name.tag if self.name else None)

    @property
    def name_annotations(self) -> dict[str, str]:
        """A full name is also written where containerd and BuildKit look for it."""
        if self.name is None or self.digest is not None:
            return {}
        return {ANNOTATION_CONTAINERD_NAME: str(self.name)}

    @property
    def looking_for(self) -> str:
        if self.digest:
            return f"digest {self.digest}"
        if self.position is not None:
            return f"entry {self.position}"
        if self.name:
            return f"name {self.name}"
        return f"tag {self.tag}" if self.tag else "an entry"

    def __str__(self) -> str:
        if self.position is not None:
            return f"@{self.position}"
        text = str(self.name) if self.name else (self.tag or "")
        return f"{text}@{self.digest}" if self.digest else text


@dataclass(frozen=True, slots=True)
class RegistryReference:
    image: ImageName
    kind: Literal["registry"] = "registry"
    implicit_tag: bool = field(default=False, compare=False)  # `latest` came from Docker normalisation

    def __str__(self) -> str:
        return str(self.image)

    @property
    def target(self) -> Target:
        """Docker normalisation always supplies a tag or a digest, so a registry target is never tagless."""
        return Target(tag=self.image.tag, digest=self.image.digest)

    @property
    def tag(self) -> str | None:
        return self.image.tag

    @property
    def digest(self) -> Digest | None:
        return self.image.digest

    @property
    def not_found_hint(self) -> str:
        return ""

    def pinned(self, digest: Digest) -> str:
        return f"{self.image.name}@{digest}"


@dataclass(frozen=True, slots=True)
class LayoutReference:
    """A layout directory (`kind='dir'`) or archive (`kind='archive'`) and what to find in it.

    `tag` is a short tag; `image` a full name (from `oci:PATH/IMAGE:TAG` or a
    TAG that parses as a full reference); both None means tagless.
    """

    path: str
    layout: Literal["dir", "archive"]
    tag: str | None = None
    image: ImageName | None = None
    digest: Digest | None = None
    # `oci:DIR/acme/app`: the name's `latest` was filled in, so the reference may name the repository
    implicit_name_tag: bool = field(default=False, compare=False)

    @property
    def kind(self) -> str:
        return "layout" if self.layout == "dir" else "archive"

    @property
    def scheme(self) -> str:
        return "oci" if self.layout == "dir" else "oci-archive"

    @property
    def implicit_tag(self) -> bool:
        """A layout reference names what it says; no tag is ever filled in."""
        return False

    @property
    def target(self) -> Target:
        return Target(tag=self.tag, name=self.image, digest=self.digest)

    @property
    def not_found_hint(self) -> str:
        if self.image is None:
            return ""
        return (f"\n(full names match io.containerd.image.name or a full ref.name; "
                f"for a short tag write {self.scheme}:{self.path}:{self.image.tag})")

    def __str__(self) -> str:
        text = f"{self.scheme}:{self.path}"
        if self.image is not None:
            text += f"/{self.image.name}:{self.image.tag}" if self.image.tag else f"/{self.image.name}"
        elif self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    def pinned(self, digest: Digest) -> str:
        return f"{self.scheme}:{self.path}@{digest}"


@dataclass(frozen=True, slots=True)
class DockerArchiveReference:
    """`docker-archive:FILE[:NAME[:TAG]]` or `docker-archive:FILE@N` (skopeo writes `FILE:@N`): an image in
    a `docker save` file, by its RepoTags name or its position in manifest.json; neither means tagless."""

    path: str
    image: ImageName | None = None
    position: int | None = None
    digest: Digest | None = None
    kind: Literal["docker-archive"] = "docker-archive"

    @property
    def target(self) -> Target:
        return Target(name=self.image, digest=self.digest, position=self.position)

    @property
    def implicit_tag(self) -> bool:
        return False

    @property
    def not_found_hint(self) -> str:
        return f"\n(an entry without a name is picked by its position: docker-archive:{self.path}@0)"

    def __str__(self) -> str:
        text = f"docker-archive:{self.path}"
        if self.image is not None:
            text += f":{self.image}"
        if self.position is not None:
            text += f"@{self.position}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text


@dataclass(frozen=True, slots=True)
class DirReference:
    """`dir:PATH`: skopeo's directory transport, one image or index and no names; `@DIGEST` pins one of
    its manifests (an instance of the index it holds)."""

    path: str
    digest: Digest | None = None
    kind: Literal["dir"] = "dir"

    @property
    def target(self) -> Target:
        return Target(digest=self.digest)

    @property
    def implicit_tag(self) -> bool:
        return False

    @property
    def not_found_hint(self) -> str:
        return ""

    def __str__(self) -> str:
        return f"dir:{self.path}@{self.digest}" if self.digest else f"dir:{self.path}"

    def pinned(self, digest: Digest) -> str:
        return f"dir:{self.path}@{digest}"


Reference = RegistryReference | LayoutReference | DockerArchiveReference | DirReference

_DIR_SCHEMES = ("oci-layout://", "ocidir://", "oci:")
_ARCHIVE_SCHEMES = ("oci-archive://", "oci-archive:")
_DOCKER_ARCHIVE = "docker-archive:"
_DIR = "dir:"
_DOCKER_REGISTRY = "docker://"


def is_repository(ref: Reference) -> bool:
    """Does REF name a repository rather than one tag or digest (a registry's `latest` filled in counts)?"""
    if isinstance(ref, RegistryReference):
        return ref.image.digest is None and (ref.implicit_tag or ref.image.tag is None)
    if isinstance(ref, LayoutReference):
        return ref.digest is None and ref.tag is None and \
            (ref.image is None or ref.image.tag is None or ref.implicit_name_tag)
    if isinstance(ref, DirReference):
        return False  # one image, no names: never a repository of tags
    return ref.digest is None and ref.position is None and (ref.image is None or ref.image.tag is None)


def with_tag(ref: Reference, tag: str) -> Reference:
    """The same repository, naming `tag` (for a layout: a short tag, or the tag of its full name)."""
    if isinstance(ref, RegistryReference):
        return RegistryReference(ImageName(ref.image.host, ref.image.repository, tag))
    if isinstance(ref, LayoutReference):
        if ref.image is not None:
            return LayoutReference(ref.path, ref.layout, image=ImageName(ref.image.host, ref.image.repository, tag))
        return LayoutReference(ref.path, ref.layout, tag=tag)
    if isinstance(ref, DirReference):
        raise UsageError(f"{ref} holds one image and no names; it cannot take the tag {tag}")
    image = ref.image or ImageName("docker.io", "library/unnamed")
    return DockerArchiveReference(ref.path, ImageName(image.host, image.repository, tag))


def tag_in(ref: Reference, name: str) -> str | None:
    """The tag that a store's listed `name` gives the repository REF names, or None when it is another's.

    A registry lists bare tags. A layout lists what its index.json entries are
    called: short tags, and full names (`example.com/acme/app:1.0`), which
    belong to a repository named in REF as `oci:DIR/example.com/acme/app`.
    """
    image = getattr(ref, "image", None) if not isinstance(ref, RegistryReference) else None
    if image is None:
        return name if is_tag(name) else None
    full = try_image_name(name, default_tag=None)
    if full is None or full.name != image.name or full.tag is None or full.digest is not None:
        return None
    return full.tag


def parse_reference(text: str, probe: Probe = default_probe) -> Reference:
    """Parse any reference form of the grammar; raises ReferenceError_ (exit 2) on bad input."""
    if not isinstance(text, str) or not text or text != text.strip() or any(c in text for c in "\n\r\t\0"):
        raise _bad(str(text), "empty, or containing whitespace or control characters")
    if text.startswith(_DOCKER_ARCHIVE):
        return _parse_docker_archive(text, text[len(_DOCKER_ARCHIVE) :], probe)
    if text.startswith(_DIR):
        return _parse_dir(text, text[len(_DIR) :])
    if text.startswith(_DOCKER_REGISTRY):  # skopeo's spelling of a registry reference, and only that
        return _registry_reference(text, text[len(_DOCKER_REGISTRY) :])
    for scheme in _ARCHIVE_SCHEMES:
        if text.startswith(scheme):
            return _parse_layout(text, text[len(scheme) :], "archive", probe)
    for scheme in _DIR_SCHEMES:
        if text.startswith(scheme):
            return _parse_layout(text, text[len(scheme) :], "dir", probe)
    if text.startswith(("./", "../", "/")) or text in (".", ".."):
        return _parse_layout(text, text, None, probe)
    if "://" in text:
        raise _bad(text, f"unknown scheme {text.split('://', 1)[0]!r}")
    return _registry_reference(text, text)


def _registry_reference(original: str, text: str) -> RegistryReference:
    if not text or "://" in text or text.startswith(("/", "./", "oci:", "oci-archive:", "docker-archive:")):
        raise _bad(original, "docker:// takes a registry reference (HOST/REPO[:TAG][@DIGEST])")
    name = parse_image_name(text, default_tag=None)
    if name.tag is None and name.digest is None:
        return RegistryReference(name.with_tag("latest"), implicit_tag=True)
    return RegistryReference(name)


def _parse_docker_archive(original: str, body: str, probe: Probe) -> DockerArchiveReference:
    """FILE is the longest prefix (at a colon) that is a file on disk, else everything before the first colon.

    A trailing `@N` or `@DIGEST` selects, unless the whole text is a file that exists (`a@1.tar`).
    """
    position: int | None = None
    digest: Digest | None = None
    at = body.rfind("@")
    position_text = body[at + 1 :] if at >= 0 else ""
    is_position = position_text.isascii() and position_text.isdigit() and len(position_text) <= 9
    if at >= 0 and probe(body) != "file" and (is_position or position_text.startswith("sha")):
        tail = position_text
        if is_position:
            position, body = int(tail), body[:at].removesuffix(":")
        else:
            try:
                digest, body = Digest.parse(tail), body[:at]
            except UsageError as exc:
                raise _bad(original, f"after '@' comes a position (@0) or a digest: {exc.message}") from None
    if not body:
        raise _bad(original, "missing archive path")
    colons = [i for i, c in enumerate(body) if c == ":"]
    path, rest = body, ""
    if probe(body) != "file":
        on_disk = [i for i in reversed(colons) if probe(body[:i]) == "file"]
        cut = on_disk[0] if on_disk else (colons[0] if colons else None)
        if cut is not None:
            path, rest = body[:cut], body[cut + 1 :]
    image = None
    if rest:
        if position is not None:
            raise _bad(original, "give a name or a position, not both")
        image = try_image_name(rest, default_tag="latest")
        if image is None or image.digest is not None:
            raise _bad(original, f"{rest!r} is not an image name (NAME[:TAG])")
    if not path:
        raise _bad(original, "missing archive path")
    return DockerArchiveReference(path=path, image=image, position=position, digest=digest)


def _parse_dir(original: str, body: str) -> DirReference:
    """PATH is everything after `dir:` (as skopeo takes it), less a trailing `@sha256:…` or `@sha512:…`."""
    digest: Digest | None = None
    at = body.rfind("@")
    if at >= 0:
        tail = body[at + 1 :]
        if tail.split(":", 1)[0] in ("sha256", "sha512"):
            try:
                digest, body = Digest.parse(tail), body[:at]
            except UsageError as exc:
                raise _bad(original, f"after '@' comes a digest: {exc.message}") from None
    if not body:
        raise _bad(original, "missing directory path")
    if body.endswith("/") and len(body) > 1:
        body = body.rstrip("/") or "/"
    return DirReference(body, digest)


def _parse_layout(original: str, body: str, layout: Literal["dir", "archive"] | None, probe: Probe) -> LayoutReference:
    if not body:
        raise _bad(original, "missing layout path")
    digest: Digest | None = None
    at = body.rfind("@")
    if at >= 0:
        try:
            digest = Digest.parse(body[at + 1 :])
            body = body[:at]
        except UsageError:
            if ":" in body[at + 1 :] and body[at + 1 :].split(":", 1)[0] in ("sha256", "sha512"):
                raise _bad(original, "malformed digest after '@'") from None
    if not body:
        raise _bad(original, "missing layout path")
    path, rest, sep, kind = _split_on_disk(body, probe)
    if kind is None and layout == "archive":
        archive, inner, cut = _split_new_archive(path)
        if cut:
            path, rest, sep = archive, inner + (f":{rest}" if sep == ":" else ""), cut
    if layout is None:
        layout = "archive" if kind == "file" else "dir"
    if path.endswith("/") and len(path) > 1:
        path = path.rstrip("/")
    tag: str | None = None
    image: ImageName | None = None
    if sep == ":":
        if is_tag(rest):
            tag = rest
        else:
            image = try_image_name(rest, default_tag=None)
            if image is None or image.tag is None or image.digest is not None:
                raise _bad(original, f"{rest!r} is neither a tag nor a full image name with a tag")
    elif sep == "/":
        image = try_image_name(rest, default_tag="latest")
        if image is None or image.digest is not None:
            raise _bad(original, f"{rest!r} is not an image name inside the layout")
        named_tag = try_image_name(rest, default_tag=None)
        implicit = named_tag is not None and named_tag.tag is None
        return LayoutReference(path=path, layout=layout, image=image, digest=digest, implicit_name_tag=implicit)
    return LayoutReference(path=path, layout=layout, tag=tag, image=image, digest=digest)


def _split_new_archive(body: str) -> tuple[str, str, str]:
    """An `oci-archive:` that does not exist yet, named past its file (`bundle.tar/acme/app`): the
    archive is the first component ending in `.tar`, the rest an image name inside it. Without such a
    component the whole text is the file, as before."""
    parts = body.split("/")
    for i, part in enumerate(parts[:-1]):
        if part.lower().endswith(".tar") and i + 1 < len(parts) and parts[i + 1]:
            return "/".join(parts[: i + 1]), "/".join(parts[i + 1 :]), "/"
    return body, "", ""


def _split_on_disk(body: str, probe: Probe) -> tuple[str, str, str, LayoutKind | None]:
    """Split at the longest prefix that is a layout on disk; fall back to the last colon."""
    cuts = [i for i, c in enumerate(body) if c in ":/" and i > 0]
    kind = probe(body)
    if kind:
        return body, "", "", kind
    for i in reversed(cuts):
        prefix = body[:i]
        kind = probe(prefix)
        if kind:
            return prefix, body[i + 1 :], body[i], kind
    # Nothing on disk (yet): split at the last colon after the last slash, if a tag follows.
    slash = body.rfind("/")
    colon = body.rfind(":")
    if colon > slash and colon > 0 and is_tag(body[colon + 1 :]):
        return body[:colon], body[colon + 1 :], ":", None
    return body, "", "", None


def is_registry_host(text: str) -> bool:
    """Whether `text` is HOST[:PORT] as a registry reference names one (what login and logout take)."""
    return bool(_HOST_RE.fullmatch(text))
