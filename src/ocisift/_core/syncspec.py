"""A `sync SPEC.yaml` file's meaning: the images to mirror, as plain values (specfile.py reads the YAML).

A spec names images to mirror, each a source repository, the tags to take
from it and a destination, with optional defaults for platforms, referrers
and verification. These are the values the sync algorithm runs on; the file
itself is read, bounded and validated line by line in specfile.py, which is
imported only by what reads a spec (so a pull pays nothing for YAML).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .errors import UsageError
from .platform import Platform
from .reference import Reference, RegistryReference, with_tag
from .trustspec import VerifySpec

MAX_SPEC_BYTES = 1024 * 1024
MAX_DEPTH = 16
MAX_NODES = 100_000
MAX_FILTER_CHARS = 1024  # a semver range or a regex
MAX_REFERENCE_CHARS = 4096
MAX_PLATFORM_CHARS = 256

TAGS_EXPECTED = 'expected a list of tags, {semver: RANGE}, {regex: RE}, both, or "all"'

TagKind = Literal["list", "semver", "regex", "all"]


@dataclass(frozen=True, slots=True)
class TagChoice:
    """Which tags of a source to mirror.

    - ``list``: exactly `tags`, in the order written.
    - ``all``: every tag the source has.
    - ``semver``: every tag that is a semantic version inside the range
      `semver` (a mirror takes them all, not the highest); when `regex` is set
      too, it filters the tags first.
    - ``regex``: every tag `regex` matches (``re.search``: anchor it with
      ``^`` and ``$`` to match whole tags).

    `semver` is kept as written; the range grammar is checked where ranges
    are evaluated, and `semver_line` says where to point when it is wrong.
    `regex` is known to compile. `line` is where the `tags` value starts.
    The lines are 1-based and left out of comparisons.
    """

    kind: TagKind
    tags: tuple[str, ...] = ()
    semver: str | None = None
    regex: str | None = None
    line: int = field(default=0, compare=False)
    semver_line: int | None = field(default=None, compare=False)

    def __str__(self) -> str:
        if self.kind == "list":
            return ", ".join(self.tags)
        if self.kind == "all":
            return "all"
        parts = [f"regex {self.regex}"] if self.regex is not None else []
        if self.semver is not None:
            parts.append(f"semver {self.semver}")
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class SyncImage:
    """One entry of `images`: where from, which tags, where to.

    `source` and `destination` name a repository, not a tag: a registry
    reference has tag None (`implicit_tag` True), a layout or archive
    reference has neither tag nor digest, and a full name inside a layout
    (``oci:DIR/NAME``) has its tag None; `source_at` and `destination_at`
    (reference.with_tag) name one tag in them. `platforms` None means every platform.
    `line` is where the entry starts in the spec (1-based). `verify`, when given, is what a signature of
    each tag must satisfy before it is copied (Flux's OCIRepository `spec.verify`).
    """

    source: Reference
    destination: Reference
    tags: TagChoice
    platforms: tuple[Platform, ...] | None
    referrers: bool
    line: int
    verify: VerifySpec | None = None

    def source_at(self, tag: str) -> Reference:
        return with_tag(self.source, tag)

    def destination_at(self, tag: str) -> Reference:
        return with_tag(self.destination, tag)


@dataclass(frozen=True, slots=True)
class SyncSpec:
    images: tuple[SyncImage, ...]
    path: str


def check_shardable(spec: SyncSpec, shards: int) -> None:
    """Refuse, before anything runs, a spec that several shards would write into one layout or archive.

    A registry is the shared destination shards are for: each writes its own tags. A layout or archive
    is a file on the machine that runs the shard, so N shards would make N partial copies of it (or, on
    one machine, wait for each other).
    """
    if shards <= 1:
        return
    for n, image in enumerate(spec.images):
        if not isinstance(image.destination, RegistryReference):
            raise UsageError(
                f"{spec.path}:{image.line}: images[{n}].destination: {image.destination} is a layout or archive, "
                f"which {shards} shards cannot share (each would write its own share into its own copy); "
                "shard a spec whose destinations are registries, or run this one without --shard")
