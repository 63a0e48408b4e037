"""sync: many images from a spec in one run, several in flight, and again later copying only what changed.

For each image of the spec: choose its tags (a list, every tag, or those
inside a semver range or matching a pattern), then copy each tag as `copy`
does, sharing one copier per image so blobs and referrers move once. A tag
whose destination already names what the source names costs one HEAD at each
end (`unchanged`), so a second run over unchanged sources reads no manifest.

With referrers, an unchanged tag also has the digests of its root's referrer
indexes compared at both ends (one more request each, none when the source
lists none), and only referrers that arrived since are copied (`complete`).

Images run in parallel, except those writing into one destination store (one
archive, one layout directory, one repository), which run one after another in
spec order: an archive is rebuilt whole when it is finished, so two writers of
one archive would lose each other's work. One tag failing does not stop the
others, nor one image the others; the run's exit code is the highest of the
failures'.

A `Shard` takes its stable share of the (image, tag) pairs: the others are
left to the other shards, which run the same spec elsewhere. Each tag is
measured (requests, from the context's meter; bytes; seconds) and handed to
`on_tag` as it finishes, for a report a scheduler reads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

from .._core import cancel
from .._core.errors import NotFoundError, OcisiftError
from .._core.meter import metering
from .._core.models import Descriptor
from .._core.names import SUPPLEMENTS_LEFT_OUT, without_cosign_supplements
from .._core.progress import Progress
from .._core.reference import Reference, Target, with_tag
from .._core.shards import Shard
from .._core.syncspec import SyncImage, SyncSpec
from .._core.trustspec import Trust
from .._core.versions import TagFilter
from .._stores.base import Reader
from .copy import GraphCopier, copy_between, peek
from .naming import names_batched
from .resolve import resolve_in
from .results import CopyResult
from .tags import repository_tags
from .trustresults import TrustCheck, Verification
from .walk import document_loader

# a store opened from a reference; a destination is published when its block succeeds
Opener = Callable[[Reference], AbstractContextManager[Reader]]


@dataclass
class TagOutcome:
    """One tag of one image: what happened to it and what it cost (a line of the run's report)."""

    tag: str
    destination: str  # the destination reference of the tag
    result: str = "failed"  # copied | unchanged | would-copy (a dry run) | failed
    digest: str | None = None  # what the source's tag names, when that was learnt
    bytes: int = 0
    referrers: int = 0  # referrer manifests carried (for an unchanged tag: those that arrived since)
    requests: int = 0
    requests_by_host: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    error: OcisiftError | None = None

    @property
    def exit_code(self) -> int:
        return self.error.exit_code if self.error is not None else 0


@dataclass
class ImageOutcome:
    image: SyncImage
    tags: list[str] = field(default_factory=list)  # the tags this run took (a shard's share)
    elsewhere: int = 0  # tags chosen, but left to the other shards
    copied: list[str] = field(default_factory=list)  # destination references that changed
    skipped: list[str] = field(default_factory=list)  # destination references that were already right
    results: list[TagOutcome] = field(default_factory=list)
    referrers: int = 0
    bytes_copied: int = 0
    error: OcisiftError | None = None  # the image's own failure, or the worst of its tags'
    verified: list[str] = field(default_factory=list)  # for each tag checked: which signature vouched
    supplements_left_out: int = 0  # cosign .sig/.att/.sbom tags not verified as tags (names.py)

    def notes(self) -> list[str]:
        return [f"{self.supplements_left_out} {SUPPLEMENTS_LEFT_OUT}"] if self.supplements_left_out else []

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": str(self.image.source), "destination": str(self.image.destination),
                               "line": self.image.line, "tags": self.tags, "copied": self.copied,
                               "skipped": self.skipped, "referrers": self.referrers,
                               "bytesCopied": self.bytes_copied, "verified": self.verified}
        if self.elsewhere:
            out["tagsElsewhere"] = self.elsewhere
        if self.notes():
            out["notes"] = self.notes()
        if self.error is not None:
            out["error"] = _error_json(self.error)
        failed = [{"tag": r.tag, **_error_json(r.error)} for r in self.results if r.error is not None]
        if failed:
            out["failedTags"] = failed
        return out

    def report_line(self, result: TagOutcome | None) -> dict[str, Any]:
        """A line of `--report`: this image and one of its tags (None: the image failed before any tag)."""
        error = result.error if result is not None else self.error
        out: dict[str, Any] = {
            "source": str(self.image.source), "destination": str(self.image.destination),
            "line": self.image.line, "tag": result.tag if result is not None else None,
            "digest": result.digest if result is not None else None,
            "bytes": result.bytes if result is not None else 0,
            "referrers": result.referrers if result is not None else 0,
            "requests": result.requests if result is not None else 0,
            "requestsByRegistry": dict(result.requests_by_host) if result is not None else {},
            "seconds": round(result.seconds, 3) if result is not None else 0.0,
            "result": result.result if result is not None else "failed",
            "exitCode": error.exit_code if error is not None else 0}
        if error is not None:
            out["error"] = _error_json(error)
        return out


def _error_json(error: OcisiftError | None) -> dict[str, Any]:
    assert error is not None
    return {"code": error.exit_code, "kind": error.kind, "message": error.message}


# told of every tag once its destination store is published (and, with None, of an image that failed
# before any tag)
TagListener = Callable[[ImageOutcome, TagOutcome | None], None]


@dataclass
class SyncResult:
    path: str
    dry_run: bool
    images: list[ImageOutcome]
    shard: Shard | None = None

    @property
    def copied(self) -> list[str]:
        return [r for i in self.images for r in i.copied]

    @property
    def skipped(self) -> list[str]:
        return [r for i in self.images for r in i.skipped]

    @property
    def failed(self) -> list[ImageOutcome]:
        return [i for i in self.images if i.error is not None]

    @property
    def exit_code(self) -> int:
        """The highest exit code among the failed images (0 when none failed)."""
        return max((i.error.exit_code for i in self.failed if i.error is not None), default=0)

    def to_json(self) -> dict[str, Any]:
        return {"spec": self.path, "dryRun": self.dry_run, "shard": str(self.shard) if self.shard else None,
                "images": [i.to_json() for i in self.images],
                "copied": self.copied, "skipped": self.skipped,
                "failed": [{"source": str(i.image.source), "destination": str(i.image.destination),
                            "line": i.image.line} for i in self.failed]}


class _NothingToPublish(Exception):
    """Leaves a destination's block without publishing it: no image of its group changed anything."""


def _os_error(exc: OSError) -> OcisiftError:
    where = f": {exc.filename}" if exc.filename else ""
    return OcisiftError(f"{exc.strerror or exc}{where}")


def tag_filters(spec: SyncSpec) -> dict[int, TagFilter]:
    """Each image's semver/regex choice, checked before anything runs (a bad range names its line)."""
    out: dict[int, TagFilter] = {}
    for n, image in enumerate(spec.images):
        choice = image.tags
        if choice.semver is None and choice.regex is None:
            continue
        try:
            out[n] = TagFilter.build(choice.semver, choice.regex)
        except OcisiftError as exc:
            line = choice.semver_line or choice.line or image.line
            raise type(exc)(f"{spec.path}:{line}: {exc.message}") from None
    return out


def sync(spec: SyncSpec, open_source: Opener, open_destination: Opener, *,
         destination_key: Callable[[Reference], str], images_at_once: int = 4, concurrency: int = 4,
         dry_run: bool = False, progress: Progress | None = None, shard: Shard | None = None,
         on_tag: TagListener | None = None, trust: Trust | None = None) -> SyncResult:
    """Run every image of the spec (with `shard`, only its share of the tags); images whose destinations
    share a `destination_key` share one opened destination store and run in turn (an archive is then
    packed once, at the end of its group).

    An image with a `verify:` block (else `trust`, for every image) copies a tag only when a signature
    vouches for the digest its source tag names; a tag that fails is the image's failure (exit 7)."""
    filters = tag_filters(spec)
    outcomes = [ImageOutcome(image) for image in spec.images]
    groups: dict[str, list[int]] = {}
    for n, image in enumerate(spec.images):
        groups.setdefault(destination_key(image.destination), []).append(n)
    stop = threading.Event()
    report_lock = threading.Lock()

    def tell(outcome: ImageOutcome, result: TagOutcome | None) -> None:
        if on_tag is not None:
            with report_lock:
                on_tag(outcome, result)

    def nothing_here(n: int) -> bool:
        """A list of tags that all go to other shards: neither end need be opened for it."""
        image = spec.images[n]
        if shard is None or image.tags.kind != "list":
            return False
        outcomes[n].elsewhere = sum(not shard.owns(str(image.source), t) for t in image.tags.tags)
        return outcomes[n].elsewhere == len(image.tags.tags)

    def run_group(members: list[int]) -> None:
        members = [n for n in members if not nothing_here(n)]
        if not members:
            return
        try:
            with ExitStack() as sources:
                # Images that verify are checked first, each tag resolved once, before the destination is
                # opened: a tag no signature vouches for writes nothing, not even an empty layout.
                verified = {} if dry_run else _verify_group(members, outcomes, filters, open_source, sources, trust,
                                                            shard)
                members = [n for n in members if outcomes[n].error is None]
                if not members:
                    raise _NothingToPublish
                with open_destination(spec.images[members[0]].destination) as destination, \
                        names_batched(destination):
                    for n in members:
                        if stop.is_set():
                            return
                        outcome = outcomes[n]
                        try:
                            with _source(n, verified, open_source, outcomes) as source:
                                _sync_image(outcome, filters.get(n), source, destination, concurrency=concurrency,
                                            dry_run=dry_run, progress=progress, shard=shard,
                                            pinned=verified[n][1] if n in verified else None,
                                            signed_only=dry_run and _must_be_signed(outcome.image, trust))
                        except cancel.Cancelled:
                            raise
                        except OcisiftError as exc:
                            outcome.error = exc
                        except OSError as exc:
                            outcome.error = _os_error(exc)
                    if dry_run or not any(outcomes[n].copied for n in members):
                        raise _NothingToPublish  # an archive is not repacked, nor a new one made, for nothing
        except _NothingToPublish:
            pass
        except cancel.Cancelled:
            stop.set()
            raise
        except (OcisiftError, OSError) as exc:  # the destination could not be opened or published
            failure = exc if isinstance(exc, OcisiftError) else _os_error(exc)
            for n in members:
                if outcomes[n].error is None:
                    outcomes[n].error = failure
                    for result in outcomes[n].results:  # what was copied into it is not published either
                        if result.error is None:
                            result.error, result.result = failure, "failed"
        except BaseException:
            stop.set()
            raise
        for n in members:  # told once the group's destination is published (an archive: packed), or not
            for result in outcomes[n].results:
                tell(outcomes[n], result)
            if outcomes[n].error is not None and not outcomes[n].results:
                tell(outcomes[n], None)

    with ThreadPoolExecutor(max_workers=max(1, images_at_once), thread_name_prefix="ocisift-sync") as pool:
        futures = [pool.submit(run_group, members) for members in groups.values()]
        try:
            for future in futures:
                future.result()
        except BaseException:
            stop.set()
            for future in futures:
                future.cancel()
            raise
    return SyncResult(spec.path, dry_run, outcomes, shard)


Pinned = dict[str, tuple[Descriptor, Verification]]  # a verified image's tags: the digest each was resolved to


def _verify_group(members: list[int], outcomes: list[ImageOutcome], filters: dict[int, TagFilter],
                  open_source: Opener, sources: ExitStack, trust: Trust | None,
                  shard: Shard | None) -> dict[int, tuple[Reader, Pinned]]:
    """For each image that verifies: its source (kept open for the copy) and each tag's verified digest.
    An image that fails (a tag not trusted, a key that does not load) is that image's error."""
    out: dict[int, tuple[Reader, Pinned]] = {}
    for n in members:
        image = outcomes[n].image
        try:
            gate = _gate(image, trust)
            if gate is None:
                continue
            source = sources.enter_context(open_source(image.source))
            _choose(outcomes[n], source, filters.get(n), shard, verifying=gate.accepted is None)
            load = document_loader(source)
            pinned: Pinned = {}
            for tag in outcomes[n].tags:
                cancel.check()
                here = with_tag(image.source, tag)
                root = resolve_in(source, here.target, reference=str(here), load=load).root
                pinned[tag] = (root, gate.check(source, [root], load=load, reference=str(here)))
            out[n] = (source, pinned)
        except cancel.Cancelled:
            raise
        except OcisiftError as exc:
            outcomes[n].error = exc
        except OSError as exc:
            outcomes[n].error = _os_error(exc)
    return out


@contextmanager
def _source(n: int, verified: dict[int, tuple[Reader, Pinned]], open_source: Opener,
            outcomes: list[ImageOutcome]) -> Iterator[Reader]:
    if n in verified:
        yield verified[n][0]  # opened and verified already; closed with the group
        return
    with open_source(outcomes[n].image.source) as source:
        yield source


def _choose(outcome: ImageOutcome, source: Reader, tag_filter: TagFilter | None, shard: Shard | None, *,
            verifying: bool = False) -> None:
    """The image's tags, and of those this shard's share; when each must be signed, a repository's listed tags
    without cosign's signature tags (names.without_cosign_supplements)."""
    image = outcome.image
    chosen = _chosen_tags(image, source, tag_filter)
    if verifying and image.tags.kind != "list":
        chosen, outcome.supplements_left_out = without_cosign_supplements(chosen)
    outcome.tags = [t for t in chosen if shard is None or shard.owns(str(image.source), t)]
    outcome.elsewhere = len(chosen) - len(outcome.tags)


def _must_be_signed(image: SyncImage, trust: Trust | None) -> bool:
    """Whether the image's tags are held to a signature (a policy may accept its scope unsigned): what a dry
    run, which checks no signature, needs to list the tags a real run would copy."""
    chosen = image.verify if image.verify is not None else trust
    if chosen is None:
        return False
    from .verify import accepts_unsigned  # the signature formats, only for a sync that verifies

    return not accepts_unsigned(image.source, chosen)


def _gate(image: SyncImage, trust: Trust | None) -> TrustCheck | None:
    """The checks for one image (its keys and roots loaded once for all its tags), when any are asked for."""
    chosen = image.verify if image.verify is not None else trust
    if chosen is None:
        return None
    from .verify import gate_for  # the signature formats, only for a sync that verifies

    return gate_for(image.source, chosen)


def _sync_image(outcome: ImageOutcome, tag_filter: TagFilter | None, source: Reader, destination: Reader, *,
                concurrency: int, dry_run: bool, progress: Progress | None, shard: Shard | None,
                pinned: Pinned | None = None, signed_only: bool = False) -> None:
    image = outcome.image
    platforms = tuple(str(p) for p in image.platforms or ())
    if pinned is None:  # else chosen, and verified, already
        _choose(outcome, source, tag_filter, shard, verifying=signed_only)
    copier = None if dry_run else GraphCopier(
        source, destination, CopyResult(str(image.source), str(image.destination)),
        concurrency=concurrency, progress=progress, referrers=image.referrers)
    for tag in outcome.tags:
        cancel.check()
        here, there = with_tag(image.source, tag), with_tag(image.destination, tag)
        result = TagOutcome(tag, str(there))
        started = time.monotonic()
        with metering() as meter:
            try:
                if copier is None:
                    _plan_tag(result, source, destination, here.target, there.target, str(image.source))
                else:
                    if pinned is not None:  # copied by the digest verified
                        copied = copy_between(source, Target(digest=pinned[tag][0].digest), destination,
                                              there.target, platforms=platforms, source_name=str(here),
                                              destination_name=str(there), copier=copier, pinned_tag=True)
                        outcome.verified.append(pinned[tag][1].summary())
                    else:
                        copied = copy_between(source, here.target, destination, there.target, platforms=platforms,
                                              source_name=str(here), destination_name=str(there), copier=copier)
                    changed = not copied.unchanged or copied.referrers or copied.referrer_indexes
                    result.result = "copied" if changed else "unchanged"
                    result.digest = str(copied.root.digest) if copied.root is not None else None
                    result.bytes, result.referrers = copied.bytes_copied, len(copied.referrers)
            except cancel.Cancelled:
                raise
            except OcisiftError as exc:
                result.error = exc
            except OSError as exc:
                result.error = _os_error(exc)
        result.seconds = time.monotonic() - started
        result.requests, result.requests_by_host = meter.total, dict(meter.by_host)
        if result.error is not None:
            result.result = "failed"
            if outcome.error is None or result.error.exit_code > outcome.error.exit_code:
                outcome.error = result.error  # the image's: the worst of its tags'
        elif result.result in ("copied", "would-copy"):
            outcome.copied.append(result.destination)
        else:
            outcome.skipped.append(result.destination)
        outcome.referrers += result.referrers
        outcome.bytes_copied += result.bytes
        outcome.results.append(result)


def _chosen_tags(image: SyncImage, source: Reader, tag_filter: TagFilter | None) -> list[str]:
    if image.tags.kind == "list":
        return list(image.tags.tags)
    listed = repository_tags(image.source, source)
    return tag_filter.matching(listed) if tag_filter is not None else listed


def _plan_tag(result: TagOutcome, source: Reader, destination: Reader, here: Target, there: Target,
              source_name: str) -> None:
    """--dry-run: would this tag be copied? Asked as a real run would ask, nothing read or written.

    Only the tags are compared: referrers that arrived at the source for a tag that is unchanged are not
    looked for."""
    src, dst = peek(source, here), peek(destination, there)
    if src is None:
        raise NotFoundError(f"{source_name} has no tag {here.tag}")
    result.digest = str(src.digest)
    result.result = "unchanged" if dst is not None and dst.digest == src.digest else "would-copy"
