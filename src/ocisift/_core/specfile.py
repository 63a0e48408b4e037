"""The `sync SPEC.yaml` file, and `--verify-policy` files: parsed and validated whole before anything is copied.

A spec names images to mirror, each a source repository, the tags to take
from it and a destination, with optional defaults for platforms and
referrers::

    defaults:
      platforms: [linux/amd64]
      referrers: true
    images:
      - source: registry.example/acme/app
        tags: [1.0.0, latest]        # or {semver: RANGE}, {regex: RE}, both, or all
        destination: oci:mirror/app

Every mistake is found before the first copy and reported as a UsageError
(exit 2) naming the file, the line and the key path, for example
``mirror.yaml:7: images[1].tags: expected a list of tags, …``.

The YAML is composed into nodes, not constructed into Python values, and the
nodes are walked here, so that every value keeps its line and its text as
written. That matters for tags: YAML reads ``1.0`` as the float 1.0 and
``1.10`` as 1.1, but the user meant the tags ``1.0`` and ``1.10``, so a tag
is the scalar's text, whatever type YAML would have given it.

The file comes from outside, so it is bounded before and while it is read:
at most MAX_SPEC_BYTES of UTF-8, anchors and aliases refused (the
billion-laughs expansion needs them, and a spec does not), nesting at most
MAX_DEPTH deep and at most MAX_NODES nodes. The limits are checked as nodes
are composed, so a hostile text stops at the first node past a limit.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable
from typing import NoReturn

import yaml
from yaml.error import MarkedYAMLError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.reader import ReaderError

from .errors import ReferenceError_, UsageError
from .platform import Platform
from .reference import (
    DirReference,
    DockerArchiveReference,
    LayoutReference,
    Probe,
    Reference,
    RegistryReference,
    default_probe,
    is_tag,
    parse_reference,
)
from .syncspec import (
    MAX_DEPTH,
    MAX_FILTER_CHARS,
    MAX_NODES,
    MAX_PLATFORM_CHARS,
    MAX_REFERENCE_CHARS,
    MAX_SPEC_BYTES,
    TAGS_EXPECTED,
    SyncImage,
    SyncSpec,
    TagChoice,
)
from .tagregex import TagPattern
from .trustspec import PROVIDERS, IdentityMatch, ScopedVerify, TrustPolicy, VerifySpec

_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_BOOLS = {"true": True, "false": False, "yes": True, "no": False, "on": True, "off": False}

_TOP_KEYS = ("defaults", "images")
_DEFAULT_KEYS = ("platforms", "referrers", "verify")
_IMAGE_KEYS = ("source", "tags", "destination", "platforms", "referrers", "verify")
_VERIFY_KEYS = ("provider", "keys", "matchOIDCIdentity", "trustedRoot", "matchReference", "trustPolicy", "trustStore")
_IDENTITY_KEYS = ("issuer", "subject")
_POLICY_KEYS = ("default", "scopes")
_SCOPE_KEYS = ("scope", "verify", "accept", "reject")
_FILTER_KEYS = ("semver", "regex")
_SIMPLE_KEY = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def load_spec(path: str, probe: Probe = default_probe) -> SyncSpec:
    """Read and parse a spec file; a missing, unreadable, oversized or non-UTF-8 file is a UsageError."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_SPEC_BYTES + 1)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such sync spec file") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory, not a sync spec file") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the sync spec: {exc.strerror or exc}") from None
    if len(data) > MAX_SPEC_BYTES:
        raise UsageError(f"{path}: over {MAX_SPEC_BYTES >> 20} MiB, the largest sync spec ocisift reads")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise UsageError(f"{path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})") from None
    return parse_spec(text, path, probe)


def parse_spec(text: str, name: str, probe: Probe = default_probe) -> SyncSpec:
    """Parse and validate a spec's text; `name` is the file as the user knows it, for messages.

    `probe` says what a path is on disk, as for parse_reference (it decides
    where `oci:DIR/NAME` splits); nothing else looks outside the text.
    """
    return _Parser(name, probe).spec(text)


class _Refused(Exception):
    """A bound crossed while composing, at a line (0-based)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader composing at most MAX_NODES nodes, MAX_DEPTH deep, and no anchors or aliases.

    The composer recurses once per level and the limits are checked before
    each node, so the parser never reads far past the node that crosses one.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        event: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]  # untyped in the stubs
        line = event.start_mark.line if event.start_mark is not None else 0
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise _Refused(line, "YAML anchors and aliases (& and *) are not allowed in a sync spec")
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise _Refused(line, f"more than {MAX_NODES:,} YAML nodes, the most a sync spec may hold")
        if self._depth >= MAX_DEPTH:
            raise _Refused(line, f"nested more than {MAX_DEPTH} levels deep")
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _line(node: Node) -> int:
    return node.start_mark.line + 1 if node.start_mark is not None else 1


def _show(text: str, limit: int = 80) -> str:
    """User text in a message: quoted, escaped, and cut short when long."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "…"


def _describe(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if node.tag == _NULL:
        return f"null (YAML reads {node.value} as null; quote it to mean the text)" if node.value else "nothing"
    return _show(str(node.value))


class _Parser:
    def __init__(self, name: str, probe: Probe) -> None:
        self.name = name
        self.probe = probe

    # -- errors -------------------------------------------------------------

    def fail(self, line: int, path: str, message: str, cls: type[UsageError] = UsageError) -> NoReturn:
        where = f"{self.name}:{line}: "
        raise cls(where + (f"{path}: {message}" if path else message))

    # -- document -----------------------------------------------------------

    def spec(self, text: str) -> SyncSpec:
        if len(text) > MAX_SPEC_BYTES:
            raise UsageError(f"{self.name}: over {MAX_SPEC_BYTES >> 20} MiB, the largest sync spec ocisift reads")
        root = self.compose(text)
        if root is None:
            self.fail(1, "", "the spec is empty: it needs an `images` list")
        top = self.mapping(root, "", _TOP_KEYS, "expected a mapping with `images` (and optional `defaults`)")
        platforms: tuple[Platform, ...] | None = None
        referrers = False
        verify: VerifySpec | None = None
        if "defaults" in top:
            node = top["defaults"][1]
            defaults = self.mapping(node, "defaults", _DEFAULT_KEYS,
                                    "expected a mapping of platforms, referrers and verify")
            if "platforms" in defaults:
                platforms = self.platforms(defaults["platforms"][1], "defaults.platforms")
            if "referrers" in defaults:
                referrers = self.boolean(defaults["referrers"][1], "defaults.referrers")
            if "verify" in defaults:
                verify = self.verify(defaults["verify"][1], "defaults.verify")
        if "images" not in top:
            self.fail(_line(root), "", "missing `images`: the list of images to mirror")
        images_node = top["images"][1]
        if not isinstance(images_node, SequenceNode):
            self.fail(_line(images_node), "images",
                      f"expected a list of images (source, tags, destination), not {_describe(images_node)}")
        if not images_node.value:
            self.fail(_line(images_node), "images", "the list is empty: name at least one image to mirror")
        images = [self.image(node, f"images[{i}]", platforms, referrers, verify)
                  for i, node in enumerate(images_node.value)]
        self.check_duplicates(images)
        return SyncSpec(images=tuple(images), path=self.name)

    def compose(self, text: str) -> Node | None:
        try:
            return yaml.compose(text, Loader=_BoundedLoader)
        except _Refused as exc:
            self.fail(exc.line + 1, "", exc.message)
        except MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else 1
            why = "; ".join(part for part in (exc.context, exc.problem) if part)
            self.fail(line, "", f"not valid YAML: {why or 'cannot be parsed'}")
        except ReaderError as exc:
            line = text.count("\n", 0, max(exc.position, 0)) + 1
            char = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "\0")
            self.fail(line, "", f"character U+{char:04X} is not allowed in YAML")
        except yaml.YAMLError as exc:
            self.fail(1, "", f"not valid YAML: {exc}")

    def check_duplicates(self, images: Iterable[SyncImage]) -> None:
        seen: dict[tuple[Reference, Reference], int] = {}
        for image in images:
            key = (image.source, image.destination)
            if key in seen:
                self.fail(image.line, "images",
                          f"{image.source} to {image.destination} is listed twice (lines {seen[key]} and {image.line}); "
                          "merge the two entries")
            seen[key] = image.line

    # -- shapes -------------------------------------------------------------

    def mapping(self, node: Node, path: str, allowed: tuple[str, ...], expected: str) -> dict[str, tuple[Node, Node]]:
        """A mapping's entries by key (key node, value node), unknown and repeated keys refused."""
        if not isinstance(node, MappingNode):
            self.fail(_line(node), path, f"{expected}, not {_describe(node)}")
        entries: dict[str, tuple[Node, Node]] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == _NULL:
                self.fail(_line(key_node), path, f"keys are names ({', '.join(allowed)}), not {_describe(key_node)}")
            key = str(key_node.value)
            where = f"{path}.{key}" if path else key
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6) if len(key) <= 64 else []
                hint = f"; did you mean {close[0]!r}?" if close else ""
                self.fail(_line(key_node), where if _SIMPLE_KEY.fullmatch(key) else path,
                          f"unknown key {_show(key)}{hint} (known keys: {', '.join(allowed)})")
            if key in entries:
                first = _line(entries[key][0])
                self.fail(_line(key_node), where, f"given twice (lines {first} and {_line(key_node)})")
            entries[key] = (key_node, value_node)
        return entries

    def text(self, node: Node, path: str, what: str) -> str:
        """A scalar's text as written (quoted or not, whatever YAML would type it as)."""
        if not isinstance(node, ScalarNode) or node.tag == _NULL:
            self.fail(_line(node), path, f"expected {what}, not {_describe(node)}")
        return str(node.value)

    def boolean(self, node: Node, path: str) -> bool:
        if isinstance(node, ScalarNode) and node.tag == _BOOL and str(node.value).lower() in _BOOLS:
            return _BOOLS[str(node.value).lower()]
        self.fail(_line(node), path, f"expected true or false, not {_describe(node)}")

    # -- entries ------------------------------------------------------------

    def image(self, node: Node, path: str, platforms: tuple[Platform, ...] | None, referrers: bool,
              verify: VerifySpec | None = None) -> SyncImage:
        entries = self.mapping(node, path, _IMAGE_KEYS, "expected a mapping of source, tags and destination")
        for key in ("source", "tags", "destination"):
            if key not in entries:
                self.fail(_line(node), path, f"missing `{key}`")
        source = self.reference(entries["source"][1], f"{path}.source", "source")
        destination = self.reference(entries["destination"][1], f"{path}.destination", "destination")
        if _same_place(source, destination):
            self.fail(_line(entries["destination"][1]), f"{path}.destination", f"{destination} is the source itself")
        tags = self.tags(entries["tags"][1], f"{path}.tags")
        if "platforms" in entries:
            platforms = self.platforms(entries["platforms"][1], f"{path}.platforms")
        if "referrers" in entries:
            referrers = self.boolean(entries["referrers"][1], f"{path}.referrers")
        if "verify" in entries:
            verify = self.verify(entries["verify"][1], f"{path}.verify")
        return SyncImage(source=source, destination=destination, tags=tags, platforms=platforms,
                         referrers=referrers, line=_line(node), verify=verify)

    def reference(self, node: Node, path: str, role: str) -> Reference:
        text = self.text(node, path, "a reference")
        line = _line(node)
        if len(text) > MAX_REFERENCE_CHARS:
            self.fail(line, path, f"a reference longer than {MAX_REFERENCE_CHARS} characters", ReferenceError_)
        try:
            ref = parse_reference(text, self.probe)
        except UsageError as exc:
            self.fail(line, path, exc.message, ReferenceError_)
        pinned = f"the {role} names a repository, without a tag or digest (the tags come from `tags`): {_show(text)}"
        if isinstance(ref, DockerArchiveReference):
            self.fail(line, path, "docker-archive: cannot be mirrored with sync; use oci-archive:FILE or oci:DIR",
                      ReferenceError_)
        if isinstance(ref, DirReference):
            self.fail(line, path, "dir: holds one image and no tags, so it cannot be mirrored with sync; "
                      "use oci:DIR, or copy into dir:", ReferenceError_)
        if isinstance(ref, RegistryReference):
            if not ref.implicit_tag:
                self.fail(line, path, pinned, ReferenceError_)
            return RegistryReference(ref.image.with_tag(None), implicit_tag=True)
        if ref.tag is not None or ref.digest is not None:
            self.fail(line, path, pinned, ReferenceError_)
        if ref.image is not None:
            # oci:DIR/NAME fills in `latest` when NAME has no tag; a colon in the last component wrote one.
            if ":" in text.rsplit("/", 1)[-1]:
                self.fail(line, path, pinned, ReferenceError_)
            return LayoutReference(ref.path, ref.layout, image=ref.image.with_tag(None))
        return ref

    def tags(self, node: Node, path: str) -> TagChoice:
        line = _line(node)
        if isinstance(node, ScalarNode) and node.tag != _NULL and node.value == "all":
            return TagChoice(kind="all", line=line)
        if isinstance(node, SequenceNode):
            return TagChoice(kind="list", tags=self.tag_list(node, path), line=line)
        if isinstance(node, MappingNode):
            entries = self.mapping(node, path, _FILTER_KEYS, TAGS_EXPECTED)
            if not entries:
                self.fail(_line(node), path, f"{TAGS_EXPECTED}; give semver, regex or both")
            semver = regex = semver_line = None
            if "semver" in entries:
                semver_node = entries["semver"][1]
                semver = self.filter_text(semver_node, f"{path}.semver", "a semantic version range")
                semver_line = _line(semver_node)
            if "regex" in entries:
                regex_node = entries["regex"][1]
                regex = self.filter_text(regex_node, f"{path}.regex", "a regular expression")
                self.compile(regex, regex_node, f"{path}.regex")
            return TagChoice(kind="semver" if semver is not None else "regex", semver=semver, regex=regex,
                             line=line, semver_line=semver_line)
        self.fail(_line(node), path, f"{TAGS_EXPECTED}, not {_describe(node)}")

    def tag_list(self, node: SequenceNode, path: str) -> tuple[str, ...]:
        if not node.value:
            self.fail(_line(node), path, 'the list is empty: name at least one tag, or write "all"')
        seen: dict[str, int] = {}
        for i, item in enumerate(node.value):
            where = f"{path}[{i}]"
            tag = self.text(item, where, "a tag")
            if not is_tag(tag):
                self.fail(_line(item), where, f"invalid tag {_show(tag)} (letters, digits, '_', '.', '-', "
                                              "not starting with '.' or '-'; at most 128)")
            if tag in seen:
                self.fail(_line(item), where, f"tag {_show(tag)} is listed twice (lines {seen[tag]} and {_line(item)})")
            seen[tag] = _line(item)
        return tuple(seen)

    def filter_text(self, node: Node, path: str, what: str) -> str:
        value = self.text(node, path, what)
        if not value.strip():
            self.fail(_line(node), path, f"expected {what}, not an empty string")
        if len(value) > MAX_FILTER_CHARS:
            self.fail(_line(node), path, f"longer than {MAX_FILTER_CHARS} characters")
        return value

    def compile(self, regex: str, node: Node, path: str) -> None:
        try:
            TagPattern(regex)
        except UsageError as exc:
            self.fail(_line(node), path, f"invalid regular expression {_show(regex)}: {exc.message.rsplit(': ', 1)[-1]}")

    def platforms(self, node: Node, path: str) -> tuple[Platform, ...] | None:
        """A list of platforms, or "all" (every platform, which also undoes a default)."""
        if isinstance(node, ScalarNode) and node.tag != _NULL and node.value == "all":
            return None
        if not isinstance(node, SequenceNode):
            self.fail(_line(node), path,
                      f'expected a list of platforms (for example [linux/amd64]) or "all", not {_describe(node)}')
        if not node.value:
            self.fail(_line(node), path, 'the list is empty: name at least one platform, or write "all"')
        out: list[Platform] = []
        for i, item in enumerate(node.value):
            where = f"{path}[{i}]"
            text = self.text(item, where, "a platform (os/arch[/variant])")
            if len(text) > MAX_PLATFORM_CHARS:
                self.fail(_line(item), where, f"a platform longer than {MAX_PLATFORM_CHARS} characters")
            try:
                platform = Platform.parse(text)
            except UsageError as exc:
                self.fail(_line(item), where, exc.message)
            if platform in out:
                self.fail(_line(item), where, f"platform {_show(text)} is listed twice")
            out.append(platform)
        return tuple(out)

    # -- trust ------------------------------------------------------------------------------------------

    def file_path(self, node: Node, path: str, what: str) -> str:
        """A file the spec names: relative to the spec's own directory, as a kubeconfig names its files."""
        value = self.text(node, path, what)
        if not value.strip() or "\0" in value or len(value) > MAX_REFERENCE_CHARS:
            self.fail(_line(node), path, f"expected {what}, not {_describe(node)}")
        return value if os.path.isabs(value) else os.path.join(os.path.dirname(self.name) or ".", value)

    def verify(self, node: Node, path: str) -> VerifySpec:
        """A `verify:` block, as Flux's OCIRepository `spec.verify` has it (its secretRef as key files)."""
        entries = self.mapping(node, path, _VERIFY_KEYS, "expected a mapping (provider, keys, matchOIDCIdentity, "
                               "trustedRoot; notation: trustPolicy, trustStore)")
        provider = "cosign"
        if "provider" in entries:
            provider = self.text(entries["provider"][1], f"{path}.provider", "a provider")
            if provider not in PROVIDERS:
                self.fail(_line(entries["provider"][1]), f"{path}.provider",
                          f"unknown provider {_show(provider)} (cosign or notation)")
        keys: list[str] = []
        if "keys" in entries:
            keys_node = entries["keys"][1]
            items = keys_node.value if isinstance(keys_node, SequenceNode) else [keys_node]
            keys = [self.file_path(item, f"{path}.keys", "a public key file") for item in items]
            if not keys:
                self.fail(_line(keys_node), f"{path}.keys", "the list is empty: name at least one public key")
        identities: list[IdentityMatch] = []
        if "matchOIDCIdentity" in entries:
            ids_node = entries["matchOIDCIdentity"][1]
            if not isinstance(ids_node, SequenceNode) or not ids_node.value:
                self.fail(_line(ids_node), f"{path}.matchOIDCIdentity",
                          "expected a list of {issuer: REGEXP, subject: REGEXP}")
            for i, item in enumerate(ids_node.value):
                where = f"{path}.matchOIDCIdentity[{i}]"
                fields = self.mapping(item, where, _IDENTITY_KEYS, "expected {issuer: REGEXP, subject: REGEXP}")
                if set(fields) != set(_IDENTITY_KEYS):
                    self.fail(_line(item), where, "give both issuer and subject (regular expressions, as Flux's)")
                try:
                    identities.append(IdentityMatch(
                        subject_regexp=self.filter_text(fields["subject"][1], f"{where}.subject", "a regexp"),
                        issuer_regexp=self.filter_text(fields["issuer"][1], f"{where}.issuer", "a regexp")))
                except UsageError as exc:
                    self.fail(_line(item), where, exc.message)
        files = {key: self.file_path(entries[key][1], f"{path}.{key}", "a file")
                 for key in ("trustedRoot", "trustPolicy", "trustStore") if key in entries}
        match_reference = self.boolean(entries["matchReference"][1], f"{path}.matchReference") \
            if "matchReference" in entries else False
        try:
            return VerifySpec(provider=provider, keys=tuple(keys), identities=tuple(identities),  # type: ignore[arg-type]
                              trusted_root=files.get("trustedRoot"), trust_policy=files.get("trustPolicy"),
                              trust_store=files.get("trustStore"), match_reference=match_reference)
        except UsageError as exc:
            self.fail(_line(node), path, exc.message)

    def trust_policy(self, text: str) -> TrustPolicy:
        """A `--verify-policy` file: `scopes` (each a scope glob and `verify`, `accept: true` or `reject:
        true`) and an optional `default` (reject, unless it says accept)."""
        root = self.compose(text)
        if root is None:
            self.fail(1, "", "the policy is empty: it needs a `scopes` list")
        top = self.mapping(root, "", _POLICY_KEYS, "expected a mapping with `scopes` (and optional `default`)")
        default = ScopedVerify("*", "reject")
        if "default" in top:
            word = self.text(top["default"][1], "default", "accept or reject")
            if word not in ("accept", "reject"):
                self.fail(_line(top["default"][1]), "default", f"expected accept or reject, not {_show(word)}")
            default = ScopedVerify("*", "accept" if word == "accept" else "reject", line=_line(top["default"][1]))
        if "scopes" not in top or not isinstance(top["scopes"][1], SequenceNode) or not top["scopes"][1].value:
            self.fail(_line(root), "scopes", "expected a non-empty list of {scope, verify | accept | reject}")
        scopes: list[ScopedVerify] = []
        seen: dict[str, int] = {}
        for i, node in enumerate(top["scopes"][1].value):
            where = f"scopes[{i}]"
            entry = self.mapping(node, where, _SCOPE_KEYS, "expected {scope: GLOB, verify: … | accept | reject}")
            if "scope" not in entry:
                self.fail(_line(node), where, "missing `scope` (a glob: registry.example/acme/*, oci:/srv/*)")
            scope = self.filter_text(entry["scope"][1], f"{where}.scope", "a scope")
            if scope in seen:
                self.fail(_line(node), f"{where}.scope", f"{_show(scope)} is listed twice (lines {seen[scope]} "
                          f"and {_line(node)})")
            seen[scope] = _line(node)
            decisions = [k for k in ("verify", "accept", "reject") if k in entry]
            if len(decisions) != 1:
                self.fail(_line(node), where, "give exactly one of verify, accept: true, reject: true")
            kind = decisions[0]
            if kind == "verify":
                value = entry["verify"][1]
                blocks = value.value if isinstance(value, SequenceNode) else [value]
                specs = tuple(self.verify(b, f"{where}.verify") for b in blocks)
                if not specs:
                    self.fail(_line(value), f"{where}.verify", "the list is empty")
                scopes.append(ScopedVerify(scope, "verify", specs, line=_line(node)))
            else:
                if not self.boolean(entry[kind][1], f"{where}.{kind}"):
                    self.fail(_line(entry[kind][1]), f"{where}.{kind}", f"write {kind}: true, or leave it out")
                scopes.append(ScopedVerify(scope, "accept" if kind == "accept" else "reject", line=_line(node)))
        return TrustPolicy(tuple(scopes), default, self.name)


def load_trust_policy(path: str) -> TrustPolicy:
    """Read and parse a `--verify-policy` file (YAML, or JSON, which is YAML), bounded as a sync spec is."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_SPEC_BYTES + 1)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such trust policy file") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory, not a trust policy file") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the trust policy: {exc.strerror or exc}") from None
    if len(data) > MAX_SPEC_BYTES:
        raise UsageError(f"{path}: over {MAX_SPEC_BYTES >> 20} MiB, the largest trust policy ocisift reads")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not UTF-8 text") from None
    return _Parser(path, default_probe).trust_policy(text)


def _same_place(a: Reference, b: Reference) -> bool:
    """One repository however its path is spelled (`DIR` and `PARENT/./DIR` are one layout)."""
    if a == b:
        return True
    if isinstance(a, LayoutReference) and isinstance(b, LayoutReference):
        same_file = os.path.normpath(os.path.abspath(a.path)) == os.path.normpath(os.path.abspath(b.path))
        return same_file and a.layout == b.layout and (a.image.name if a.image else None) == \
            (b.image.name if b.image else None)
    return False
