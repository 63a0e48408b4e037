"""Tag selection by semantic version, as Flux's OCIRepository ref.semver and ref.semverFilter."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocisift._core.errors import NotFoundError, UsageError
from ocisift._core.versions import MAX_TAG_LENGTH, TagFilter, tag_version


def allowed(constraint: str, tag: str) -> bool:
    return TagFilter.build(constraint, None).matching([tag]) == [tag]


# Examples from the Masterminds/semver v3 README, "Checking Version Constraints"; each row names its section.
MASTERMINDS = [
    # Basic Comparisons: space or comma separated ANDs, || between ORs
    (">= 1.2 < 3.0.0 || >= 4.2.3", "1.2.0", True),
    (">= 1.2 < 3.0.0 || >= 4.2.3", "2.9.9", True),
    (">= 1.2 < 3.0.0 || >= 4.2.3", "3.0.0", False),
    (">= 1.2 < 3.0.0 || >= 4.2.3", "4.2.3", True),
    (">=1.0.0 <2.0.0", "1.5.0", True),
    (">=1.0.0 <2.0.0", "2.0.0", False),
    (">=1.0.0, <2.0.0", "1.9.9", True),
    (">=1.0.0,<2.0.0", "2.0.0", False),
    ("=1.2.3", "1.2.3", True),
    ("1.2.3", "1.2.4", False),
    ("!=1.2.3", "1.2.3", False),
    ("!=1.2.3", "1.2.4", True),
    (">=1.0.0 !=1.2.0", "1.2.0", False),
    ("> 1.2.3", "1.2.4", True),
    ("< 1.2.3", "1.2.2", True),
    ("<= 1.2.3", "1.2.3", True),
    ("=> 1.2.3", "1.2.3", True),
    ("=< 1.2.3", "1.2.4", False),
    # Working With Prerelease Versions: skipped unless the constraint names one; -0 is the lowest
    (">=1.0.0", "1.1.0-rc.1", False),
    (">=1.1.0-0", "1.1.0-rc.1", True),
    (">=1.2.3", "1.2.3-beta.1", False),
    (">=1.2.3-0", "1.2.3-beta.1", True),
    (">=1.2.3-BETA", "1.2.3-alpha", True),  # ASCII order: A-Z before a-z
    # Masterminds 3.4 ("pre-releases for an and group if one constraint includes them", which Flux has):
    # every pre-release counts in that group, while ^, ~ and wildcards still bound it by its numbers.
    (">1.0.0-beta.1 <2", "1.5.0-rc.1", True),
    (">=1.0.0-0", "1.1.0-rc.1", True),
    ("^1.0.0-0", "1.5.0-rc.1", True),
    ("^1.0.0-0", "2.0.0-rc.1", False),
    ("~1.2.3-beta", "1.2.4-alpha", True),
    ("~1.2.3-beta", "1.3.0-rc.1", False),
    (">=1.0.0-0 || >=3.0.0", "1.5.0-rc.1", True),
    (">=1.0.0 || >=3.0.0-0", "1.5.0-rc.1", False),  # the rule is per OR group
    # Hyphen Range Comparisons
    ("1.2 - 1.4.5", "1.2.0", True),
    ("1.2 - 1.4.5", "1.4.5", True),
    ("1.2 - 1.4.5", "1.4.6", False),
    ("2.3.4 - 4.5", "4.5.9", True),
    ("2.3.4 - 4.5", "4.6.0", False),
    ("2.3.4 - 4.5", "2.3.3", False),
    # Wildcards In Comparisons
    ("1.2.x", "1.2.9", True),
    ("1.2.x", "1.3.0", False),
    (">= 1.2.x", "1.3.0", True),
    ("<= 2.x", "2.9.9", True),
    ("<= 2.x", "3.0.0", False),
    ("*", "0.0.1", True),
    ("*", "3.0.0-rc.1", False),
    ("1.x", "1.9.0", True),
    ("1.*", "1.0.0", True),
    ("1.X", "2.0.0", False),
    ("1", "1.9.9", True),
    ("1", "2.0.0", False),
    # Tilde Range Comparisons (Patch)
    ("~1.2.3", "1.2.3", True),
    ("~1.2.3", "1.2.9", True),
    ("~1.2.3", "1.3.0", False),
    ("~1", "1.9.0", True),
    ("~1", "2.0.0", False),
    ("~2.3", "2.3.7", True),
    ("~2.3", "2.4.0", False),
    ("~1.2", "1.2.0", True),
    ("~1.2", "1.3.0", False),
    ("~>1.2", "1.2.5", True),
    ("~1.x", "1.9.0", True),
    # Caret Range Comparisons (Major)
    ("^1.2.3", "1.2.3", True),
    ("^1.2.3", "1.9.9", True),
    ("^1.2.3", "2.0.0", False),
    ("^1.2.x", "1.2.0", True),
    ("^2.3", "2.9.0", True),
    ("^2.3", "3.0.0", False),
    ("^2.x", "2.0.0", True),
    ("^0.2.3", "0.2.9", True),
    ("^0.2.3", "0.3.0", False),
    ("^0.2", "0.2.0", True),
    ("^0.2", "0.3.0", False),
    ("^0.0.3", "0.0.3", True),
    ("^0.0.3", "0.0.4", False),
    ("^0.0", "0.0.9", True),
    ("^0.0", "0.1.0", False),
    ("^0", "0.9.9", True),
    ("^0", "1.0.0", False),
    # Parsing Semantic Versions: a leading v, and (CoerceNewVersion) leading zeros, in tags and constraints
    (">=1.2.0", "v1.2.0", True),
    (">= v1.2", "v1.3.0", True),
    ("^2025.1.0", "v2025.02.03", True),
    (">=2025.01.0", "2025.1.0", True),
    # Build metadata is ignored in comparisons
    ("=1.2.3", "1.2.3+build.5", True),
    ("1.2.3+other", "1.2.3+build.5", True),
    (">1.2.3", "1.2.3+build.5", False),
]


@pytest.mark.parametrize(("constraint", "tag", "expected"), MASTERMINDS)
def test_masterminds_examples(constraint: str, tag: str, expected: bool) -> None:
    assert allowed(constraint, tag) is expected


@pytest.mark.parametrize(
    ("tag", "version"),
    [
        ("1.2.3", "1.2.3"),
        ("v1.2.3", "1.2.3"),
        ("v2025.02.03-rc.1", "2025.2.3-rc.1"),  # Flux's ParseVersion lets leading zeros through
        ("1.2-rc.1", "1.2.0-rc.1"),  # two dots, as Flux counts them
        ("1.0.0+build.1", "1.0.0"),
    ],
)
def test_tag_versions(tag: str, version: str) -> None:
    parsed = tag_version(tag)
    assert parsed is not None and str(parsed) == version


@pytest.mark.parametrize(
    "tag",
    ["latest", "1", "1.2", "v1.2", "20240101", "sha-1a2b3c", "1.2.3.4", "1.2.3-01", "1.2.3-", "V1.2.3", "=1.2.3",
     " 1.2.3", "1.2.3 ", "1.2.3_build", "18446744073709551616.0.0", "1.2.3-" + "a" * MAX_TAG_LENGTH],
)
def test_tags_that_are_not_versions(tag: str) -> None:
    assert tag_version(tag) is None


def test_highest_picks_the_highest_in_range_and_skips_other_tags() -> None:
    tags = ["latest", "1.9.0", "2.0.0", "v2.3.1", "2.3.0", "2.4.0-rc.1", "3.0.0", "2.3", "main"]
    assert TagFilter.build("^2.0.0", None).highest(tags, "registry.test/app") == "v2.3.1"
    assert TagFilter.build("~2.3", None).matching(tags) == ["2.3.0", "v2.3.1"]
    assert TagFilter.build(">=2.0.0-0 <3.0.0", None).highest(tags, "registry.test/app") == "2.4.0-rc.1"


def test_ties_go_to_the_lexically_greater_tag() -> None:
    f = TagFilter.build(">=1.0.0", None)
    assert f.highest(["1.0.0", "v1.0.0"], "r") == "v1.0.0"
    assert f.highest(["v1.0.0", "1.0.0"], "r") == "v1.0.0"
    assert f.highest(["1.0.0+b", "1.0.0+a", "1.0.0"], "r") == "1.0.0+b"
    assert f.matching(["1.0.0+b", "v1.0.0", "1.0.0+a", "1.0.0"]) == ["1.0.0", "1.0.0+a", "1.0.0+b", "v1.0.0"]


def test_regex_filters_first_then_semver() -> None:
    # Flux's own semverFilter example: a pre-release stream picked out of a repository that also has releases.
    tags = ["6.0.0", "6.1.0-beta.1", "6.1.0-rc.1", "6.1.0-rc.2", "6.1.0", "6.2.0-beta.1"]
    f = TagFilter.build(">=6.0.0-0", ".*-rc.*")
    assert f.matching(tags) == ["6.1.0-rc.1", "6.1.0-rc.2"]
    assert f.highest(tags, "r") == "6.1.0-rc.2"
    assert TagFilter.build(">=6.0.0-0", None).highest(tags, "r") == "6.2.0-beta.1"
    # the regex is a search, as Go's MatchString: it need not match the whole tag
    assert TagFilter.build(None, "rc").matching(tags) == ["6.1.0-rc.1", "6.1.0-rc.2"]
    assert TagFilter.build(None, "^6\\.1").matching(tags) == ["6.1.0-beta.1", "6.1.0-rc.1", "6.1.0-rc.2", "6.1.0"]


def test_without_a_constraint() -> None:
    tags = ["b", "1.0.0", "a", "2.0.0-rc.1", "1.5.0"]
    assert TagFilter.build(None, None).matching(tags) == tags  # input order
    assert TagFilter.build(None, None).highest(tags, "r") == "1.5.0"  # as "*": releases only
    assert TagFilter.build(None, "^[ab]$").matching(tags) == ["b", "a"]


def test_tags_over_the_oci_limit_are_ignored() -> None:
    long = "1.0.0-" + "a" * (MAX_TAG_LENGTH - 6)
    longer = long + "a"
    assert len(long) == MAX_TAG_LENGTH
    f = TagFilter.build(">=1.0.0-0", None)
    assert f.matching([long, longer]) == [long]
    assert TagFilter.build(None, "a").matching([long, longer]) == [long]


# Masterminds reads the last six, but as a pre-release of a partial version (1.2.0-1.4.5: the README's
# warning about a hyphen without spaces) or, for a wildcard major after >, <=, != or ^, with accidental
# meanings (<=* is 0.0.z only): refused here so that the user says what they mean.
BAD_CONSTRAINTS = [
    "", " ", "foo", ">=1.0.0 foo", "1.0.0 ||", "|| 1.0.0", ">=", ">=1.0.0 <", ">=1.0.0,,<2", ",>=1.0.0", "1.2.3.4",
    ">=1.0.0<2.0.0", "~", "latest", ">=1.0.0 && <2",
    "1.2-1.4.5", "1.x-beta", "<=*", ">*", "^*", "!=x",
]


@pytest.mark.parametrize("constraint", BAD_CONSTRAINTS)
def test_bad_constraints_are_usage_errors(constraint: str) -> None:
    with pytest.raises(UsageError) as caught:
        TagFilter.build(constraint, None)
    assert caught.value.exit_code == 2
    assert repr(constraint) in caught.value.message
    assert "||" in caught.value.message and "^1.2.3" in caught.value.message  # names the accepted forms


def test_bad_regex_is_a_usage_error() -> None:
    with pytest.raises(UsageError) as caught:
        TagFilter.build(None, "v(1")
    assert caught.value.exit_code == 2 and "'v(1'" in caught.value.message


def test_filters_compare_by_what_they_were_given() -> None:
    assert TagFilter.build("^1", "x") == TagFilter(semver="^1", regex="x")
    assert hash(TagFilter.build("^1", None)) == hash(TagFilter.build("^1", None))


def test_no_match_lists_the_versions_nearest_the_constraint() -> None:
    tags = ["1.0.0", "2.4.0", "2.4.1", "2.6.0", "3.0.0", "3.1.0", "4.0.0", "latest"]
    with pytest.raises(NotFoundError) as caught:
        TagFilter.build("~2.5", None).highest(tags, "registry.test/app")
    err = caught.value
    assert err.exit_code == 3
    assert "registry.test/app" in err.message and "'~2.5'" in err.message
    assert err.message.endswith("closest: 3.1.0, 3.0.0, 2.6.0, 2.4.1, 2.4.0")
    assert err.candidates == [{"tag": t} for t in ["3.1.0", "3.0.0", "2.6.0", "2.4.1", "2.4.0"]]
    with pytest.raises(NotFoundError) as caught:
        TagFilter.build(">=5.0.0", None).highest(tags, "r")
    assert caught.value.message.endswith("closest: 4.0.0, 3.1.0, 3.0.0, 2.6.0, 2.4.1")


def test_no_match_below_every_tag_lists_the_lowest() -> None:
    tags = ["2.0.0", "2.1.0", "2.2.0", "2.3.0", "2.4.0", "2.5.0", "2.6.0"]
    with pytest.raises(NotFoundError) as caught:
        TagFilter.build("<1.0.0", None).highest(tags, "r")
    assert [c["tag"] for c in caught.value.candidates] == ["2.4.0", "2.3.0", "2.2.0", "2.1.0", "2.0.0"]


def test_no_match_explains_the_pre_release_rule() -> None:
    with pytest.raises(NotFoundError) as caught:
        TagFilter.build(">=1.1.0", None).highest(["1.0.0", "1.1.0-rc.1"], "r")
    assert "pre-releases count only where the constraint names one" in caught.value.message
    assert caught.value.message.endswith("closest: 1.1.0-rc.1, 1.0.0")


def test_no_match_through_the_regex() -> None:
    tags = ["1.0.0", "2.0.0", "latest"]
    with pytest.raises(NotFoundError) as caught:
        TagFilter.build(">=1.0.0", "-rc").highest(tags, "registry.test/app")
    assert "matches the regex '-rc'" in caught.value.message
    assert [c["tag"] for c in caught.value.candidates] == ["2.0.0", "1.0.0"]
    with pytest.raises(NotFoundError) as caught:
        TagFilter.build(">=1.0.0", "^l").highest(tags, "registry.test/app")
    assert "none is a semantic version" in caught.value.message
    assert [c["tag"] for c in caught.value.candidates] == ["latest"]
    with pytest.raises(NotFoundError) as caught:
        TagFilter.build(">=1.0.0", None).highest([], "registry.test/app")
    assert caught.value.message == "registry.test/app has no tags" and caught.value.candidates == []


# Tags drawn from a small space so that ties, pre-releases, v prefixes and build metadata all meet.
_numbers = st.sampled_from(["0", "1", "2", "10"])
_tags = st.one_of(
    st.builds(
        lambda v, a, b, c, pre, build: f"{v}{a}.{b}.{c}{pre}{build}",
        st.sampled_from(["", "v"]), _numbers, _numbers, _numbers,
        st.sampled_from(["", "", "-0", "-rc.1", "-rc.2", "-alpha", "-1"]),
        st.sampled_from(["", "", "+b1", "+b2"]),
    ),
    st.sampled_from(["latest", "1.2", "main", "2"]),
)
_constraints = st.sampled_from(
    ["*", ">=1.0.0", "^1.0.0", "^0.1.0", "~1.2", "~2", ">=1.0.0-0", "^1.0.0-0", "1.x || 10.x", ">0.0.0 <2.0.0",
     "0.1.0 - 2", ">=0.0.0 !=1.1.1", "<=2.x, >0", "=1.1.1"]
)


@settings(max_examples=300, deadline=None)
@given(tags=st.lists(_tags, max_size=25), constraint=_constraints, regex=st.sampled_from([None, "^v", "rc", "^[0-9]"]))
def test_highest_is_the_greatest_of_matching(tags: list[str], constraint: str, regex: str | None) -> None:
    f = TagFilter.build(constraint, regex)
    found = f.matching(tags)
    assert all(t in tags for t in found)
    versions = [tag_version(t) for t in found]
    assert all(v is not None for v in versions)
    assert all(a.compare(b) <= 0 for a, b in itertools.pairwise(versions))
    if not found:
        with pytest.raises(NotFoundError):
            f.highest(tags, "r")
        return
    top = f.highest(tags, "r")
    assert top == found[-1]
    assert top in found
    assert all(tag_version(top).compare(v) >= 0 for v in versions)
    assert f.highest(list(reversed(tags)), "r") == top  # the order the tags come in never matters
