"""The importable API: one typed function per command, with the command's words.

Each function parses its references, opens the stores they name (closing them
however it ends), calls the algorithm and, for writers, publishes the staged
result (an archive is packed) only when everything succeeded. The algorithms
a command does not need are imported by the function that needs them, so a
`resolve` does not pay for tar, threads and credential helpers.
"""

from __future__ import annotations

import builtins
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from typing import BinaryIO, Literal

from ._core import jsontext
from ._core.bounds import CONCURRENCY, GRACE_SECONDS, IMAGES_AT_ONCE
from ._core.bounds import MAX_DEPTH as MAX_DEPTH_BOUND
from ._core.digest import Digest
from ._core.errors import (
    AuthError,
    ConflictError,
    IncompleteTransfer,
    IntegrityError,
    NotFoundError,
    OcisiftError,
    UsageError,
)
from ._core.models import Descriptor, Document
from ._core.names import SUPPLEMENTS_LEFT_OUT, is_referrers_tag, unnamed, without_cosign_supplements
from ._core.options import RegistryOptions
from ._core.platform import Platform
from ._core.progress import Progress
from ._core.reference import (
    LayoutReference,
    Reference,
    RegistryReference,
    Target,
    is_repository,
    parse_reference,
    with_tag,
)
from ._core.shards import Shard, parse_shard
from ._core.syncspec import SyncSpec, check_shardable
from ._core.trustspec import Trust, TrustPolicy, VerifySpec
from ._core.versions import TagFilter
from ._graph.gc import DEFAULT_GRACE_SECONDS, collect_garbage, referencing_indexes
from ._graph.naming import check_tags, names_batched
from ._graph.referrers import ReferrerNode, discover
from ._graph.resolve import Resolved, resolve_in
from ._graph.results import CopyResult, Deleted, GcResult, PullResult, Pushed
from ._graph.select import Selector
from ._graph.signed import Signed
from ._graph.sync import ImageOutcome, SyncResult, TagListener, TagOutcome
from ._graph.tags import pick_tag, repository_tags
from ._graph.tree import TreeNode, build_tree
from ._graph.trustresults import TrustCheck, Verification
from ._graph.walk import MAX_DEPTH, document_loader
from ._stores.base import (
    BlobFetcher,
    BlobSweeper,
    Deleter,
    Finisher,
    Reader,
    RootLister,
    Tagger,
    TagLister,
    Untagger,
    require,
)
from ._stores.memory import MemoryStore
from ._stores.open import open_store, opened
from ._unpack.layers import LayerSelector, Mode
from ._unpack.limits import ExtractLimits

# Every type a signature names is imported above, so typing.get_type_hints() works on each function;
# the algorithms a command does not need (tar, threads, credential helpers) are imported by the
# function that needs them.

RefLike = Reference | str


def _ref(ref: RefLike) -> Reference:
    return parse_reference(ref) if isinstance(ref, str) else ref


def _hint(ref: Reference) -> str:
    return ref.not_found_hint


TrustLike = VerifySpec | TrustPolicy | str  # a str is a --verify-policy file


def _trust(trust: TrustLike | None) -> Trust | None:
    if not isinstance(trust, str):
        return trust
    from ._core.specfile import load_trust_policy  # YAML, only for what reads a policy file

    return load_trust_policy(trust)


def _gate(ref: Reference, trust: TrustLike | None) -> TrustCheck | None:
    """What a signature of what REF names must satisfy; None when nothing is asked."""
    chosen = _trust(trust)
    if chosen is None:
        return None
    from ._graph.verify import gate_for  # the signature formats, only when a signature is checked

    return gate_for(ref, chosen)


@contextmanager
def _writing(ref: Reference, registry: RegistryOptions | None, *, create: bool = False,
             limits: ExtractLimits | None = None) -> Iterator[Reader]:
    """A store opened for writing (`create`: a new layout or archive may be started); staged writes are
    published only if the block succeeds. `limits` caps what it may unpack (a docker archive's layers)."""
    with opened(ref, writable=True, create=create, options=registry, limits=limits) as store:
        yield store
        if isinstance(store, Finisher):
            store.finish()


def resolve(ref: RefLike, select: Selector | None = None, *, registry: RegistryOptions | None = None,
            semver: str | None = None, tag_regex: str | None = None) -> Resolved:
    """What a reference names; with any selector, the one manifest selected under it.

    With `semver` (and `tag_regex` to filter first), REF names a repository and the highest tag inside
    the range is the one resolved (Flux's `ref.semver`); `Resolved.target.tag` says which."""
    reference = _ref(ref)
    with opened(reference, options=registry) as store:
        reference = pick_tag(reference, store, semver, tag_regex)
        return resolve_in(store, reference.target, select, reference=str(reference), hint=_hint(reference))


def manifest(ref: RefLike, select: Selector | None = None, *, registry: RegistryOptions | None = None) -> bytes:
    """The exact bytes of the manifest or index the reference (and selector) name."""
    reference = _ref(ref)
    with opened(reference, options=registry) as store:
        resolved = resolve_in(store, reference.target, select, reference=str(reference), hint=_hint(reference))
        return store.fetch_manifest(resolved.descriptor)


def tags(ref: RefLike, *, referrer_tags: bool = False, registry: RegistryOptions | None = None,
         semver: str | None = None, tag_regex: str | None = None) -> list[str]:
    """The tags of a repository, or the names and tags in a layout's index.json.

    The `sha256-<hex>` tags of the referrers tag schema list referrers rather
    than name content; they are left out unless `referrer_tags`. With `semver`
    and/or `tag_regex`, only the tags inside the range (ascending by version,
    so the last is what `resolve --semver` picks) or matching the pattern.
    """
    reference = _ref(ref)
    with opened(reference, options=registry) as store:
        found = require(store, TagLister, "list tags").tags()
    if semver is None and tag_regex is None:
        return found if referrer_tags else [t for t in found if not is_referrers_tag(t)]
    unique = dict.fromkeys(t for t in found if not is_referrers_tag(t))  # a registry may list a tag twice
    return TagFilter.build(semver, tag_regex).matching(unique)


def pull(
    ref: RefLike,
    dest: str,
    select: Selector | None = None,
    *,
    layers: LayerSelector | None = None,
    mode: Mode = "copy",
    name: str | None = None,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    overwrite: bool = False,
    dry_run: bool = False,
    limits: ExtractLimits | None = None,
    registry: RegistryOptions | None = None,
    progress: Progress | None = None,
    concurrency: int = 4,
    semver: str | None = None,
    tag_regex: str | None = None,
    require_xattrs: bool = False,
    trust: TrustLike | None = None,
) -> PullResult:
    """Select one manifest, then write or unpack the chosen layers into `dest`, all or nothing.

    With `trust` (a VerifySpec, a TrustPolicy, or a policy file's path), a signature must vouch for the
    digest the reference resolves to (or for the manifest selected under it) before any blob is fetched,
    and the digest verified is the digest pulled; else NotTrustedError (exit 7) and nothing is written.

    Up to `concurrency` blobs are fetched at once; layers are unpacked in manifest order while later
    ones arrive. `semver`/`tag_regex` choose the tag as in `resolve`. Image layers keep their metadata
    as a root filesystem; what could not be kept is in the result's `notes` (an error instead with
    `require_xattrs`)."""
    from ._graph.pull import pull_from

    CONCURRENCY.check(concurrency)
    reference = _ref(ref)
    gate = _gate(reference, trust)
    with opened(reference, options=registry) as store:
        reference = pick_tag(reference, store, semver, tag_regex)
        return pull_from(
            store, reference.target, dest, selector=select, layers=layers, mode=mode, name=name,
            include=tuple(include), exclude=tuple(exclude), overwrite=overwrite, dry_run=dry_run, limits=limits,
            progress=progress, reference=str(reference), hint=_hint(reference), concurrency=concurrency,
            require_xattrs=require_xattrs, trust=gate,
        )


def blob(ref: RefLike, output: str | BinaryIO, *, registry: RegistryOptions | None = None,
         progress: Progress | None = None) -> Descriptor:
    """The blob REF@DIGEST names, verified: to a file path (complete or not there at all) or a binary stream."""
    from ._graph.blob import blob_descriptor, blob_to_file, blob_to_stream

    reference = _ref(ref)
    digest = reference.target.digest
    if digest is None or reference.target.tag is not None or reference.target.name is not None:
        raise UsageError(f"blob get takes a reference pinned by a blob's digest, such as "
                         f"localhost:5000/acme/app@sha256:… (got {reference})")
    with opened(reference, options=registry) as store:
        desc = blob_descriptor(store, digest)
        if isinstance(output, str):
            blob_to_file(store, desc, output, progress)
        else:
            blob_to_stream(store, desc, output, progress)
    return desc


def tree(ref: RefLike, *, referrers: bool = False, max_depth: int = MAX_DEPTH,
         registry: RegistryOptions | None = None) -> list[TreeNode]:
    """The whole graph under what the reference names (every root of a tagless layout)."""
    MAX_DEPTH_BOUND.check(max_depth)
    reference = _ref(ref)
    with opened(reference, options=registry) as store:
        return build_tree(store, reference.target, referrers=referrers, max_depth=max_depth, hint=_hint(reference))


ManifestFormat = Literal["oci"]


def copy(src: RefLike, dst: RefLike, *, platforms: Sequence[str] = (), concurrency: int = 4,
         registry: RegistryOptions | None = None, progress: Progress | None = None, referrers: bool = False,
         semver: str | None = None, tag_regex: str | None = None, manifest_format: ManifestFormat | None = None,
         include_nondistributable: bool = False, limits: ExtractLimits | None = None,
         trust: TrustLike | None = None) -> CopyResult:
    """The whole graph (or the chosen platforms) from one store to another; existing content is skipped.

    `referrers` carries the referrers of every manifest copied, recursively. `semver`/`tag_regex`
    choose the source's tag as in `resolve`; a destination without a tag then gets that tag.
    `manifest_format="oci"` converts Docker manifests and lists to OCI's (new digests, in the result's
    `converted`), as skopeo's `--format oci` does; without it every digest is kept. Non-distributable
    blobs (descriptors with `urls`) are left at their URLs and listed in `external`, unless
    `include_nondistributable`, which copies them (from the source, else from their HTTPS URLs).
    `limits` caps the unpacking a docker-archive destination does (its layers are plain tars), as pull's.
    With `trust`, a signature must vouch for the root SRC names before anything is written (exit 7 else)."""
    from ._graph.copy import copy_between

    CONCURRENCY.check(concurrency)
    src_ref, dst_ref = _ref(src), _ref(dst)
    gate = _gate(src_ref, trust)
    chosen = (platforms,) if isinstance(platforms, str) else tuple(platforms)  # one platform given bare
    _check_format(manifest_format, referrers)
    try:
        with opened(src_ref, options=registry) as opened_source:
            source = _viewed(opened_source, manifest_format)
            picked = pick_tag(src_ref, source, semver, tag_regex)
            if picked is not src_ref and picked.target.tag is not None and is_repository(dst_ref):
                dst_ref = with_tag(dst_ref, picked.target.tag)
            src_target, verification = picked.target, None
            if gate is not None:  # before the destination is opened (or made): refused, nothing is written
                root = resolve_in(source, picked.target, reference=str(picked), hint=_hint(picked)).root
                verification = gate.check(source, [root], reference=str(picked))
                src_target = Target(digest=root.digest)  # the digest verified is the digest copied
            with _writing(dst_ref, registry, create=True, limits=limits) as destination, \
                    _external(registry, include_nondistributable) as external:
                result = copy_between(source, src_target, destination, dst_ref.target, platforms=chosen,
                                      concurrency=concurrency, progress=progress, source_name=str(picked),
                                      destination_name=str(dst_ref), referrers=referrers, external=external,
                                      pinned_tag=verification is not None and not chosen)
                result.verification = verification
                result.tag = picked.target.tag if picked is not src_ref else None
                _explain(result, source, dst_ref)
                return result
    except OcisiftError as exc:
        raise _with_advice(exc, copy_advice(exc, str(src_ref), str(dst_ref))) from None


def _check_format(manifest_format: str | None, referrers: bool) -> None:
    if manifest_format not in (None, "oci"):
        raise UsageError(f"unknown manifest format {manifest_format!r}: the one conversion is to oci")
    if manifest_format is not None and referrers:
        raise UsageError("--referrers cannot be kept through --format oci: converting gives the manifests new "
                         "digests, and their referrers name the old ones as their subject")


def _viewed(source: Reader, manifest_format: str | None) -> Reader:
    from ._graph.convert import OciView

    return OciView(source) if manifest_format == "oci" else source


@contextmanager
def _external(registry: RegistryOptions | None, include: bool) -> Iterator[BlobFetcher | None]:
    if not include:
        yield None
        return
    from ._stores.registry.external import ExternalBlobs

    fetcher = ExternalBlobs(registry or RegistryOptions())
    try:
        yield fetcher
    finally:
        fetcher.close()


def _explain(result: CopyResult, source: Reader, dst_ref: Reference) -> None:
    """What the copy did that a user of skopeo, regctl or Docker should hear about: said once, on stderr."""
    from ._graph.convert import OciView

    if isinstance(source, OciView) and source.converted:
        result.converted = dict(source.converted)
        result.notes.append(f"converted to OCI media types: {len(source.converted)} manifest(s) and index(es) "
                            "got new digests")
    if result.docker_documents and isinstance(dst_ref, LayoutReference):
        result.notes.append(
            f"{dst_ref.scheme}: now holds Docker media types ({result.docker_documents} manifest(s) or list(s)) with "
            "their digests kept, as regctl and crane copy; skopeo and umoci read only OCI types there: copy with "
            "--format oci to convert (new digests)")
    if result.external:
        result.notes.append(
            f"{len(result.external)} non-distributable blob(s) not copied, left at the URLs their descriptors "
            "give (Docker's rule); --include-nondistributable copies them")


def copy_tags(src: RefLike, dst: RefLike, *, platforms: Sequence[str] = (), concurrency: int = 4,
              registry: RegistryOptions | None = None, progress: Progress | None = None, referrers: bool = False,
              semver: str | None = None, tag_regex: str | None = None,
              tags: Sequence[str] | None = None, manifest_format: ManifestFormat | None = None,
              include_nondistributable: bool = False, limits: ExtractLimits | None = None,
              trust: TrustLike | None = None) -> list[CopyResult]:
    """Every tag of the repository SRC names (or `tags`, or those inside `semver` / matching `tag_regex`)
    into the repository DST names, under the same tags, sharing what one copy moved with the next.

    Referrer fallback tags (`sha256-<hex>`) are not copied as tags; `referrers` carries what they list.
    With `trust`, cosign's `sha256-<hex>.sig` (`.att`, `.sbom`) tags among a repository's tags are left out
    (they sign other content and are signed by nothing), and `referrers` carries those of the images copied.
    A tag whose destination already names the same digest costs one HEAD at each end and nothing more.
    With `trust`, every tag is resolved and verified before anything is written, then copied by the digest
    verified; one tag that is not trusted stops the copy (exit 7) with nothing written.
    """
    from ._graph.copy import GraphCopier, copy_between

    CONCURRENCY.check(concurrency)
    src_ref, dst_ref = _ref(src), _ref(dst)
    gate = _gate(src_ref, trust)
    for ref, role in ((src_ref, "source"), (dst_ref, "destination")):
        if not is_repository(ref):
            raise UsageError(f"copying many tags takes a {role} repository without a tag or digest (got {ref})")
    chosen = (platforms,) if isinstance(platforms, str) else tuple(platforms)
    _check_format(manifest_format, referrers)
    results: list[CopyResult] = []
    try:
        with opened(src_ref, options=registry) as opened_source, \
                _external(registry, include_nondistributable) as external:
            source = _viewed(opened_source, manifest_format)
            left_out = 0
            if tags is None:
                listed = repository_tags(src_ref, source)
                wanted = TagFilter.build(semver, tag_regex).matching(listed) if semver or tag_regex else listed
                if gate is not None and gate.accepted is None:  # a scope accepted unsigned copies them all
                    wanted, left_out = without_cosign_supplements(wanted)
            else:
                check_tags(tags)
                wanted = list(dict.fromkeys(tags))
            if not wanted:
                what = f" inside {semver!r}" if semver else f" matching {tag_regex!r}" if tag_regex else ""
                raise NotFoundError(f"{src_ref} has no tags{what} to copy")
            load = document_loader(source)
            verified = _verify_tags(source, src_ref, wanted, gate, load) if gate is not None else {}
            with _writing(dst_ref, registry, create=True, limits=limits) as destination, \
                    names_batched(destination):  # 10,000 tags into a layout: one index.json write
                shared = GraphCopier(source, destination, CopyResult(str(src_ref), str(dst_ref)),
                                     concurrency=concurrency, progress=progress, referrers=referrers,
                                     external=external)
                for tag in wanted:
                    here, there = with_tag(src_ref, tag), with_tag(dst_ref, tag)
                    pinned = Target(digest=verified[tag][0].digest) if tag in verified else here.target
                    result = copy_between(source, pinned, destination, there.target, platforms=chosen,
                                          source_name=str(here), destination_name=str(there), copier=shared,
                                          pinned_tag=tag in verified)
                    result.tag = tag
                    if tag in verified:
                        result.verification = verified[tag][1]
                    _explain(result, source, there)
                    results.append(result)
                if left_out and results:
                    results[0].notes.append(f"{left_out} {SUPPLEMENTS_LEFT_OUT}")
    except OcisiftError as exc:
        raise _with_advice(exc, copy_advice(exc, str(src_ref), str(dst_ref))) from None
    return results


def _verify_tags(source: Reader, src_ref: Reference, wanted: Sequence[str], gate: TrustCheck,
                 load: Callable[[Descriptor], Document]) -> dict[str, tuple[Descriptor, Verification]]:
    """Each tag resolved once and its root verified, before anything is written."""
    out = {}
    for tag in wanted:
        here = with_tag(src_ref, tag)
        root = resolve_in(source, here.target, reference=str(here), load=load).root
        out[tag] = (root, gate.check(source, [root], load=load, reference=str(here)))
    return out


def sync(spec: str | SyncSpec, *, dry_run: bool = False, images_at_once: int = 4, concurrency: int = 4,
         registry: RegistryOptions | None = None, progress: Progress | None = None,
         shard: Shard | str | None = None, shards: int | None = None, report: str | None = None,
         trust: TrustLike | None = None) -> SyncResult:
    """Mirror every image of a sync spec (a YAML file's path, or a parsed SyncSpec); see the README's Mirroring.

    The spec is checked whole before anything runs. A tag or image that fails is recorded in the result
    (`SyncResult.exit_code` is the highest among them) and the others go on. `shard`: a Shard, `"I/N"`,
    or `"auto"` (I from JOB_COMPLETION_INDEX, N from `shards` or OCISIFT_SHARDS): only that share of the
    (image, tag) pairs runs. `report`: a file written with one JSON line per image and tag as they finish.
    An image's `verify:` block, else `trust`, is what a signature of each tag must satisfy before the tag is
    copied (a dry run checks none).
    """
    from ._graph.sync import sync as run_sync

    IMAGES_AT_ONCE.check(images_at_once)
    CONCURRENCY.check(concurrency)
    from ._core.specfile import load_spec  # YAML, only for a sync

    parsed = load_spec(spec) if isinstance(spec, str) else spec
    chosen = parse_shard(shard, shards, os.environ) if isinstance(shard, str) else shard
    if chosen is None and shards is not None:
        raise UsageError("--shards goes with --shard auto")
    if chosen is not None:
        check_shardable(parsed, chosen.count)

    @contextmanager
    def open_source(ref: Reference) -> Iterator[Reader]:
        with opened(ref, options=registry) as store:
            yield store

    @contextmanager
    def open_destination(ref: Reference) -> Iterator[Reader]:
        if not dry_run:
            with _writing(ref, registry, create=True) as store:
                yield store
            return
        try:
            store = open_store(ref, options=registry)
        except NotFoundError:  # a mirror not made yet: everything would be copied
            store = MemoryStore(str(ref))
        try:
            yield store
        finally:
            store.close()

    with _report_file(report) as write_line:
        return run_sync(parsed, open_source, open_destination, destination_key=_store_identity,
                        images_at_once=images_at_once, concurrency=concurrency, dry_run=dry_run, progress=progress,
                        shard=chosen, on_tag=write_line, trust=_trust(trust))


@contextmanager
def _report_file(path: str | None) -> Iterator[TagListener | None]:
    """sync's --report: a JSON line per image and tag, each written whole and flushed as it comes."""
    if path is None:
        yield None
        return
    with ExitStack() as stack:
        try:
            out = stack.enter_context(builtins.open(path, "w", encoding="utf-8"))
        except OSError as exc:
            raise UsageError(f"--report {path}: cannot write it: {exc.strerror or exc}") from None

        def write_line(outcome: ImageOutcome, result: TagOutcome | None) -> None:
            out.write(json.dumps(outcome.report_line(result), ensure_ascii=False) + "\n")
            out.flush()

        yield write_line


def referrers(ref: RefLike, *, artifact_type: str | None = None, recursive: bool = False,
              registry: RegistryOptions | None = None) -> ReferrerNode:
    """What refers to the manifest or index REF names (`oras discover`): by the registry's referrers API,
    else the `sha256-<hex>` fallback tag; in a layout, index.json entries with that subject and the tag."""
    reference = _ref(ref)
    with opened(reference, options=registry) as store:
        root = resolve_in(store, reference.target, reference=str(reference), hint=_hint(reference)).root
        return discover(store, unnamed(root), artifact_type=artifact_type, recursive=recursive)


def verify(ref: RefLike, policy: TrustLike, select: Selector | None = None, *,
           registry: RegistryOptions | None = None) -> Verification:
    """Check that what REF names is signed as `policy` asks (a VerifySpec, a TrustPolicy, or a policy file's
    path): the Verification names the signature that vouched and every one tried before it. None vouching is
    NotTrustedError (exit 7), whose `verification` lists every signature tried and why each failed.

    With selectors, a signature of the root REF names or of the manifest selected under it counts (a signed
    index vouches for the manifests it lists by digest); a referrer selected with `referrers` must be signed
    itself (its subject's signature says nothing of what others attach to it)."""
    reference = _ref(ref)
    gate = _gate(reference, policy)
    assert gate is not None
    with opened(reference, options=registry) as store:
        resolved = resolve_in(store, reference.target, select, reference=str(reference), hint=_hint(reference))
        return gate.check(store, resolved.vouched_by, reference=str(reference))


def sign(ref: RefLike, key: str, *, password: str | bytes | None = None, bundle: bool = False,
         annotations: Sequence[str] | Mapping[str, str] | None = None, select: Selector | None = None,
         registry: RegistryOptions | None = None) -> Signed:
    """Sign what REF names with a cosign private key (cosign's encrypted key, or a plain PEM key), where cosign
    writes signatures: the `sha256-<hex>.sig` tag (the default), or with `bundle` a sigstore bundle referrer.

    An encrypted key's password is `password`, else the COSIGN_PASSWORD environment variable. The digest
    signed is the one REF resolves to, once; `annotations` go into the payload's `optional` (legacy form)."""
    from ._graph.sign import sign_bundle, sign_legacy
    from ._graph.verify import signed_name
    from ._trust.cosignkey import load_private_key

    reference = _ref(ref)
    secret = password if password is not None else os.environ.get("COSIGN_PASSWORD")
    private = load_private_key(key, secret.encode() if isinstance(secret, str) else secret)
    extra = parse_annotations(annotations)
    if bundle and extra:
        raise UsageError("annotations are written into the legacy payload; a bundle signature carries none")
    with _writing(reference, registry) as store:
        resolved = resolve_in(store, reference.target, select, reference=str(reference), hint=_hint(reference))
        subject = unnamed(resolved.descriptor)
        if bundle:
            return sign_bundle(store, subject, private, signed_name(reference))
        return sign_legacy(store, subject, private, signed_name(reference), extra)


def copy_advice(exc: OcisiftError, src: str, dst: str) -> str:
    """What to do next, for the way a copy failed: the destination never names half a graph, so most
    failures are safe to retry, and a retry moves only what is missing."""
    if isinstance(exc, AuthError):
        return "check the credentials for the registry that refused (ocisift login HOST), then copy again"
    if type(exc) not in (OcisiftError, IntegrityError, IncompleteTransfer):
        return ""  # the content or the request is what is wrong: the message says what; a retry would not help
    if type(exc) is IntegrityError:
        return (f"{src} served bytes that do not match their digest; nothing that depends on them was "
                f"written to {dst} (an archive destination is left as it was)")
    return (f"{dst} names nothing new yet (an archive is left as it was); run the same copy again: "
            "what already arrived is skipped")


def _with_advice(exc: OcisiftError, advice: str) -> OcisiftError:
    """The same error (class, exit code, candidates), its message followed by the advice."""
    if not advice:
        return exc
    clone = type(exc).__new__(type(exc))
    clone.__dict__.update(exc.__dict__)
    clone.message = f"{exc.message}\n{advice}"
    clone.args = (clone.message,)
    return clone


def open(ref: RefLike, *, writable: bool = False, registry: RegistryOptions | None = None) -> Reader:
    """A store opened from a reference; check its capabilities with isinstance (Tagger, Pusher, …)."""
    return open_store(_ref(ref), writable=writable, options=registry)


def parse_annotations(items: Sequence[str] | Mapping[str, str] | None) -> dict[str, str]:
    """`KEY=VALUE` strings (or a mapping) as a dict."""
    if items is None:
        return {}
    if isinstance(items, Mapping):
        return dict(items)
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key or not sep:
            raise UsageError(f"invalid annotation {item!r}: expected KEY=VALUE")
        out[key] = value
    return out


def _annotation_file(path: str) -> dict[str, dict[str, str]]:
    try:
        with builtins.open(path, "rb") as fh:  # this module's open() opens stores
            loaded = jsontext.load(fh)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read annotation file {path}: {exc}") from None
    if not isinstance(loaded, dict) or not all(isinstance(v, dict) for v in loaded.values()):
        raise UsageError(f"{path}: expected an object of objects ($manifest, $config, file names)")
    return {k: {str(a): str(b) for a, b in v.items()} for k, v in loaded.items()}


def push(
    ref: RefLike,
    files: Sequence[str],
    *,
    artifact_type: str | None = None,
    annotations: Sequence[str] | Mapping[str, str] | None = None,
    annotation_file: str | None = None,
    config: str | None = None,
    platform: str | Platform | None = None,
    subject: RefLike | None = None,
    tags: Sequence[str] = (),
    registry: RegistryOptions | None = None,
    progress: Progress | None = None,
) -> Pushed:
    """Push files and directories as an ORAS-compatible artifact to a registry, layout or archive."""
    from ._graph.push import check_pushable, push_artifact

    reference = _ref(ref)
    check_pushable(files)  # a directory pull would refuse is refused before a layout is made for it
    per_file = _annotation_file(annotation_file) if annotation_file is not None else {}
    subject_desc = resolve(subject, registry=registry).descriptor if subject is not None else None
    plat = Platform.parse(platform) if isinstance(platform, str) else platform
    # A referrer pushed to `host/repo` names nothing: `latest` is Docker's default, not the user's wish,
    # and moving it to an SBOM would break whoever pulls latest.
    target = Target() if subject_desc is not None and reference.implicit_tag else reference.target
    with _writing(reference, registry, create=True) as store:
        return push_artifact(store, target, files, artifact_type=artifact_type,
                             annotations=parse_annotations(annotations), file_annotations=per_file,
                             config=config, platform=plat, subject=subject_desc, tags=tags, progress=progress)


def index_create(
    dst: RefLike,
    sources: Sequence[RefLike],
    *,
    annotations: Sequence[str] | Mapping[str, str] | None = None,
    platform_of: Mapping[str, str] | None = None,
    artifact_type: str | None = None,
    registry: RegistryOptions | None = None,
) -> Pushed:
    """Compose an image index from manifests or indexes in any stores, copying their content into DST."""
    from ._graph.compose import plan_entry, write_index
    from ._graph.copy import GraphCopier

    dst_ref = _ref(dst)
    given = dict(platform_of or {})
    entries: list[Descriptor] = []
    with ExitStack() as sources_open:  # every source read and its entry known before DST is made or changed
        planned = []
        for src in sources:
            src_ref = _ref(src)
            platform = given.pop(str(src), None)
            source = sources_open.enter_context(opened(src_ref, options=registry))
            root, entry = plan_entry(source, src_ref.target, Platform.parse(platform) if platform else None,
                                     str(src_ref))
            planned.append((source, root, str(src_ref)))
            entries.append(entry)
        if given:
            raise UsageError(f"--platform-of names sources that were not given: {', '.join(given)}")
        with _writing(dst_ref, registry, create=True) as destination:
            for source, root, name in planned:
                GraphCopier(source, destination, CopyResult(name, destination.location)).copy(root)
            return write_index(destination, dst_ref.target, entries, annotations=parse_annotations(annotations),
                               artifact_type=artifact_type)


def index_add(dst: RefLike, src: RefLike, *, platform: str | None = None,
              registry: RegistryOptions | None = None) -> Pushed:
    """Add what SRC names to the index DST names; DST's name moves to the new index."""
    from ._graph.compose import bring_entry, current_index, write_index

    dst_ref, src_ref = _ref(dst), _ref(src)
    with _writing(dst_ref, registry) as destination:
        _, index = current_index(destination, dst_ref.target, str(dst_ref))
        with opened(src_ref, options=registry) as source:
            entry = bring_entry(source, src_ref.target, destination, Platform.parse(platform) if platform else None,
                                str(src_ref))
        return write_index(destination, _moving_name(dst_ref), [*index.manifests, entry],
                           annotations=index.annotations, artifact_type=index.artifact_type)


def index_remove(dst: RefLike, digest: str, *, registry: RegistryOptions | None = None) -> Pushed:
    """Remove the entry DIGEST from the index DST names; DST's name moves to the new index."""
    from ._graph.compose import current_index, without_entry, write_index

    dst_ref = _ref(dst)
    gone = Digest.parse(digest)
    with _writing(dst_ref, registry) as destination:
        root, index = current_index(destination, dst_ref.target, str(dst_ref))
        return write_index(destination, _moving_name(dst_ref), without_entry(index, gone, root),
                           annotations=index.annotations, artifact_type=index.artifact_type)


def _moving_name(ref: Reference) -> Target | None:
    """An edited index takes over DST's name; a pinned or unnamed DST leaves naming to the caller."""
    return ref.target if ref.target.named_tag else None


def tag(src: RefLike, new_tags: Sequence[str], *, registry: RegistryOptions | None = None) -> list[str]:
    """Give what SRC names more tags in the same store."""

    check_tags(new_tags)
    reference = _ref(src)
    with _writing(reference, registry) as store:
        tagger = require(store, Tagger, "tag content")
        root = resolve_in(store, reference.target, reference=str(reference), hint=_hint(reference)).root
        for name in new_tags:
            tagger.tag(unnamed(root), name)  # the entry's other names stay with it, not with the new tag
    return list(new_tags)


def untag(ref: RefLike, *, registry: RegistryOptions | None = None) -> int:
    """Remove the tag REF names (content stays until gc); returns how many entries it named."""
    reference = _ref(ref)
    name = reference.target.named_tag if not isinstance(reference, LayoutReference) or reference.image is None \
        else str(reference.image)
    if name is None or reference.target.digest is not None:
        raise UsageError(f"untag takes a reference with a tag, such as oci:./layout:old (got {reference})")
    with _writing(reference, registry) as store:
        return require(store, Untagger, "remove tags").untag(name)


def delete(ref: RefLike, *, registry: RegistryOptions | None = None) -> Deleted:
    """Remove the manifest or index REF@DIGEST names (a layout then needs gc to drop its blobs)."""
    reference = _ref(ref)
    digest = reference.target.digest
    if digest is None:
        raise UsageError(f"delete takes a reference pinned by digest, such as oci:./layout@sha256:… (got {reference})")
    with _writing(reference, registry) as store:
        deleter = require(store, Deleter, "delete manifests")
        roots = store.resolve(reference.target)
        if not roots:
            raise NotFoundError(f"{digest} is not in {store.location}")
        parents = referencing_indexes(store, digest)
        if parents:
            raise ConflictError(
                f"{digest} is listed by the index {parents[0]} that {store.location} still holds; "
                f"remove it from there first (ocisift index remove REF {digest}) or delete that index")
        deleter.delete(roots[0])
        # a store whose blobs are swept by gc keeps them; a registry collects its own
        return Deleted(roots[0], blobs_stay=isinstance(store, BlobSweeper))


def store_location(ref: RefLike) -> str:
    """The store REF lives in, without tag or digest: `oci:./layout`, `docker-archive:FILE`, `host/repo`."""
    reference = _ref(ref)
    if isinstance(reference, RegistryReference):
        return reference.image.name
    if isinstance(reference, LayoutReference):
        return f"{reference.scheme}:{reference.path}"
    return f"{reference.kind}:{reference.path}"


def _store_identity(ref: Reference) -> str:
    """One key per store however its path is spelled (`./x`, `a/../x`, a symlink): writers of one archive
    must be told apart from writers of two."""
    if isinstance(ref, RegistryReference):
        return ref.image.name
    kind = ref.scheme if isinstance(ref, LayoutReference) else ref.kind
    return f"{kind}:{os.path.realpath(ref.path)}"


def gc(ref: RefLike, *, grace_seconds: float = DEFAULT_GRACE_SECONDS, dry_run: bool = False) -> GcResult:
    """Remove blobs that nothing reachable from the store's roots uses."""
    GRACE_SECONDS.check(grace_seconds)
    reference = _ref(ref)
    with _writing(reference, None) as store:
        if not reference.target.tagless and isinstance(store, RootLister):
            raise UsageError(f"gc works on a whole layout; give it without a tag or digest (got {reference})")
        return collect_garbage(store, grace_seconds=grace_seconds, dry_run=dry_run)


def login(host: str, username: str, password: str, *, registry: RegistryOptions | None = None,
          config_path: str | None = None) -> str:
    """Check the credentials against HOST, then store them in Docker's config.json; returns its path.

    A config.json that could not be rewritten whole is refused before the password goes anywhere."""
    from ._core.options import secret_problem, username_problem
    from ._stores.registry.credentials import Credentials, check_rewritable, docker_config_path, store_credentials
    from ._stores.registry.session import check_login, forget_sessions

    host = _registry_host(host)
    for what, problem in (("username", username_problem(username)), ("password", secret_problem(password))):
        if problem:
            raise UsageError(f"the {what} {problem}")
    if not password:
        raise UsageError("the password is empty")
    path = config_path or docker_config_path()
    check_rewritable(path)
    creds = Credentials(username, password)
    check_login(host, creds, registry or RegistryOptions())
    path = store_credentials(host, creds, path)
    forget_sessions(host)  # this process's sessions of HOST found its credentials before they changed
    return path


def logout(host: str, *, config_path: str | None = None) -> str:
    """Remove HOST's credentials from Docker's config.json (every entry that names it); returns its path."""
    from ._stores.registry.credentials import remove_credentials
    from ._stores.registry.session import forget_sessions

    host = _registry_host(host)
    path = remove_credentials(host, config_path)
    forget_sessions(host)
    return path


def _registry_host(text: str) -> str:
    """HOST[:PORT], also taken as the URL Docker users paste (`https://HOST/v1/`), as docker login takes it."""
    from ._core.reference import is_registry_host
    from ._stores.registry.credentials import hostname_of
    from ._stores.registry.dockerconfig import quoted

    host = hostname_of(text) if isinstance(text, str) else ""
    if not is_registry_host(host):
        raise UsageError(f"{quoted(str(text))} is not a registry host (HOST[:PORT], such as ghcr.io or "
                         "localhost:5000)")
    return host


def sample(path: str) -> str:
    """Build the sample layout (the demo's content) at PATH; returns its reference."""
    from ._demo import build_sample_layout

    build_sample_layout(path)
    return f"oci:{path}"
