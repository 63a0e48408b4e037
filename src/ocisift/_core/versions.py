"""Pick tags by semantic version, the way Flux's OCIRepository ``ref.semver`` and ``ref.semverFilter`` do.

Flux lists a repository's tags, keeps those its ``semverFilter`` regular expression finds anywhere in
(Go's ``MatchString``), parses what is left as versions, checks them against a Masterminds/semver v3
constraint and takes the highest. This module does the same with ``node-semver``, a port of npm's
range grammar, which Masterminds v3 set out to be compatible with. What differs between the two
grammars is adapted here, each at the place that does it:

* the constraint's *dialect*: commas as AND, the ``=>``/``=<`` spellings, ``!=``, ``~0.0.0`` as
  "anything", leading zeros in numbers (``>=2025.01.0``), and the accepted forms, which are checked
  against Masterminds' own grammar so that a typo is an error rather than a silent "any";
* the *pre-release rule*: npm lets a pre-release through only when a comparison names a pre-release
  of the same MAJOR.MINOR.PATCH; Masterminds (3.4 and later, which Flux uses) lets every pre-release
  through an AND group once any comparison in the group names one, and then still bounds ``~``,
  ``^``, wildcards and partial ``>``/``<=`` by the version's numbers (``^1.0.0-0`` keeps ``1.5.0-rc.1``
  and not ``2.0.0-rc.1``);
* the *tags* that count as versions: Flux's ``ParseVersion`` wants two dots at least, an optional
  leading ``v``, and lets leading zeros through (``v2025.02.03``). Tags such as ``1``, ``1.2`` or
  ``20240101`` are not versions: they are usually moving aliases or dates, and ``20240101`` read as
  ``20240101.0.0`` would outrank every real release.

Three things are, on purpose, not as Masterminds has them: a hyphen range after a space-separated
comparison (``>=0.5 1.0 - 2.0``) is read, where Masterminds' rewrite eats the space and refuses it;
a wildcard major after ``>``, ``<=``, ``!=`` or ``^`` is refused, where Masterminds' answers are
artefacts (``<=*`` keeps 0.0.z only); and ``!=1.2`` excludes the pre-releases of 1.2.z too. Nor can
a pre-release follow a partial version (Masterminds reads ``<1.2-0`` as ``<1.2.0-0``): the
library refuses that, so it is a UsageError.

Build metadata never orders versions. Two tags of one precedence (``v1.0.0`` and ``1.0.0``, or
``1.0.0+a`` and ``1.0.0+b``) are ordered by the tag itself, so the lexically greater tag is the
higher; Flux leaves it to Go's unstable sort, so which one Flux picks is unspecified.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

from ocisift._core._semverlib import nodesemver

if TYPE_CHECKING:
    from nodesemver import SemVer  # type: ignore[import-untyped]

from ocisift._core.errors import NotFoundError, UsageError
from ocisift._core.tagregex import TagPattern

MAX_TAG_LENGTH = 128  # the OCI distribution spec's limit; longer tags are ignored, which bounds regex work
MAX_CLOSEST = 5
_UINT64 = 2**64 - 1  # Masterminds parses each number as a uint64

ACCEPTED_FORMS = (
    "comparisons with =, !=, >, <, >=, <= (=> and =< too), joined by spaces or commas (AND) and || (OR); "
    "~1.2 or ~>1.2 (>=1.2.0 <1.3.0), ~1 (>=1.0.0 <2.0.0); ^1.2.3 (>=1.2.3 <2.0.0), ^0.2.3 (>=0.2.3 <0.3.0); "
    "wildcards 1.x, 1.*, 1 and *; hyphen ranges such as '1.2 - 1.4.5'; an optional leading v; "
    "pre-releases only where the constraint names one, e.g. >=1.1.0-0"
)

# Masterminds' constraint grammar (constraints.go: cvRegex, validConstraintRegex, constraintRangeRegex).
_OPS = r"!=|>=|=>|<=|=<|~>|>|<|=|~|\^"
_NUM = r"[0-9]+|[xX*]"
_IDS = r"[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*"
_CV = rf"v?(?:{_NUM})(?:\.(?:{_NUM})){{0,2}}(?:-{_IDS})?(?:\+{_IDS})?"
_HYPHEN = re.compile(rf"\s*({_CV})\s+-\s+({_CV})\s*")
_COMPARISON = rf"(?:(?:{_OPS})\s*)?{_CV}"
_GROUP = re.compile(rf"\s*{_COMPARISON}(?:(?:\s*,\s*|\s+){_COMPARISON})*\s*")
_TOKEN = re.compile(rf"(?P<op>{_OPS})?\s*(?P<ver>{_CV})")
_PARTS = re.compile(rf"v?(?P<nums>(?:{_NUM})(?:\.(?:{_NUM})){{0,2}})(?P<pre>-{_IDS})?(?P<build>\+{_IDS})?")
_TAG = re.compile(r"v?([0-9]+)(?:\.([0-9]+))?(?:\.([0-9]+))?((?:-|\+)[0-9A-Za-z.+-]*)?")


def tag_version(tag: str) -> SemVer | None:
    """The version a tag names, or None when it names none (see the module's note on which tags do)."""
    # Flux's rule (fluxcd/pkg version.ParseVersion): two dots at least, then Masterminds' NewVersion,
    # which reads a missing minor or patch as 0; so "1.2" is refused and "1.2-rc.1" is 1.2.0-rc.1.
    if len(tag) > MAX_TAG_LENGTH or tag.count(".") < 2:
        return None
    m = _TAG.fullmatch(tag)
    if m is None:
        return None
    numbers = [int(n or 0) for n in m.group(1, 2, 3)]
    if max(numbers) > _UINT64:
        return None
    # Leading zeros are dropped before the library parses, as Masterminds' NewVersion coerces them;
    # the library still checks the pre-release and build parts (no leading zero in a numeric identifier).
    try:
        return nodesemver.make_semver("{}.{}.{}".format(*numbers) + (m[4] or ""), False)
    except ValueError:
        return None


def _order(version: SemVer, tag: str) -> tuple[Any, str]:
    return nodesemver.full_key_function(version), tag


def _release_of(version: SemVer) -> SemVer:
    return nodesemver.make_semver(f"{version.major}.{version.minor}.{version.patch}", False)


@dataclass(frozen=True)
class _Comparison:
    """One Masterminds comparison, desugared by the library into `range`.

    For a pre-release version Masterminds compares some operators with the whole version (`whole`),
    and bounds others by MAJOR.MINOR.PATCH alone (`numbers`): ``<`` and ``>=`` use the whole version,
    ``~``, ``^`` and wildcards check the lower end on the whole version and the upper end on the
    numbers, and partial ``>``, ``<=`` and ``!=`` look at the numbers only.
    """

    range: Any
    whole: bool
    numbers: bool

    def allows(self, version: SemVer, release: SemVer | None) -> bool:
        if release is None:  # not a pre-release: one plain test
            return bool(self.range.test(version))
        if self.whole and not self.range.test(version, include_prerelease=True):
            return False
        return not self.numbers or bool(self.range.test(release))


@dataclass(frozen=True)
class _Group:
    comparisons: tuple[_Comparison, ...]
    names_prerelease: bool

    def allows(self, version: SemVer, release: SemVer | None) -> bool:
        if release is not None and not self.names_prerelease:
            return False
        return all(c.allows(version, release) for c in self.comparisons)


def _bad(constraint: str, why: str) -> UsageError:
    return UsageError(f"semver constraint {constraint!r} is not valid: {why}; accepted: {ACCEPTED_FORMS}")


def _comparison(constraint: str, op: str, text: str) -> tuple[_Comparison, bool, SemVer | None]:
    parts = _PARTS.fullmatch(text)
    if parts is None:  # the group matched _GROUP, so this cannot happen
        raise _bad(constraint, f"cannot read {text!r}")
    nums = parts["nums"].split(".")
    if any(n.isdigit() and (len(n) > 20 or int(n) > _UINT64) for n in nums):  # int() refuses 4,300+ digits
        raise _bad(constraint, f"{text!r} has a number past 2^64-1")
    op = {"=>": ">=", "=<": "<=", "~>": "~"}.get(op, op)
    anchor = None  # the release this comparison names, for measuring "closest"; none for a wildcard major
    if nums[0].isdigit():
        filled = [str(int(n)) if n.isdigit() else "0" for n in nums] + ["0"] * (3 - len(nums))
        anchor = nodesemver.make_semver(".".join(filled), False)
        if op == "~" and filled == ["0", "0", "0"] and len(nums) == 3 and all(n.isdigit() for n in nums):
            op = ">="  # Masterminds: ~0.0.0 accepts everything, like >=0.0.0 (constraints.go, constraintTilde)
    else:
        # A wildcard major is 0.0.0 to Masterminds: *, =*, ~* and >=* are ">=0.0.0", <* is "<0.0.0"
        # (npm says "any" and "none", which differ only for 0.0.0's pre-releases). With >, <=, != and ^
        # its answers are artefacts (<=* is 0.0.z only, ^* is 0.y.z), so those are refused.
        if op in (">", "<=", "!=", "^"):
            raise _bad(constraint, f"{op}{text} has a wildcard major version; use * or >=0.0.0")
        op, nums = ("<" if op == "<" else ">="), ["0", "0", "0"]
    canonical = ".".join(str(int(n)) if n.isdigit() else n for n in nums) + (parts["pre"] or "") + (parts["build"] or "")
    exact = len(nums) == 3 and all(n.isdigit() for n in nums)
    # npm has no !=; Masterminds' != is "below or above", which npm can say.
    desugar = f"<{canonical} || >{canonical}" if op == "!=" else op + canonical
    try:
        lib_range = nodesemver.make_range(desugar, False)
    except ValueError:
        raise _bad(constraint, f"{op}{text} is not a comparison (a pre-release needs all of MAJOR.MINOR.PATCH)") from None
    if op in ("<", ">="):
        whole, numbers = True, False
    elif op in ("!=", ">", "<="):
        whole, numbers = exact, not exact
    elif op in ("", "="):
        whole, numbers = True, not exact
    else:  # ~ and ^
        whole, numbers = True, True
    return _Comparison(lib_range, whole, numbers), bool(parts["pre"]), anchor


def _parse(constraint: str) -> tuple[tuple[_Group, ...], SemVer | None]:
    """A Masterminds constraint as OR groups of AND-ed comparisons, and the first version it names."""
    # Masterminds rewrites hyphen ranges first, anywhere in the string ("1.2 - 1.4.5" is ">= 1.2, <= 1.4.5").
    rewritten = _HYPHEN.sub(lambda m: f" >= {m[1]}, <= {m[2]} ", constraint)
    groups: list[_Group] = []
    named: list[SemVer | None] = []
    for text in rewritten.split("||"):
        if not _GROUP.fullmatch(text):
            shown = text.strip()
            raise _bad(constraint, f"{shown!r} is not a comparison" if shown else "an empty alternative")
        comparisons: list[_Comparison] = []
        names_prerelease = False
        for token in _TOKEN.finditer(text):
            comparison, pre, version = _comparison(constraint, token["op"] or "", token["ver"])
            comparisons.append(comparison)
            names_prerelease = names_prerelease or pre
            named.append(version)
        groups.append(_Group(tuple(comparisons), names_prerelease))
    return tuple(groups), named[0]


@dataclass(frozen=True)
class _Constraint:
    groups: tuple[_Group, ...]
    anchor: SemVer | None  # where "closest" is measured from when nothing matches
    names_prerelease: bool

    @classmethod
    def parse(cls, constraint: str) -> _Constraint:
        groups, anchor = _parse(constraint)
        return cls(groups, anchor, any(g.names_prerelease for g in groups))

    def allows(self, version: SemVer) -> bool:
        release = _release_of(version) if version.prerelease else None
        return any(g.allows(version, release) for g in self.groups)


@cache
def _releases() -> _Constraint:
    """What `highest` ranks without a constraint: every release, no pre-release (made when first asked)."""
    return _Constraint.parse("*")


@dataclass(frozen=True)
class TagFilter:
    """Tags kept by a regular expression, then by a semantic version constraint, as Flux's
    OCIRepository ``ref.semverFilter`` then ``ref.semver``.

    `semver` is a Masterminds/semver v3 constraint (see ``ACCEPTED_FORMS``); `regex` a regular
    expression in Go's (RE2's) language, as Flux's, that need only match somewhere in the tag,
    matched in linear time. Both are checked here: a bad one is a UsageError.
    """

    semver: str | None
    regex: str | None
    _pattern: TagPattern | None = field(init=False, repr=False, compare=False)
    _constraint: _Constraint | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        pattern = None
        if self.regex is not None:
            pattern = TagPattern(self.regex)
        constraint = _Constraint.parse(self.semver) if self.semver is not None else None
        object.__setattr__(self, "_pattern", pattern)
        object.__setattr__(self, "_constraint", constraint)

    @classmethod
    def build(cls, semver: str | None, regex: str | None) -> TagFilter:
        return cls(semver=semver, regex=regex)

    def _kept(self, tags: Iterable[str]) -> list[str]:
        pattern = self._pattern
        return [t for t in tags if len(t) <= MAX_TAG_LENGTH and (pattern is None or pattern.found(t))]

    def matching(self, tags: Iterable[str]) -> list[str]:
        """Every tag the regex finds something in and the constraint allows.

        Ascending by version, ties by tag, when there is a constraint; otherwise in the order given.
        """
        kept = self._kept(tags)
        if self._constraint is None:
            return kept
        return _ranked(kept, self._constraint)

    def highest(self, tags: Iterable[str], where: str) -> str:
        """The highest tag that passes; without a constraint, the highest release version the regex keeps.

        Nothing passing is a NotFoundError naming `where` and listing the closest tags: the versions
        nearest the constraint's first version, or a sample of the tags the regex kept or missed.
        """
        usable = [t for t in tags if len(t) <= MAX_TAG_LENGTH]
        kept = self._kept(usable)
        constraint = self._constraint or _releases()
        found = _ranked(kept, constraint)
        if found:
            return found[-1]
        message, closest = self._nothing(where, usable, kept, constraint)
        if closest:
            message += "; closest: " + ", ".join(closest)
        raise NotFoundError(message, candidates=[{"tag": t} for t in closest])

    def _nothing(self, where: str, usable: list[str], kept: list[str], constraint: _Constraint) -> tuple[str, list[str]]:
        if not usable:
            return f"{where} has no tags", []
        if self.regex is not None and not kept:
            return f"no tag in {where} matches the regex {self.regex!r} ({len(usable)} tags)", _closest(usable, None)
        wanted = f"the semver constraint {self.semver!r}" if self.semver is not None else "a release version"
        among = f" among the {len(kept)} tags matching {self.regex!r}" if self.regex is not None else ""
        closest = _closest(kept, constraint.anchor)
        if not any(tag_version(t) is not None for t in kept):
            return (f"no tag in {where} satisfies {wanted}{among}: none is a semantic version "
                    "(MAJOR.MINOR.PATCH with an optional leading v)"), closest
        message = f"no tag in {where} satisfies {wanted}{among}"
        if not constraint.names_prerelease and any(v.prerelease for t in closest if (v := tag_version(t)) is not None):
            message += " (pre-releases count only where the constraint names one, e.g. >=1.0.0-0)"
        return message, closest


def _ranked(tags: Iterable[str], constraint: _Constraint) -> list[str]:
    ranked = [(v, t) for t in tags if (v := tag_version(t)) is not None and constraint.allows(v)]
    ranked.sort(key=lambda vt: _order(*vt))
    return [t for _, t in ranked]


def _closest(tags: Sequence[str], anchor: SemVer | None) -> list[str]:
    """Up to MAX_CLOSEST version tags nearest `anchor` (the highest without one), highest first;
    a sample of the tags when none is a version."""
    versions = sorted(((v, t) for t in tags if (v := tag_version(t)) is not None), key=lambda vt: _order(*vt))
    if not versions:
        return list(tags[:MAX_CLOSEST])
    keys = [_order(v, t) for v, t in versions]
    at = len(versions) if anchor is None else bisect.bisect_left(keys, _order(anchor, ""))
    lo, hi = at, at  # widen the window [lo, hi) around the anchor, one step to each side in turn
    while hi - lo < min(MAX_CLOSEST, len(versions)):
        if hi < len(versions) and (lo == 0 or hi - at <= at - lo):
            hi += 1
        else:
            lo -= 1
    return [t for _, t in reversed(versions[lo:hi])]

