"""The SPEC's tag-resolution rules over a list of named roots (a layout's index.json), as pure functions.

Writers disagree on what they put in index.json (containerd: full name in
io.containerd.image.name and short tag in ref.name; skopeo and umoci: short
tag; some tools: full name in ref.name), so matching normalises both sides.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from . import mediatypes as mt
from .digest import Digest
from .models import Descriptor
from .reference import ImageName, Target, is_tag, try_image_name


def full_name_of(value: str | None) -> ImageName | None:
    """A ref.name or containerd name that is a full reference, not just a tag."""
    if not value or is_tag(value):
        return None
    name = try_image_name(value, default_tag=None)
    if name is None or (name.tag is None and name.digest is None):
        return None
    return name


def _same_name(a: ImageName, b: ImageName) -> bool:
    return a.host == b.host and a.repository == b.repository and a.tag == b.tag


def unique_by_digest(entries: Sequence[Descriptor]) -> list[Descriptor]:
    """Rule 5: several entries pointing at one digest are one match."""
    seen: set[str] = set()
    out: list[Descriptor] = []
    for entry in entries:
        key = str(entry.digest)
        if key not in seen:
            seen.add(key)
            out.append(entry)
    return out


def match_index_entries(entries: Sequence[Descriptor], ref: Target) -> list[Descriptor]:
    """Every index.json entry the reference names, one per digest, in index order."""
    if ref.position is not None:  # an entry by its place, for entries that carry no name
        return list(entries[ref.position : ref.position + 1])
    if ref.digest is not None:  # rule 1
        return unique_by_digest([e for e in entries if e.digest == ref.digest])
    if ref.name is not None:  # rule 2
        wanted = ref.name
        by_containerd = [
            e for e in entries
            if (n := full_name_of(e.annotations.get(mt.ANNOTATION_CONTAINERD_NAME))) and _same_name(n, wanted)
        ]
        if by_containerd:
            return unique_by_digest(by_containerd)
        return unique_by_digest([
            e for e in entries
            if (n := full_name_of(e.annotations.get(mt.ANNOTATION_REF_NAME))) and _same_name(n, wanted)
        ])
    if ref.tag is not None:  # rule 3
        return unique_by_digest([e for e in entries if _has_tag(e, ref.tag)])
    return unique_by_digest(list(entries))  # rule 4: the caller narrows with selectors


def _has_tag(entry: Descriptor, tag: str) -> bool:
    ref_name = entry.annotations.get(mt.ANNOTATION_REF_NAME)
    if ref_name == tag:
        return True
    for key in (mt.ANNOTATION_REF_NAME, mt.ANNOTATION_CONTAINERD_NAME):
        name = full_name_of(entry.annotations.get(key))
        if name is not None and name.tag == tag:
            return True
    return False


def names_of(entry: Descriptor) -> list[str]:
    """What an entry is called, for listings and error messages."""
    out: list[str] = []
    for key in (mt.ANNOTATION_CONTAINERD_NAME, mt.ANNOTATION_REF_NAME):
        value = entry.annotations.get(key)
        if value and value not in out:
            out.append(value)
    return out


def is_named(annotations: Mapping[str, object], tag: str) -> bool:
    """Does removing `tag` remove an entry with these annotations? A short ref.name equal to it, or a full name."""
    if annotations.get(mt.ANNOTATION_REF_NAME) == tag:
        return True
    for key in (mt.ANNOTATION_REF_NAME, mt.ANNOTATION_CONTAINERD_NAME):
        value = annotations.get(key)
        full = full_name_of(value) if isinstance(value, str) else None
        if full is not None and str(full) == tag:
            return True
    return False


def replaced_by(annotations: Mapping[str, object], name: str) -> bool:
    """Is an entry with these annotations replaced when `name` is recorded again? Only by the same name: a
    full name (`docker.io/acme/one:1`) replaces the entries that carry that full name (in
    io.containerd.image.name or ref.name, normalised), never another image's entry that shares its tag; a
    short tag replaces the entries whose ref.name is that tag, as skopeo and umoci replace them."""
    wanted = full_name_of(name)
    if wanted is None:
        return annotations.get(mt.ANNOTATION_REF_NAME) == name
    for key in (mt.ANNOTATION_CONTAINERD_NAME, mt.ANNOTATION_REF_NAME):
        value = annotations.get(key)
        found = full_name_of(value) if isinstance(value, str) else None
        if found is not None and _same_name(found, wanted):
            return True
    return False


def tags_of(entries: Sequence[Descriptor]) -> list[str]:
    """Every name and tag the entries carry, once each, in order."""
    seen: list[str] = []
    for entry in entries:
        for key in (mt.ANNOTATION_REF_NAME, mt.ANNOTATION_CONTAINERD_NAME):
            value = entry.annotations.get(key)
            if value and value not in seen:
                seen.append(value)
    return seen


def referrers_tag(digest: Digest) -> str:
    """The referrers tag schema's tag for a subject: `sha256-<hex>` (OCI distribution-spec 1.1)."""
    return f"{digest.algorithm}-{digest.hex}"


def is_referrers_tag(tag: str) -> bool:
    """A tag of the referrers tag schema, which lists referrers rather than naming content."""
    algorithm, sep, value = tag.partition("-")
    return bool(sep) and ((algorithm == "sha256" and len(value) == 64) or (algorithm == "sha512" and len(value) == 128)) \
        and all(c in "0123456789abcdef" for c in value)


def is_cosign_supplement_tag(tag: str) -> bool:
    """cosign's tags for what it attaches to a digest (`sha256-<hex>.sig`, `.att`, `.sbom`): signatures,
    attestations and SBOMs of another manifest, which carry no signature of their own."""
    stem, dot, suffix = tag.rpartition(".")
    return bool(dot) and suffix in ("sig", "att", "sbom") and is_referrers_tag(stem)


def without_cosign_supplements(tags: list[str]) -> tuple[list[str], int]:
    """The tags to verify when a repository's tags are verified, and how many of cosign's were left out."""
    kept = [t for t in tags if not is_cosign_supplement_tag(t)]
    return kept, len(tags) - len(kept)


SUPPLEMENTS_LEFT_OUT = ("cosign signature, attestation or SBOM tags (sha256-<hex>.sig, .att, .sbom) left out: "
                        "each signs other content and has no signature of its own; --referrers carries those of "
                        "the images copied")


def unnamed(entry: Descriptor) -> Descriptor:
    """The entry without its names: what a copy carries to a destination that names it its own way."""
    kept = {k: v for k, v in entry.annotations.items() if k not in (mt.ANNOTATION_REF_NAME, mt.ANNOTATION_CONTAINERD_NAME)}
    return Descriptor(entry.media_type, entry.digest, entry.size, kept, entry.platform, entry.artifact_type)
