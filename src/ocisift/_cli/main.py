"""Command line: parse arguments, call the API, render. Nothing else lives here."""

from __future__ import annotations

import atexit
import gc as garbage  # `gc` is the name of a command below
import json
import math
import os
import signal
import sys
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext, suppress
from typing import TYPE_CHECKING, Any, NoReturn

import click

from .._core import bounds, cancel
from .._core.errors import OcisiftError, UsageError
from .._core.version import __version__
from .text import printable, printable_lines

if TYPE_CHECKING:  # imported where used: `ocisift --version` and `--help` stay fast
    from .._core.limits import ExtractLimits
    from .._core.options import RegistryOptions
    from .._core.progress import Progress
    from .._core.trustspec import Trust
    from .._graph.select import Selector



def ints(bound: bounds.IntBound) -> click.IntRange:
    """The click type of an integer option: the API's range, with click's usual message past it."""
    return click.IntRange(bound.low, bound.high)


class FiniteFloatRange(click.FloatRange):
    """click.FloatRange that also refuses nan and inf (a NaN compares false with both ends of a range)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


def floats(bound: bounds.FloatBound) -> FiniteFloatRange:
    return FiniteFloatRange(bound.low, bound.high if math.isfinite(bound.high) else None, min_open=bound.low_open)


CONCURRENCY = click.option("--concurrency", type=ints(bounds.CONCURRENCY), default=4, show_default=True,
                           help="Blobs in flight at once.")
QUIET = click.option("--quiet", "-q", is_flag=True,
                     help="No progress bars; print only the pinned reference (as docker -q does).")

FORMAT = click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
    help="Output for people or for scripts (errors included).",
)


def selector_options(f: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--platform", "platform", multiple=True, metavar="OS/ARCH[/VARIANT][:OS.VERSION]",
                     help="Select by platform (containerd matching; os.version exact when given)."),
        click.option("--artifact-type", metavar="GLOB", help="Select manifests by artifactType."),
        click.option("--media-type", metavar="GLOB", help="Select manifests by their media type."),
        click.option("--annotation", "annotations", multiple=True, metavar="KEY[=GLOB]",
                     help="Select by annotation (repeatable, all must hold; KEY alone means present)."),
        click.option("--referrers", is_flag=True, help="Also consider artifacts attached via subject."),
        click.option("--first", is_flag=True, help="Accept the first match in graph order instead of failing."),
        click.option("--max-depth", type=ints(bounds.MAX_DEPTH), default=16, show_default=True,
                     help="Deepest index nesting walked before the graph is refused."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def tag_choice(f: Callable[..., Any]) -> Callable[..., Any]:
    """--semver and --tag-regex: Flux's `ref.semver` and `semverFilter`."""
    f = click.option("--tag-regex", metavar="RE",
                     help="Only tags this regular expression matches (searched, as Flux's semverFilter).")(f)
    return click.option("--semver", metavar="RANGE",
                        help="The highest tag inside RANGE ('>=1.0.0 <2.0.0', '~1.2', '^1', '1.x'); "
                             "REFERENCE then names a repository.")(f)


def registry_options(f: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--plain-http/--https", "plain_http", default=None,
                     help="Talk HTTP or HTTPS to the registry (default: HTTPS, but HTTP for loopback and localhost "
                          "unless --ca-file or a certs.d directory is there for it)."),
        click.option("--insecure", is_flag=True, help="Do not verify the registry's TLS certificate."),
        click.option("--ca-file", type=click.Path(dir_okay=False, exists=True),
                     help="Trust only this CA bundle (instead of the system's)."),
        click.option("--certs-dir", "certs_dirs", multiple=True, type=click.Path(file_okay=False),
                     help="Look for HOST:PORT/ certificate directories here (repeatable; instead of "
                          "/etc/containers/certs.d, /etc/docker/certs.d and ~/.config/containers/certs.d)."),
        click.option("--username", "-u", help="Registry user (else Docker's config.json is used)."),
        click.option("--password-stdin", is_flag=True, help="Read the registry password from standard input."),
        click.option("--timeout", type=floats(bounds.TIMEOUT), default=30.0, show_default=True,
                     help="Network timeout in seconds (at most a day)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


MAX_PASSWORD_BYTES = 64 * 1024


_TRUST_FLAGS = (
    ("key", "keys", "FILE", True, "cosign public key (PEM; repeatable, any one suffices)."),
    ("certificate-identity", "identity", "SAN", False, "Keyless: the signer's identity (e-mail, URI), exact."),
    ("certificate-identity-regexp", "identity_regexp", "RE", False, "Keyless: the signer's identity, as a regexp."),
    ("certificate-oidc-issuer", "issuer", "URL", False, "Keyless: the OIDC issuer, exact."),
    ("certificate-oidc-issuer-regexp", "issuer_regexp", "RE", False, "Keyless: the OIDC issuer, as a regexp."),
    ("trusted-root", "trusted_root", "FILE", False, "Keyless: sigstore's trusted_root.json (verified offline)."),
    ("trust-policy", "trust_policy", "FILE", False, "Notation: its trustpolicy.json."),
    ("trust-store", "trust_store", "DIR", False, "Notation: its trust store (holding x509/ca/NAME/)."),
)


def trust_options(prefix: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The verification flags: bare on `verify` (cosign's and notation's names), `--verify-…` on pull, copy
    and sync, where they guard what is used."""

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        options = [click.option(f"--{prefix}{flag}", f"trust_{dest}", multiple=multiple, metavar=metavar, help=text)
                   for flag, dest, metavar, multiple, text in _TRUST_FLAGS]
        options.append(click.option(f"--{prefix}match-reference", "trust_match_reference", is_flag=True,
                                    help="cosign: the payload must name this repository (docker-reference)."))
        options.append(click.option(f"--{prefix}policy", "trust_policy_file", metavar="FILE",
                                    help="A trust policy file: verification per scope (see the README's Trust)."))
        for option in reversed(options):
            f = option(f)
        return f

    return decorate


def _trust(kw: dict[str, Any]) -> Trust | None:
    """The verification the flags ask for; None when none is asked."""
    from .._core.trustspec import IdentityMatch, ScopedVerify, TrustPolicy, VerifySpec

    keys, policy_file = kw.pop("trust_keys"), kw.pop("trust_policy_file")
    identity, identity_re = kw.pop("trust_identity"), kw.pop("trust_identity_regexp")
    issuer, issuer_re = kw.pop("trust_issuer"), kw.pop("trust_issuer_regexp")
    root, notation_policy, store = kw.pop("trust_trusted_root"), kw.pop("trust_trust_policy"), kw.pop("trust_trust_store")
    match_reference = kw.pop("trust_match_reference")
    keyless = any(v is not None for v in (identity, identity_re, issuer, issuer_re))
    specs: list[VerifySpec] = []
    if keys or keyless or root is not None:
        identities = (IdentityMatch(identity, identity_re, issuer, issuer_re),) if keyless else ()
        specs.append(VerifySpec("cosign", tuple(keys), identities, root, match_reference=match_reference))
    elif match_reference:
        raise UsageError("--match-reference checks a cosign payload: give --key or a keyless identity too")
    if notation_policy is not None or store is not None:
        specs.append(VerifySpec("notation", trust_policy=notation_policy, trust_store=store))
    if policy_file is not None:
        if specs:
            raise UsageError("a policy file holds the whole verification: give it alone, without key, keyless "
                             "or notation flags")
        from .._core.specfile import load_trust_policy  # YAML, only when a policy file is given

        return load_trust_policy(policy_file)
    if len(specs) > 1:  # cosign or notation, whichever signature there is
        return TrustPolicy((ScopedVerify("*", "verify", tuple(specs)),), ScopedVerify("*", "reject"),
                           "the command line")
    return specs[0] if specs else None


def _registry(kw: dict[str, Any]) -> RegistryOptions:
    from .._core.options import RegistryOptions

    password = None
    if kw.pop("password_stdin"):
        if kw.get("username") is None:
            raise UsageError("--password-stdin needs --username")
        password = _password_from_stdin()
    elif kw.get("username") is not None:
        raise UsageError("--username needs --password-stdin: the password is read from standard input")
    certs_dirs = kw.pop("certs_dirs")
    return RegistryOptions(plain_http=kw.pop("plain_http"), insecure=kw.pop("insecure"), ca_file=kw.pop("ca_file"),
                           certs_dirs=tuple(certs_dirs) if certs_dirs else None, username=kw.pop("username"),
                           password=password, timeout=kw.pop("timeout"))


def _password_from_stdin() -> str:
    """The first line of standard input without its line ending, as bytes (a password that is not UTF-8
    keeps them, as surrogate escapes), at most MAX_PASSWORD_BYTES: `< /dev/zero` is not read forever."""
    stream = sys.stdin
    try:
        binary = getattr(stream, "buffer", None)
        if binary is not None:
            raw: bytes = binary.readline(MAX_PASSWORD_BYTES + 3).rstrip(b"\r\n")
            size, text = len(raw), raw.decode("utf-8", "surrogateescape")
        else:  # a text stream without bytes under it (tests, embedding)
            text = str(stream.readline(MAX_PASSWORD_BYTES + 3) if stream is not None else "").rstrip("\r\n")
            size = len(text)
    except (OSError, ValueError) as exc:
        raise UsageError(f"--password-stdin could not read standard input: {exc}") from None
    if size > MAX_PASSWORD_BYTES:
        raise UsageError(f"--password-stdin read more than {MAX_PASSWORD_BYTES // 1024} KiB without a line end")
    if not text:
        raise UsageError("--password-stdin read an empty password")
    return text


def _selector(platform: tuple[str, ...], artifact_type: str | None, media_type: str | None,
              annotations: tuple[str, ...], referrers: bool, first: bool, max_depth: int = 16) -> Selector:
    from .._graph.select import Selector

    return Selector.build(list(platform) or None, artifact_type, media_type, annotations, referrers, first,
                          max_depth)


def _progress(fmt: str, quiet: bool = False) -> AbstractContextManager[Progress | None]:
    """Bars on a terminal for people; nothing for scripts, pipes or --quiet."""
    if fmt == "text" and not quiet and sys.stderr.isatty():
        from .progress import RichProgress

        return RichProgress()
    return nullcontext(None)


def _size(n: int) -> str:
    """Bytes for people: 512 B, 1.5 MiB."""
    if n < 1024:
        return f"{n} B"
    value, unit = n / 1024, "KiB"
    for bigger in ("MiB", "GiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.1f} {unit}"


def _emit_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2))


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="ocisift")
@click.option("--debug", is_flag=True,
              help="Trace every registry request and response on stderr (secrets redacted).")
def main(debug: bool) -> None:
    """Find, select and move content inside OCI artifacts: registries, layouts and layout archives.

    \b
    Example:
      ocisift tree oci:./layout
      ocisift pull oci:./layout:1.2 --platform linux/arm64:el9 -o out
    """
    if debug:
        from .debug import http_trace

        click.get_current_context().with_resource(http_trace())


@main.command()
@click.argument("reference")
@selector_options
@tag_choice
@registry_options
@FORMAT
def resolve(reference: str, fmt: str, semver: str | None, tag_regex: str | None, **sel: Any) -> None:
    """Print the digest a REFERENCE names (with selectors: the one manifest selected).

    \b
    Example:
      ocisift resolve oci:./layout:1.2
      ocisift resolve oci:./layout:1.2 --platform linux/arm64:el9
      ocisift resolve oci:./store/alpine:3.16 --format json
      ocisift resolve localhost:5000/acme/app --semver '>=1.0.0 <2.0.0'
    """
    from .. import _api as api

    registry = _registry(sel)
    resolved = api.resolve(reference, _selector(**sel), registry=registry, semver=semver, tag_regex=tag_regex)
    if fmt == "json":
        _emit_json({**resolved.to_json(), **({"tag": resolved.target.tag} if semver else {})})
    else:
        if semver:
            click.echo(f"tag {printable(resolved.target.tag or '')}", err=True)
        click.echo(str(resolved.descriptor.digest))


@main.command()
@click.argument("reference")
@click.option("--referrers", is_flag=True, help="Show artifacts attached via subject.")
@click.option("--max-depth", type=ints(bounds.MAX_DEPTH), default=16, show_default=True,
              help="Deepest index nesting walked before the graph is refused.")
@registry_options
@FORMAT
def tree(reference: str, referrers: bool, max_depth: int, fmt: str, **kw: Any) -> None:
    """Show the graph under REFERENCE: nested indexes, platforms, artifact types, layers.

    A tagless layout reference shows every entry of index.json.

    \b
    Example:
      ocisift tree oci:./layout
      ocisift tree oci-archive:./image.tar:latest --format json
    """
    from .. import _api as api

    nodes = api.tree(reference, referrers=referrers, max_depth=max_depth, registry=_registry(kw))
    if fmt == "json":
        _emit_json([n.to_json() for n in nodes])
        return
    from .render import render_tree

    render_tree(nodes)


@main.group()
def manifest() -> None:
    """Manifest commands."""


@manifest.command("get")
@click.argument("reference")
@selector_options
@registry_options
@FORMAT
def manifest_get(reference: str, fmt: str, **sel: Any) -> None:
    """Print the exact bytes of the manifest or index REFERENCE names.

    \b
    Example:
      ocisift manifest get oci:./layout:7.2
      ocisift manifest get oci:./layout:1.2 --platform linux/amd64:el8 > m.json
    """
    from .. import _api as api

    registry = _registry(sel)
    raw = api.manifest(reference, _selector(**sel), registry=registry)
    if fmt == "json":
        _emit_json(json.loads(raw))
    else:
        sys.stdout.buffer.write(raw)
        sys.stdout.buffer.flush()


@main.command()
@click.argument("reference")
@click.option("--all", "show_all", is_flag=True, help="Also list the sha256-<hex> referrer fallback tags.")
@tag_choice
@registry_options
@FORMAT
def tags(reference: str, show_all: bool, semver: str | None, tag_regex: str | None, fmt: str, **kw: Any) -> None:
    """List a repository's tags, or the names and tags a layout's index.json holds.

    The sha256-<hex> tags that list referrers (the referrers tag schema) are
    shown only with --all. With --semver, the tags inside the range in version
    order: the last is the one resolve, pull and copy --semver choose.

    \b
    Example:
      ocisift tags oci:./layout
      ocisift tags localhost:5000/acme/app --all --format json
      ocisift tags localhost:5000/acme/app --semver '^1' --tag-regex '^v'
    """
    from .. import _api as api

    names = api.tags(reference, referrer_tags=show_all, registry=_registry(kw), semver=semver, tag_regex=tag_regex)
    if fmt == "json":
        _emit_json({"tags": names, **({"chosen": names[-1] if names else None} if semver else {})})
    else:
        for name in names:
            click.echo(printable(name))


def _limits(max_extract_size: int | None, max_ratio: float | None) -> ExtractLimits:
    """--max-extract-size and --max-ratio, over the defaults (pull unpacks; copy into a docker archive does)."""
    from .._unpack.limits import ExtractLimits

    limits = ExtractLimits()
    return ExtractLimits(
        max_bytes=max_extract_size if max_extract_size is not None else limits.max_bytes,
        max_ratio=max_ratio if max_ratio is not None else limits.max_ratio,
    )


@main.command()
@click.argument("reference")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="Output directory.")
@selector_options
@click.option("--layer-media-type", metavar="GLOB", help="Take layers of this media type.")
@click.option("--layer-index", type=ints(bounds.LAYER_INDEX), help="Position among the matching layers (default 0).")
@click.option("--all-layers", is_flag=True, help="Take every matching layer, in manifest order.")
@click.option("--layer-annotation", multiple=True, metavar="KEY[=GLOB]", help="Take layers with this annotation.")
@click.option("--title", help="Take the layer whose org.opencontainers.image.title is TITLE.")
@click.option("--mode", type=click.Choice(["copy", "extract", "extract-all", "layer-per-dir"]), default="copy",
              show_default=True, help="Write blobs as files, unpack one, unpack all into one dir, or one dir each.")
@click.option("--name", help="File name for --mode copy of one layer.")
@click.option("--include", multiple=True, metavar="GLOB", help="Only write matching paths when unpacking.")
@click.option("--exclude", multiple=True, metavar="GLOB", help="Skip matching paths when unpacking.")
@click.option("--overwrite", is_flag=True, help="Let later artifact layers replace files of earlier ones.")
@click.option("--dry-run", is_flag=True, help="Print the plan; fetch no blob and write nothing.")
@click.option("--max-extract-size", type=ints(bounds.MAX_EXTRACT_BYTES), metavar="BYTES",
              help="Cap on unpacked bytes (default 16 GiB).")
@click.option("--max-ratio", type=floats(bounds.MAX_RATIO), help="Cap on decompression ratio (default 250).")
@click.option("--require-xattrs", is_flag=True,
              help="Fail when an image layer's extended attribute cannot be set (by default: a note on stderr).")
@CONCURRENCY
@tag_choice
@trust_options("verify-")
@registry_options
@QUIET
@FORMAT
def pull(reference: str, output: str, fmt: str, layer_media_type: str | None, layer_index: int | None,
         all_layers: bool, layer_annotation: tuple[str, ...], title: str | None, mode: str, name: str | None,
         include: tuple[str, ...], exclude: tuple[str, ...], overwrite: bool, dry_run: bool,
         max_extract_size: int | None, max_ratio: float | None, require_xattrs: bool, concurrency: int,
         quiet: bool, semver: str | None, tag_regex: str | None, **sel: Any) -> None:
    """Select one manifest under REFERENCE and write the chosen layers to OUTPUT.

    Only the selected blobs are read; nothing reaches OUTPUT unless everything succeeded.
    Image layers unpack as a root filesystem: exact modes, owners (as root), extended
    attributes, times, device nodes (as root) and FIFOs.

    \b
    Example:
      ocisift pull oci:./layout:1.2 --platform linux/arm64:el9 -o repo --mode extract
      ocisift pull oci:./layout:7.2 --layer-media-type 'application/vnd.timoni.*' \\
          --mode extract-all -o module
      ocisift pull oci:./layout:example.com/acme/product:2.0 \\
          --artifact-type application/spdx+json -o sbom --format json
      ocisift pull localhost:5000/acme/app:1.0 -o out --verify-key cosign.pub
    """
    from .. import _api as api
    from .._unpack.layers import LayerSelector

    limits = _limits(max_extract_size, max_ratio)
    registry = _registry(sel)
    trust = _trust(sel)
    with _progress(fmt, quiet) as progress:
        result = api.pull(
            reference, output, _selector(**sel), registry=registry,
            layers=LayerSelector.build(layer_media_type, layer_index, all_layers, layer_annotation, title),
            mode=mode,  # type: ignore[arg-type]
            name=name, include=include, exclude=exclude, overwrite=overwrite, dry_run=dry_run, limits=limits,
            progress=progress, concurrency=concurrency, semver=semver, tag_regex=tag_regex,
            require_xattrs=require_xattrs, trust=trust,
        )
    if fmt == "json":
        _emit_json(result.to_json())
        return
    for note in result.notes:
        click.echo(f"note: {printable(note)}", err=True)
    if result.verification is not None and not quiet:
        click.echo(f"verified {printable(result.verification.summary())}", err=True)
    if quiet:
        click.echo(printable(result.resolved.pinned))
        return
    from .render import render_pull

    render_pull(result)


@main.command()
@click.argument("source")
@click.argument("destination")
@click.option("--platform", "platforms", multiple=True, metavar="OS/ARCH[/VARIANT][:OS.VERSION]",
              help="Copy only these platforms (repeatable; several make a new index of just them).")
@click.option("--referrers", is_flag=True,
              help="Also copy the referrers (signatures, SBOMs, attestations) of every manifest, recursively.")
@click.option("--all-tags", is_flag=True,
              help="Copy every tag of the SOURCE repository (filtered by --semver/--tag-regex) to DESTINATION.")
@click.option("--manifest-format", type=click.Choice(["oci"]),
              help="Convert Docker manifests and lists to OCI's (new digests, printed); `--format oci` too.")
@click.option("--include-nondistributable", is_flag=True,
              help="Copy non-distributable blobs (descriptors with urls) too: from the source, else their HTTPS URLs.")
@click.option("--max-extract-size", type=ints(bounds.MAX_EXTRACT_BYTES), metavar="BYTES",
              help="Cap on bytes unpacked into a docker-archive destination (default 16 GiB).")
@click.option("--max-ratio", type=floats(bounds.MAX_RATIO), help="Cap on decompression ratio there (default 250).")
@tag_choice
@CONCURRENCY
@trust_options("verify-")
@registry_options
@QUIET
@click.option("--format", "fmt", type=click.Choice(["text", "json", "oci"]), default="text", show_default=True,
              help="Output for people or for scripts (errors included); `oci` (skopeo's spelling) is "
                   "--manifest-format oci with text output.")
def copy(source: str, destination: str, platforms: tuple[str, ...], referrers: bool, all_tags: bool,
         manifest_format: str | None, include_nondistributable: bool, max_extract_size: int | None,
         max_ratio: float | None, semver: str | None, tag_regex: str | None, concurrency: int, quiet: bool,
         fmt: str, **kw: Any) -> None:
    """Copy the graph SOURCE names into DESTINATION (registry or layout), skipping blobs already there.

    Digests are kept (Docker media types too); --format oci converts to OCI's as
    skopeo does. Non-distributable blobs stay at their URLs unless asked for.

    \b
    Example:
      ocisift copy oci:./layout:1.2 localhost:5000/acme/yum-repo:1.2
      ocisift copy localhost:5000/acme/yum-repo:1.2 oci:./mirror:1.2 --platform linux/amd64:el9
      ocisift copy oci:./ci/el8 oci:./merged --format json
      ocisift copy --all-tags --referrers localhost:5000/acme/app oci-archive:bundle.tar
      ocisift copy localhost:5000/acme/app oci:./mirror --semver '~1.2'
      ocisift copy --referrers --verify-key cosign.pub localhost:5000/acme/app:1.0 oci:./mirror:1.0
    """
    from .. import _api as api

    registry = _registry(kw)
    trust = _trust(kw)
    if fmt == "oci":
        fmt, manifest_format = "text", "oci"
    options: dict[str, Any] = dict(platforms=platforms, concurrency=concurrency, registry=registry,
                                   referrers=referrers, semver=semver, tag_regex=tag_regex,
                                   manifest_format=manifest_format, include_nondistributable=include_nondistributable,
                                   limits=_limits(max_extract_size, max_ratio), trust=trust)
    with _progress(fmt, quiet) as progress:
        if all_tags:
            results = api.copy_tags(source, destination, progress=progress, **options)
        else:
            results = [api.copy(source, destination, progress=progress, **options)]
    if fmt == "json":
        _emit_json(results[0].to_json() if not all_tags else {"tags": [r.to_json() for r in results]})
        return
    for note in dict.fromkeys(n for r in results for n in r.notes):
        click.echo(f"note: {printable(note)}", err=True)
    for result in results:
        if quiet:
            click.echo(result.destination)
            continue
        if result.verification is not None:
            click.echo(f"verified {printable(result.verification.summary())}", err=True)
        for old, new in result.converted.items():
            click.echo(f"converted {old} -> {new}")
        for digest in result.external:
            click.echo(f"left at its URLs: {digest}")
        what = (f"copied {len(result.copied)}, mounted {len(result.mounted)}, skipped {len(result.skipped)}"
                + (f", {len(result.referrers)} referrers" if referrers else ""))
        chose = f"tag {printable(result.tag)}: " if result.tag else ""
        new = f", {len(result.referrers)} new referrers ({_size(result.bytes_copied)} moved)" \
            if result.referrers else ""
        state = f"unchanged{new}" if result.unchanged else f"{what} ({_size(result.bytes_copied)} moved)"
        click.echo(f"{chose}{state}: {printable(result.destination)}")


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Say what would be copied (tags compared by HEAD); write nothing.")
@click.option("--images", "images_at_once", type=ints(bounds.IMAGES_AT_ONCE), default=4, show_default=True,
              help="Images in flight at once (those writing one destination store go in turn).")
@click.option("--shard", metavar="I/N|auto",
              help="Take shard I of N (from 0) of the (image, tag) work; auto: I from JOB_COMPLETION_INDEX.")
@click.option("--shards", type=ints(bounds.SHARDS), metavar="N", help="With --shard auto: the number of shards (else OCISIFT_SHARDS).")
@click.option("--report", metavar="FILE", type=click.Path(dir_okay=False),
              help="Write a JSON line per image and tag: digest, bytes, requests, seconds, result, exit code.")
@CONCURRENCY
@trust_options("verify-")
@registry_options
@QUIET
@FORMAT
def sync(spec: str, dry_run: bool, images_at_once: int, shard: str | None, shards: int | None, report: str | None,
         concurrency: int, quiet: bool, fmt: str, **kw: Any) -> None:
    """Mirror the images a SPEC file lists: tags, semver ranges, patterns or all tags, with referrers.

    A second run over unchanged sources copies nothing and asks one HEAD per tag
    at each end (with referrers, one more where the source has any). A tag or
    image that fails does not stop the others; the exit code is the highest
    among the failures. N machines run one spec with --shard I/N each (a
    Kubernetes Indexed Job: --shard auto --shards N), each taking a stable
    share of the tags; their destinations must be registries.

    \b
    Example:
      ocisift sync mirror.yaml --dry-run
      ocisift sync mirror.yaml --format json
      ocisift sync mirror.yaml --shard 0/4 --report shard0.jsonl
    \b
    mirror.yaml:
      defaults: {platforms: [linux/amd64], referrers: true}
      images:
        - source: registry.example/acme/app
          tags: {semver: ">=1.0.0 <2.0.0"}
          destination: oci-archive:bundle.tar/acme/app
    """
    from .. import _api as api

    registry, trust = _registry(kw), _trust(kw)
    with _progress(fmt, quiet) as progress:
        result = api.sync(spec, dry_run=dry_run, images_at_once=images_at_once, concurrency=concurrency,
                          registry=registry, progress=progress, shard=shard, shards=shards, report=report,
                          trust=trust)
    if fmt == "json":
        _emit_json(result.to_json())
    else:
        verb = "would copy" if dry_run else "copied"
        for outcome in result.images:
            for ref in outcome.copied:
                click.echo(f"{verb} {printable(ref)}")
            if not quiet:
                for ref in outcome.skipped:
                    click.echo(f"unchanged {printable(ref)}")
                for line in outcome.verified:
                    click.echo(f"verified {printable(line)}", err=True)
                for note in outcome.notes():
                    click.echo(f"note: {printable(note)}", err=True)
            if outcome.error is None and not outcome.tags and not outcome.elsewhere:
                click.echo(f"nothing to copy: no tag of {printable(str(outcome.image.source))} matches "
                           f"{printable(str(outcome.image.tags))} (line {outcome.image.line})", err=True)
            failed = [r for r in outcome.results if r.error is not None]
            for tagged in failed:
                assert tagged.error is not None
                click.echo(f"error: {printable(str(outcome.image.source))}:{printable(tagged.tag)} "
                           f"(line {outcome.image.line}): {printable_lines(tagged.error.message)}", err=True)
            if outcome.error is not None and not failed:
                click.echo(f"error: {printable(str(outcome.image.source))} (line {outcome.image.line}): "
                           f"{printable_lines(outcome.error.message)}", err=True)
        share = f" (shard {result.shard})" if result.shard is not None else ""
        click.echo(f"{len(result.copied)} {verb}, {len(result.skipped)} unchanged, "
                   f"{len(result.failed)} image(s) failed{share}", err=True)
    if result.exit_code:
        raise click.exceptions.Exit(result.exit_code)  # the failures were reported with their images


@main.command("referrers")
@click.argument("reference")
@click.option("--artifact-type", metavar="GLOB", help="Only referrers of this artifactType (at every level).")
@click.option("--recursive", is_flag=True, help="Also the referrers of referrers (a signature on an SBOM).")
@registry_options
@FORMAT
def referrers_command(reference: str, artifact_type: str | None, recursive: bool, fmt: str, **kw: Any) -> None:
    """List what refers to the manifest or index REFERENCE names, as oras discover does.

    Registries answer from their referrers API, else the sha256-<hex> fallback
    tag; layouts from index.json entries with that subject and that tag.

    \b
    Example:
      ocisift referrers localhost:5000/acme/app:1.0
      ocisift referrers oci:./layout:1.0 --artifact-type 'application/vnd.dev.cosign.*' --recursive
      ocisift referrers localhost:5000/acme/app@sha256:… --format json
    """
    from .. import _api as api
    from .render import render_referrers

    found = api.referrers(reference, artifact_type=artifact_type, recursive=recursive, registry=_registry(kw))
    if fmt == "json":
        _emit_json(found.to_json())
    else:
        render_referrers(found)


@main.command("verify")
@click.argument("reference")
@selector_options
@trust_options("")
@registry_options
@FORMAT
def verify_command(reference: str, fmt: str, **kw: Any) -> None:
    """Check that what REFERENCE names is signed: cosign (keys or keyless) or notation, any store.

    Signatures are found in cosign's sha256-<hex>.sig tag and among the referrers
    (sigstore bundles, notation envelopes). Exit code 7 when none verifies,
    listing every signature tried and why it failed (all of them with --format json).

    \b
    Example:
      ocisift verify localhost:5000/acme/app:1.0 --key cosign.pub
      ocisift verify oci:./mirror:1.0 --certificate-identity-regexp '^https://github.com/acme/' \\
          --certificate-oidc-issuer https://token.actions.githubusercontent.com --trusted-root trusted_root.json
      ocisift verify localhost:5000/acme/app:1.0 --trust-policy trustpolicy.json --trust-store ./truststore
      ocisift verify oci-archive:bundle.tar:1.0 --policy policy.yaml --format json
    """
    from .. import _api as api

    registry, trust = _registry(kw), _trust(kw)
    if trust is None:
        raise UsageError("verify needs what to verify with: --key, a keyless identity with --trusted-root, "
                         "--trust-policy with --trust-store (notation), or --policy")
    result = api.verify(reference, trust, _selector(**kw), registry=registry)
    if fmt == "json":
        _emit_json(result.to_json())
        return
    click.echo(f"verified {printable(result.summary())}")


@main.command("sign")
@click.argument("reference")
@click.option("--key", required=True, metavar="FILE",
              help="cosign private key (cosign.key; its password from COSIGN_PASSWORD), or a PEM private key.")
@click.option("--bundle", is_flag=True,
              help="Write a sigstore bundle referrer (cosign's --new-bundle-format) instead of the .sig tag.")
@click.option("-a", "--payload-annotation", "payload_annotations", multiple=True, metavar="KEY=VALUE",
              help="Into the signed payload's optional section (cosign sign -a; legacy form only).")
@selector_options
@registry_options
@FORMAT
def sign_command(reference: str, key: str, bundle: bool, payload_annotations: tuple[str, ...], fmt: str,
                 **kw: Any) -> None:
    """Sign what REFERENCE names with a cosign key, where cosign looks for signatures.

    The default is cosign's legacy form (a layer appended to the sha256-<hex>.sig
    tag); --bundle writes a sigstore bundle v0.3 as a referrer. The digest signed
    is the one REFERENCE resolves to. Works on registries, layouts and archives.

    \b
    Example:
      COSIGN_PASSWORD=… ocisift sign localhost:5000/acme/app:1.0 --key cosign.key
      ocisift sign oci:./layout:1.0 --key cosign.key --bundle --format json
    """
    from .. import _api as api

    registry = _registry(kw)
    signed = api.sign(reference, key, bundle=bundle, annotations=payload_annotations, select=_selector(**kw),
                      registry=registry)
    if fmt == "json":
        _emit_json(signed.to_json())
        return
    click.echo(f"signed {signed.subject.digest}: {signed.reference}" + (f" (tag {signed.tag})" if signed.tag else ""))


@main.command()
@click.argument("reference")
@click.argument("files", nargs=-1)
@click.option("--artifact-type", help="artifactType of the manifest (default application/vnd.unknown.artifact.v1).")
@click.option("--annotation", "annotations", multiple=True, metavar="KEY=VALUE", help="Manifest annotation.")
@click.option("--annotation-file", type=click.Path(dir_okay=False, exists=True),
              help="ORAS annotation file: {\"$manifest\": {…}, \"$config\": {…}, \"FILE\": {…}}.")
@click.option("--config", metavar="FILE[:MEDIATYPE]", help="Config blob (default: the empty config).")
@click.option("--platform", metavar="OS/ARCH[/VARIANT][:OS.VERSION]",
              help="Record a platform in an image config, so indexes can be composed from it.")
@click.option("--subject", metavar="REF", help="Attach the artifact to this manifest (a referrer).")
@click.option("--tag", "tags", multiple=True, help="Further tags (repeatable).")
@registry_options
@QUIET
@FORMAT
def push(reference: str, files: tuple[str, ...], artifact_type: str | None, annotations: tuple[str, ...],
         annotation_file: str | None, config: str | None, platform: str | None, subject: str | None,
         tags: tuple[str, ...], quiet: bool, fmt: str, **kw: Any) -> None:
    """Push FILE[:MEDIATYPE] and DIR arguments as one ORAS-compatible artifact.

    Files become layers titled by their names; a directory is packed as a
    reproducible tar+gzip. A layout reference without a tag records an untagged
    entry; the printed digest reference pins it.

    \b
    Example:
      ocisift push oci:./el8 repo/ --platform linux/arm64/v8:el8 --format json
      ocisift push localhost:5000/acme/cfg:1.0 app.yaml:application/yaml --tag latest
      ocisift push oci:./layout sbom.json --artifact-type application/spdx+json --subject oci:./layout:1.0
    """
    from .. import _api as api

    registry = _registry(kw)
    with _progress(fmt, quiet) as progress:
        result = api.push(reference, files, artifact_type=artifact_type, annotations=annotations,
                          annotation_file=annotation_file, config=config, platform=platform, subject=subject,
                          tags=tags, registry=registry, progress=progress)
    if fmt == "json":
        _emit_json(result.to_json())
    else:
        click.echo(result.reference)  # all --quiet leaves, as with docker push -q


@main.group()
def blob() -> None:
    """Read single blobs by digest."""


@blob.command("get")
@click.argument("reference")
@click.option("-o", "--output", required=True, metavar="FILE|-", help="File to write (replaced whole), or - for stdout.")
@registry_options
@QUIET
@FORMAT
def blob_get(reference: str, output: str, quiet: bool, fmt: str, **kw: Any) -> None:
    """Write the blob REFERENCE@DIGEST names, verified, to FILE or stdout.

    A file appears only once every byte matched the digest. On stdout bytes go
    out as they arrive; a mismatch is exit 5 after the last of them.

    \b
    Example:
      ocisift blob get localhost:5000/acme/app@sha256:… -o layer.tar.gz
      ocisift blob get oci:./layout@sha256:… -o - | tar -xz
    """
    from .. import _api as api

    registry = _registry(kw)
    to_stdout = output == "-"
    if to_stdout and fmt == "json":
        raise UsageError("--format json prints a summary on stdout; write the blob to a file (-o FILE)")
    with _progress(fmt, quiet) as progress:
        desc = api.blob(reference, sys.stdout.buffer if to_stdout else output, registry=registry, progress=progress)
    if fmt == "json":
        _emit_json({"descriptor": desc.to_json(), "output": output})
    elif not to_stdout and not quiet:
        click.echo(f"wrote {desc.digest} ({_size(desc.size)}) to {output}")


@main.group()
def index() -> None:
    """Compose and edit image indexes."""


@index.command("create")
@click.argument("destination")
@click.argument("sources", nargs=-1, required=True)
@click.option("--annotation", "annotations", multiple=True, metavar="KEY=VALUE", help="Index annotation.")
@click.option("--platform-of", "platform_of", multiple=True, metavar="SRC=PLATFORM",
              help="Platform of one source (default: read from its config).")
@click.option("--artifact-type", help="artifactType of the index.")
@registry_options
@FORMAT
def index_create(destination: str, sources: tuple[str, ...], annotations: tuple[str, ...],
                 platform_of: tuple[str, ...], artifact_type: str | None, fmt: str, **kw: Any) -> None:
    """Compose an index at DESTINATION from manifests or indexes in any stores, copying their content.

    \b
    Example:
      ocisift index create oci:./merged:1.2 oci:./el8 oci:./el9 --annotation org.opencontainers.image.version=1.2
      ocisift index create localhost:5000/acme/repo:1.2 oci:./el8 oci:./el9 --format json
    """
    from .. import _api as api

    mapping = {}
    for item in platform_of:
        src, sep, plat = item.rpartition("=")
        if not sep or not src:
            raise UsageError(f"invalid --platform-of {item!r}: expected SRC=PLATFORM")
        mapping[src] = plat
    result = api.index_create(destination, sources, annotations=annotations, platform_of=mapping,
                              artifact_type=artifact_type, registry=_registry(kw))
    if fmt == "json":
        _emit_json(result.to_json())
    else:
        click.echo(result.reference)


@index.command("add")
@click.argument("destination")
@click.argument("source")
@click.option("--platform", help="Platform of the added manifest (default: read from its config).")
@registry_options
@FORMAT
def index_add(destination: str, source: str, platform: str | None, fmt: str, **kw: Any) -> None:
    """Add SOURCE to the index DESTINATION names; the name moves to the new index.

    \b
    Example:
      ocisift index add oci:./merged:1.2 oci:./el10
    """
    from .. import _api as api

    result = api.index_add(destination, source, platform=platform, registry=_registry(kw))
    _emit_json(result.to_json()) if fmt == "json" else click.echo(result.reference)


@index.command("remove")
@click.argument("destination")
@click.argument("digest")
@registry_options
@FORMAT
def index_remove(destination: str, digest: str, fmt: str, **kw: Any) -> None:
    """Remove the entry DIGEST from the index DESTINATION names.

    \b
    Example:
      ocisift index remove oci:./merged:1.2 sha256:…
    """
    from .. import _api as api

    result = api.index_remove(destination, digest, registry=_registry(kw))
    _emit_json(result.to_json()) if fmt == "json" else click.echo(result.reference)


@main.command("tag")
@click.argument("source")
@click.argument("tags", nargs=-1, required=True)
@registry_options
@FORMAT
def tag_command(source: str, tags: tuple[str, ...], fmt: str, **kw: Any) -> None:
    """Give what SOURCE names more TAGS in the same layout or repository.

    \b
    Example:
      ocisift tag oci:./layout@sha256:… 1.2 latest
      ocisift tag localhost:5000/acme/repo:1.2 stable
    """
    from .. import _api as api

    applied = api.tag(source, tags, registry=_registry(kw))
    _emit_json({"tags": applied}) if fmt == "json" else click.echo(" ".join(applied))


@main.command()
@click.argument("reference")
@registry_options
@FORMAT
def untag(reference: str, fmt: str, **kw: Any) -> None:
    """Remove a tag from a layout, archive or registry.

    In layouts the content stays until gc. On a registry that cannot delete a
    tag alone (distribution 2.x) the tag is moved to a throw-away manifest that
    is then deleted by digest: the image and its other tags stay.

    \b
    Example:
      ocisift untag oci:./layout:old
      ocisift untag localhost:5000/acme/app:rc1
    """
    from .. import _api as api

    dropped = api.untag(reference, registry=_registry(kw))
    if fmt == "json":
        _emit_json({"removed": dropped})
    else:
        click.echo(f"removed {dropped} entr{'y' if dropped == 1 else 'ies'}")


@main.command()
@click.argument("reference")
@registry_options
@FORMAT
def delete(reference: str, fmt: str, **kw: Any) -> None:
    """Delete the manifest or index REFERENCE@DIGEST names, from a registry or a layout.

    In a layout, the entries naming it and its blob go; the blobs only it used
    stay until `ocisift gc`.

    \b
    Example:
      ocisift delete localhost:5000/acme/app@sha256:…
      ocisift delete oci:./layout@sha256:… && ocisift gc oci:./layout
    """
    from .. import _api as api

    gone = api.delete(reference, registry=_registry(kw))
    if fmt == "json":
        _emit_json({"deleted": gone.to_json()})
    else:
        click.echo(f"deleted {gone.digest}")
        if gone.blobs_stay:
            click.echo(f"its blobs stay until: ocisift gc {api.store_location(reference)}", err=True)


@main.command()
@click.argument("reference")
@click.option("--grace", type=floats(bounds.GRACE_SECONDS), default=600.0, show_default=True,
              help="Keep blobs younger than this many seconds (a push may be about to reference them).")
@click.option("--dry-run", is_flag=True, help="List what would be removed.")
@FORMAT
def gc(reference: str, grace: float, dry_run: bool, fmt: str) -> None:
    """Remove blobs that nothing in a layout's index.json reaches.

    \b
    Example:
      ocisift gc oci:./layout --grace 0 --dry-run
    """
    from .. import _api as api

    result = api.gc(reference, grace_seconds=grace, dry_run=dry_run)
    if fmt == "json":
        _emit_json(result.to_json())
    else:
        click.echo(f"{'would remove' if dry_run else 'removed'} {len(result.removed)} blob(s), kept {result.kept}")


@main.command()
@click.argument("host")
@registry_options
@FORMAT
def login(host: str, fmt: str, **kw: Any) -> None:
    """Check credentials against HOST and store them in Docker's config.json (auths).

    \b
    Example:
      echo "$TOKEN" | ocisift login ghcr.io -u me --password-stdin
    """
    from .. import _api as api

    options = _registry(kw)
    if options.username is None or options.password is None:
        raise UsageError("login needs --username and --password-stdin")
    path = api.login(host, options.username, options.password, registry=options)
    if fmt == "json":
        _emit_json({"host": host, "config": path})
    else:
        click.echo(f"login succeeded; credentials for {host} stored in {path}")


@main.command()
@click.argument("host")
@FORMAT
def logout(host: str, fmt: str) -> None:
    """Remove HOST's credentials from Docker's config.json.

    \b
    Example:
      ocisift logout ghcr.io
    """
    from .. import _api as api

    path = api.logout(host)
    if fmt == "json":
        _emit_json({"host": host, "config": path})
    else:
        click.echo(f"removed credentials for {host} from {path}")


@main.command()
@click.argument("path", type=click.Path(file_okay=False))
def sample(path: str) -> None:
    """Build a sample layout at PATH to try ocisift on, no server needed.

    \b
    Example:
      ocisift sample ./demo-layout && ocisift tree oci:./demo-layout
    """
    from .. import _api as api

    api.sample(path)
    click.echo(f"sample layout written to {path}")


def _wants_json(argv: list[str]) -> bool:
    for i, arg in enumerate(argv):
        if arg == "--format=json" or (arg == "--format" and i + 1 < len(argv) and argv[i + 1] == "json"):
            return True
    return False


# Ctrl-C, `kill` (and systemd, docker stop, a CI runner's cancel) and a closed terminal: each stops a
# command the same way, and the exit code says which (128 + the signal's number).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def run(argv: list[str] | None = None, *, last: bool = False) -> int:
    """Entry point: maps every error to the SPEC's exit codes and, with --format json, to JSON.

    `last`: the process ends with this command. A stop signal that comes once it is over (a second
    one, a moment after the first ended it) is then ignored rather than left to kill the exiting process
    with another code than the one its command ended with.
    """
    _end_of_command()  # a command starts with no session of an earlier one (as a new process would)
    cancel.reset()
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in STOP_SIGNALS:
            # A signal the caller ignores stays ignored: nohup's SIGHUP, SIGINT of a job started with `&`.
            if signal.getsignal(signum) is not signal.SIG_IGN:
                previous[signum] = signal.signal(signum, _interrupted)
    try:
        return _run(argv)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_IGN if last else handler)
        _end_of_command()


def _interrupted(signum: int, frame: object) -> None:
    """Ctrl-C (or SIGTERM, SIGHUP): every transfer stops now (sockets shut, workers stop at their next
    chunk), then the main thread unwinds, removing staging and temporary files on its way. Inside a
    shielded step (moving staged files into place) it waits for the step to end. A second signal while
    the first unwinds is only noted: raising again would cut the clean-up short and leave staging."""
    cancel.note_signal(signum)
    if cancel.cancelled():
        return
    if cancel.in_shield():
        cancel.defer()
        return
    cancel.cancel()
    raise KeyboardInterrupt


def _stopped() -> int:
    """The exit of a command a signal stopped: 130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP."""
    signum = cancel.stop_signal()
    name = signal.Signals(signum).name
    click.echo("interrupted" if signum == signal.SIGINT else f"interrupted by {name}", err=True)
    return 128 + signum


def _run(argv: list[str] | None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    as_json = _wants_json(args)
    if any("\0" in arg for arg in args):  # a process's arguments cannot hold one; a caller's list can
        return _fail(UsageError("an argument holds a NUL byte, which no path, reference or value can"), as_json)
    try:
        code = main.main(args=args, prog_name="ocisift", standalone_mode=False)
        return code if isinstance(code, int) else 0  # a command's own exit code (sync's worst failure)
    except cancel.Cancelled:  # a worker's stop reached the main thread before the signal's interrupt
        return _stopped()
    except OcisiftError as exc:
        return _fail(exc, as_json)
    except click.exceptions.Abort as exc:
        if isinstance(exc.__cause__, KeyboardInterrupt) or isinstance(exc.__context__, KeyboardInterrupt):
            return _stopped()  # click turns Ctrl-C into Abort; it is still an interrupt
        click.echo("aborted", err=True)
        return 1
    except click.ClickException as exc:
        if as_json:
            _emit_json({"error": {"code": 2, "kind": "usage", "message": exc.format_message()}})
        else:
            exc.show()
        return 2
    except KeyboardInterrupt:
        return _stopped()
    except BrokenPipeError:
        return 1
    except OSError as exc:
        return _fail(OcisiftError(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc)), as_json)
    except Exception as exc:  # a bug of ours: say so plainly, keep the traceback for OCISIFT_DEBUG
        if os.environ.get("OCISIFT_DEBUG"):
            raise
        return _fail(OcisiftError(f"internal error: {type(exc).__name__}: {exc} (set OCISIFT_DEBUG=1 for details)"), as_json)


def _end_of_command() -> None:
    """One command is one process's worth of work: its registry sessions (pools, tokens) end with it."""
    session = sys.modules.get("ocisift._stores.registry.session")
    if session is not None:
        session.forget_sessions()


def _fail(exc: OcisiftError, as_json: bool) -> int:
    if as_json:
        _emit_json(exc.to_json())
    else:
        click.echo(f"error: {printable_lines(exc.message)}", err=True)
    return exc.exit_code


def entry() -> None:
    """The console script and `python -m ocisift`: one command, then the process ends at once."""
    _exit_now(run(last=True))


def _exit_now(code: int) -> NoReturn:
    """End the process without the interpreter's teardown, which frees every module and object one by
    one: about 12 ms for a plain pull's modules, 6 ms more once the crypto libraries are loaded, paid
    by every command a script or a controller runs. What that teardown is for is done first, in its
    order: threads that are not daemons are waited for (while one lives, the ordinary exit is taken),
    the exit hooks run (temporary directories' finalisers, logging), reference cycles are collected so
    that their finalisers run, and the standard streams are flushed; where a flush fails (a reader that
    closed its pipe) or the disk is full, the command fails (exit 1) as when a write fails during it."""
    main_thread = threading.main_thread()
    if any(t is not main_thread and t.is_alive() and not t.daemon for t in threading.enumerate()):
        sys.exit(code)
    atexit._run_exitfuncs()
    garbage.collect()
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except BrokenPipeError:  # the reader closed its pipe (`| head`): as when a write fails mid-command
        os._exit(code or 1)
    except (OSError, ValueError) as exc:  # a full disk under a redirection: the output is not whole
        with suppress(OSError, ValueError):
            os.write(2, f"error: the output could not be written: {exc}\n".encode())
        os._exit(code or 1)
    os._exit(code)


__all__ = ["UsageError", "entry", "main", "run"]
