"""The sync spec: every form it accepts, every mistake found up front with its line, and hostile files bounded."""

from __future__ import annotations

import textwrap
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocisift._core.errors import ReferenceError_, UsageError
from ocisift._core.platform import Platform
from ocisift._core.reference import LayoutReference, RegistryReference
from ocisift._core.specfile import load_spec, parse_spec
from ocisift._core.syncspec import (
    MAX_DEPTH,
    MAX_NODES,
    MAX_SPEC_BYTES,
    TAGS_EXPECTED,
    SyncImage,
    TagChoice,
)

DIGEST = "sha256:" + "a" * 64
NAME = "mirror.yaml"


def no_disk(path: str):
    return None


def probe_of(layouts: dict[str, str]):
    return lambda path: layouts.get(path)


def spec(text: str, probe=no_disk):
    return parse_spec(textwrap.dedent(text), NAME, probe)


def error(text: str, probe=no_disk) -> UsageError:
    with pytest.raises(UsageError) as info:
        spec(text, probe)
    assert info.value.exit_code == 2
    return info.value


# -- what a spec may say ------------------------------------------------------

EVERY_FORM = """\
defaults:
  platforms: [linux/amd64, linux/arm64/v8]
  referrers: true
images:
  - source: registry.example/acme/app
    tags: [1.0, 1.10, "2.0", latest, 010, true, v1_2-rc.3]
    destination: oci:mirror/app
  - source: docker://ghcr.io/acme/tool
    tags: {semver: ">=1 <2"}
    destination: oci-archive:out/tool.tar
    platforms: all
    referrers: false
  - source: oci:layouts/src
    tags: {regex: "^v1\\\\."}
    destination: registry.example/mirror/src
    platforms: [linux/arm/v7]
  - source: oci:store/registry.example/acme/app
    tags:
      semver: ~1.2
      regex: ^1\\.
    destination: oci:store2/registry.example/mirror/app
  - source: oci-archive:in/app.tar
    tags: all
    destination: localhost:5000/team/app
    referrers: no
"""


def test_every_form_parses_with_its_line():
    parsed = parse_spec(EVERY_FORM, NAME, probe_of({"store": "dir", "store2": "dir", "in/app.tar": "file"}))
    assert parsed.path == NAME
    app, tool, src, named, archive = parsed.images
    defaults = (Platform("linux", "amd64"), Platform("linux", "arm64", "v8"))

    assert app == SyncImage(
        source=RegistryReference(app.source.image, implicit_tag=True),  # type: ignore[union-attr]
        destination=LayoutReference("mirror/app", "dir"),
        tags=TagChoice(kind="list", tags=("1.0", "1.10", "2.0", "latest", "010", "true", "v1_2-rc.3")),
        platforms=defaults,
        referrers=True,
        line=5,
    )
    assert str(app.source) == "registry.example/acme/app"
    assert isinstance(app.source, RegistryReference) and app.source.tag is None and app.source.implicit_tag

    assert str(tool.source) == "ghcr.io/acme/tool"
    assert tool.destination == LayoutReference("out/tool.tar", "archive")
    assert tool.tags == TagChoice(kind="semver", semver=">=1 <2")
    assert (tool.platforms, tool.referrers, tool.line) == (None, False, 8)

    assert src.source == LayoutReference("layouts/src", "dir")
    assert str(src.destination) == "registry.example/mirror/src"
    assert src.tags == TagChoice(kind="regex", regex="^v1\\.")
    assert (src.platforms, src.referrers, src.line) == ((Platform("linux", "arm", "v7"),), True, 13)

    assert isinstance(named.source, LayoutReference) and named.source.path == "store"
    assert named.source.image is not None and named.source.image.name == "registry.example/acme/app"
    assert named.source.image.tag is None
    assert str(named.destination) == "oci:store2/registry.example/mirror/app"
    assert named.tags == TagChoice(kind="semver", semver="~1.2", regex="^1\\.")
    assert named.line == 17
    assert (named.tags.line, named.tags.semver_line) == (19, 19)
    assert (tool.tags.line, tool.tags.semver_line, app.tags.line, app.tags.semver_line) == (9, 9, 6, None)

    assert archive.source == LayoutReference("in/app.tar", "archive")
    assert str(archive.destination) == "localhost:5000/team/app"
    assert archive.tags == TagChoice(kind="all")
    assert (archive.platforms, archive.referrers, archive.line) == (defaults, False, 22)


def test_tags_are_the_text_as_written_not_what_yaml_would_type_them_as():
    parsed = spec("""\
        images:
          - source: a.io/x
            destination: oci:out
            tags: [1.0, 1.10, 1e3, 0x10, 1_000, 2024-01-02, on, '7', "null"]
        """)
    assert parsed.images[0].tags.tags == ("1.0", "1.10", "1e3", "0x10", "1_000", "2024-01-02", "on", "7", "null")


def test_without_defaults_every_platform_and_no_referrers():
    parsed = spec("""\
        images:
          - {source: a.io/x, tags: [1], destination: b.io/x}
        """)
    (image,) = parsed.images
    assert (image.platforms, image.referrers, image.line) == (None, False, 2)
    assert image.tags.tags == ("1",)


def test_one_reference_per_tag():
    parsed = parse_spec(EVERY_FORM, NAME, probe_of({"store": "dir", "store2": "dir"}))
    app, tool, _, named, _ = parsed.images
    assert str(app.source_at("1.0")) == "registry.example/acme/app:1.0"
    assert str(app.destination_at("1.0")) == "oci:mirror/app:1.0"
    assert str(tool.destination_at("v2")) == "oci-archive:out/tool.tar:v2"
    assert str(named.source_at("3")) == "oci:store/registry.example/acme/app:3"
    assert isinstance(app.source_at("1"), RegistryReference) and not app.source_at("1").implicit_tag


def test_load_spec_reads_a_file(tmp_path):
    path = tmp_path / NAME
    path.write_text(EVERY_FORM, encoding="utf-8")
    parsed = load_spec(str(path), no_disk)
    assert parsed.path == str(path) and len(parsed.images) == 5


# -- every mistake, with its line and key path --------------------------------

IMAGE = "images:\n  - source: a.io/x\n    tags: [1]\n    destination: oci:out\n"

ERRORS = [
    # (spec, message start, something the message says)
    (IMAGE + "    destinaton: b.io/y\n", "mirror.yaml:5: images[0].destinaton: ", "did you mean 'destination'?"),
    ("image:\n  - {}\n", "mirror.yaml:1: image: ", "did you mean 'images'?"),
    ("defaults:\n  platform: [linux/amd64]\n" + IMAGE, "mirror.yaml:2: defaults.platform: ", "did you mean 'platforms'?"),
    ("defaults:\n  tags: all\n" + IMAGE, "mirror.yaml:2: defaults.tags: ", "known keys: platforms, referrers"),
    ("images:\n  - source: a.io/x\n    destination: oci:o\n    tags: 1.0\n", "mirror.yaml:4: images[0].tags: ",
     TAGS_EXPECTED),
    ("images:\n  - source: a.io/x\n    destination: oci:o\n    tags: latest\n", "mirror.yaml:4: images[0].tags: ",
     TAGS_EXPECTED),
    ("images:\n  - source: a.io/x\n    destination: oci:o\n    tags:\n", "mirror.yaml:4: images[0].tags: ", "nothing"),
    ("images:\n  - source: a.io/x\n    destination: oci:o\n    tags: []\n", "mirror.yaml:4: images[0].tags: ",
     "the list is empty"),
    ("images:\n  - source: a.io/x\n    destination: oci:o\n    tags: {}\n", "mirror.yaml:4: images[0].tags: ",
     "give semver, regex or both"),
    ("images:\n  - source: a.io/x\n    destination: oci:o\n    tags: {semvr: '^1'}\n",
     "mirror.yaml:4: images[0].tags.semvr: ", "did you mean 'semver'?"),
    ("images:\n  - source: a.io/x\n    destination: oci:o\n    tags:\n      - ok\n      - -bad\n",
     "mirror.yaml:6: images[0].tags[1]: ", "invalid tag '-bad'"),
    ("images:\n  - source: a.io/x\n    destination: oci:o\n    tags: [a, ~]\n", "mirror.yaml:4: images[0].tags[1]: ",
     "quote it"),
    ("images:\n  - source: a.io/x\n    destination: oci:o\n    tags: [a, [b]]\n", "mirror.yaml:4: images[0].tags[1]: ",
     "expected a tag, not a list"),
    ("images:\n  - source: a.io/x\n    destination: oci:o\n    tags: [a, '" + "t" * 129 + "']\n",
     "mirror.yaml:4: images[0].tags[1]: ", "at most 128"),
    ("images:\n  - source: a.io/x\n    destination: oci:o\n    tags:\n      - 1.0\n      - '1.0'\n",
     "mirror.yaml:6: images[0].tags[1]: ", "listed twice (lines 5 and 6)"),
    ("images:\n  - source: a.io/x\n    destination: oci:o\n    tags:\n      regex: '(v1'\n",
     "mirror.yaml:5: images[0].tags.regex: ", "invalid regular expression '(v1'"),
    ("images:\n  - source: a.io/x\n    destination: oci:o\n    tags:\n      semver: ''\n",
     "mirror.yaml:5: images[0].tags.semver: ", "empty string"),
    ("images:\n  - source: a.io/x\n    destination: oci:o\n    tags:\n      semver: [1]\n",
     "mirror.yaml:5: images[0].tags.semver: ", "expected a semantic version range, not a list"),
    ("images:\n  - source: a.io/x\n    destination: oci:o\n    tags:\n      regex: '" + "a" * 1025 + "'\n",
     "mirror.yaml:5: images[0].tags.regex: ", "longer than 1024 characters"),
    ("images:\n  - source: a.io/x:1.0\n    tags: [1]\n    destination: oci:o\n", "mirror.yaml:2: images[0].source: ",
     "without a tag or digest"),
    (f"images:\n  - source: a.io/x@{DIGEST}\n    tags: [1]\n    destination: oci:o\n",
     "mirror.yaml:2: images[0].source: ", "without a tag or digest"),
    ("images:\n  - source: docker://a.io/x:latest\n    tags: [1]\n    destination: oci:o\n",
     "mirror.yaml:2: images[0].source: ", "without a tag or digest"),
    ("images:\n  - source: oci:in:v1\n    tags: [1]\n    destination: oci:o\n", "mirror.yaml:2: images[0].source: ",
     "without a tag or digest"),
    (f"images:\n  - source: oci-archive:in.tar@{DIGEST}\n    tags: [1]\n    destination: oci:o\n",
     "mirror.yaml:2: images[0].source: ", "without a tag or digest"),
    ("images:\n  - source: a.io/x\n    tags: [1]\n    destination: b.io/y:2\n",
     "mirror.yaml:4: images[0].destination: ", "the destination names a repository"),
    ("images:\n  - source: a.io/x\n    tags: [1]\n    destination: oci-archive:o.tar:v1\n",
     "mirror.yaml:4: images[0].destination: ", "without a tag or digest"),
    ("images:\n  - source: A.io/Upper\n    tags: [1]\n    destination: oci:o\n", "mirror.yaml:2: images[0].source: ",
     "invalid reference"),
    ("images:\n  - source: ftp://a/b\n    tags: [1]\n    destination: oci:o\n", "mirror.yaml:2: images[0].source: ",
     "unknown scheme"),
    ("images:\n  - source: docker-archive:in.tar\n    tags: [1]\n    destination: oci:o\n",
     "mirror.yaml:2: images[0].source: ", "docker-archive: cannot be mirrored"),
    ("images:\n  - source: a.io/x\n    tags: [1]\n    destination: docker-archive:o.tar\n",
     "mirror.yaml:4: images[0].destination: ", "docker-archive: cannot be mirrored"),
    ("images:\n  - source: null\n    tags: [1]\n    destination: oci:o\n", "mirror.yaml:2: images[0].source: ",
     "YAML reads null as null"),
    ("images:\n  - source: [a.io/x]\n    tags: [1]\n    destination: oci:o\n", "mirror.yaml:2: images[0].source: ",
     "expected a reference, not a list"),
    ("images:\n  - source: a.io/x\n    tags: [1]\n    destination: a.io/x\n", "mirror.yaml:4: images[0].destination: ",
     "is the source itself"),
    ("images:\n  - source: a.io/x\n    tags: [1]\n", "mirror.yaml:2: images[0]: ", "missing `destination`"),
    ("images:\n  - tags: [1]\n    destination: oci:o\n", "mirror.yaml:2: images[0]: ", "missing `source`"),
    ("images:\n  - source: a.io/x\n    destination: oci:o\n", "mirror.yaml:2: images[0]: ", "missing `tags`"),
    ("images:\n  - a.io/x\n", "mirror.yaml:2: images[0]: ", "expected a mapping of source, tags and destination"),
    ("images: []\n", "mirror.yaml:1: images: ", "the list is empty"),
    ("images:\n", "mirror.yaml:1: images: ", "expected a list of images"),
    ("images: {source: a.io/x}\n", "mirror.yaml:1: images: ", "expected a list of images"),
    ("defaults: {referrers: true}\n", "mirror.yaml:1: ", "missing `images`"),
    ("- a\n- b\n", "mirror.yaml:1: ", "expected a mapping with `images`"),
    ("", "mirror.yaml:1: ", "the spec is empty"),
    ("# only a comment\n", "mirror.yaml:1: ", "the spec is empty"),
    ("defaults:\n  platforms: [linux]\n" + IMAGE, "mirror.yaml:2: defaults.platforms[0]: ", "invalid platform 'linux'"),
    ("defaults:\n  platforms: []\n" + IMAGE, "mirror.yaml:2: defaults.platforms: ", "the list is empty"),
    ("defaults:\n  platforms: linux/amd64\n" + IMAGE, "mirror.yaml:2: defaults.platforms: ",
     'expected a list of platforms (for example [linux/amd64]) or "all"'),
    (IMAGE + "    platforms:\n      - linux/amd64\n      - linux/amd64\n", "mirror.yaml:7: images[0].platforms[1]: ",
     "listed twice"),
    ("defaults:\n  referrers: 'yes'\n" + IMAGE, "mirror.yaml:2: defaults.referrers: ", "expected true or false"),
    (IMAGE + "    referrers: 1\n", "mirror.yaml:5: images[0].referrers: ", "expected true or false, not '1'"),
    (IMAGE + "    tags: [2]\n", "mirror.yaml:5: images[0].tags: ", "given twice (lines 3 and 5)"),
    ("images:\n  - source: a.io/x\n    tags: [1]\n    destination: oci:o\n  - source: a.io/x\n    tags: [2]\n"
     "    destination: oci:o\n", "mirror.yaml:5: images: ", "listed twice (lines 2 and 5)"),
    ("images:\n  - source: a.io/x\n    tags: [1\n", "mirror.yaml:4: ", "not valid YAML"),
    ("images:\n  - source: 'a.io/x\n", "mirror.yaml:3: ", "not valid YAML"),
    ("images:\n\t- source: a.io/x\n", "mirror.yaml:2: ", "not valid YAML"),
    (IMAGE + "---\n" + IMAGE, "mirror.yaml:5: ", "expected a single document"),
    ("? [a]\n: b\n", "mirror.yaml:1: ", "keys are names (defaults, images), not a list"),
    (IMAGE + "    ~: b\n", "mirror.yaml:5: images[0]: ", "keys are names"),
    ("images:\n  - source: a.io/x\n    tags: [1]\n    destination: oci:o\n    \x01: b\n", "mirror.yaml:5: ",
     "character U+0001 is not allowed"),
]


@pytest.mark.parametrize(("text", "start", "says"), ERRORS, ids=[f"error{i}" for i in range(len(ERRORS))])
def test_each_mistake_names_file_line_and_key_path(text, start, says):
    with pytest.raises(UsageError) as info:
        parse_spec(text, NAME, no_disk)
    message = info.value.message
    assert info.value.exit_code == 2
    assert message.startswith(start), message
    assert says in message, message


def test_reference_errors_keep_their_kind():
    err = error("images:\n  - source: A.io/Upper\n    tags: [1]\n    destination: oci:o\n")
    assert isinstance(err, ReferenceError_) and err.kind == "reference"


def test_a_named_image_inside_a_layout_carries_no_tag_either():
    text = "images:\n  - source: oci:store/registry.example/app:1\n    tags: [1]\n    destination: oci:o\n"
    err = error(text, probe_of({"store": "dir"}))
    assert err.message.startswith("mirror.yaml:2: images[0].source: ") and "without a tag or digest" in err.message


def test_an_override_undoes_the_default_platforms():
    parsed = spec("""\
        defaults: {platforms: [linux/amd64], referrers: true}
        images:
          - {source: a.io/x, tags: all, destination: oci:o, platforms: all}
          - {source: a.io/y, tags: all, destination: oci:p}
        """)
    assert [i.platforms for i in parsed.images] == [None, (Platform("linux", "amd64"),)]


# -- hostile files --------------------------------------------------------------


def test_anchors_and_aliases_are_refused_with_their_line():
    err = error("images:\n  - &one {source: a.io/x, tags: [1], destination: oci:o}\n  - *one\n")
    assert err.message == "mirror.yaml:2: YAML anchors and aliases (& and *) are not allowed in a sync spec"
    err = error("images:\n  - {source: a.io/x, tags: [1], destination: oci:o}\n  - *one\n")
    assert err.message.startswith("mirror.yaml:3: ")


def test_billion_laughs_ends_at_once():
    rows = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    rows += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    start = time.monotonic()
    err = error("\n".join(rows) + "\n")
    assert time.monotonic() - start < 1
    assert "anchors and aliases" in err.message


@pytest.mark.parametrize("opening", ["[", "{a: ", "- ", "images:\n" + "".join("  " * i + "- \n" for i in range(1, 40))])
def test_deep_nesting_is_refused_early(opening):
    text = opening * 200_000 if len(opening) < 5 else opening
    start = time.monotonic()
    err = error(text)
    assert time.monotonic() - start < 2
    assert f"nested more than {MAX_DEPTH} levels deep" in err.message


def test_node_count_is_bounded():
    text = "images: [" + "a, " * (MAX_NODES + 10) + "]\n"
    start = time.monotonic()
    err = error(text)
    assert time.monotonic() - start < 30
    assert err.message == f"mirror.yaml:1: more than {MAX_NODES:,} YAML nodes, the most a sync spec may hold"


def test_size_is_bounded(tmp_path):
    big = "# " + "x" * MAX_SPEC_BYTES + "\n" + IMAGE
    with pytest.raises(UsageError, match="over 1 MiB"):
        parse_spec(big, NAME, no_disk)
    path = tmp_path / NAME
    path.write_text(big)
    with pytest.raises(UsageError, match="over 1 MiB") as info:
        load_spec(str(path), no_disk)
    assert info.value.message.startswith(f"{path}: ")
    path.write_text("# " + "x" * (MAX_SPEC_BYTES - 100) + "\n" + IMAGE)  # just under: fine
    assert len(load_spec(str(path), no_disk).images) == 1


def test_non_utf8_names_the_line(tmp_path):
    path = tmp_path / NAME
    path.write_bytes(b"images:\n  - source: a.io/x\n    tags: [caf\xe9]\n")
    with pytest.raises(UsageError) as info:
        load_spec(str(path), no_disk)
    assert info.value.message == f"{path}:3: not UTF-8 text (byte 0xe9 at offset 41)"
    path.write_bytes("images: [\ufeff]\n".encode("utf-16"))
    with pytest.raises(UsageError, match="not UTF-8"):
        load_spec(str(path), no_disk)


def test_a_bom_is_fine(tmp_path):
    path = tmp_path / NAME
    path.write_bytes(b"\xef\xbb\xbf" + IMAGE.encode())
    assert len(load_spec(str(path), no_disk).images) == 1


def test_missing_and_unreadable_files_are_usage_errors(tmp_path):
    with pytest.raises(UsageError) as info:
        load_spec(str(tmp_path / "nope.yaml"))
    assert info.value.exit_code == 2 and info.value.message == f"{tmp_path / 'nope.yaml'}: no such sync spec file"
    with pytest.raises(UsageError, match="is a directory"):
        load_spec(str(tmp_path))


def test_long_values_are_cut_short_in_messages():
    err = error("images:\n  - source: a.io/x\n    destination: oci:o\n    tags: ['" + "-" * 5000 + "']\n")
    assert len(err.message) < 400
    err = error("images:\n  - source: a.io/x\n    destination: oci:o\n    " + "k" * 100_000 + ": 1\n")
    assert len(err.message) < 400


# -- nothing but a spec or a UsageError comes out -------------------------------

FRAGMENTS = st.sampled_from([
    "images:", "defaults:", "platforms:", "referrers:", "source:", "destination:", "tags:", "semver:", "regex:",
    " ", "  ", "\n", "\n  ", "\n    ", "- ", "[", "]", "{", "}", ",", ":", "?", "&a", "*a", "!!str", "!!int", "!x",
    "'", '"', "#", "|", ">", "---", "...", "%YAML 1.1", "all", "true", "no", "~", "null", "1.0", "0x1f", "-1",
    "a.io/x", "docker://a.io/x", "oci:o", "oci:o/n", "oci-archive:f.tar", "docker-archive:f", "a.io/x:1",
    f"a.io/x@{DIGEST}", "linux/amd64", "linux", "^v1\\.", "(", ">=1 <2", "\\", "\t", "\x00", "\ufeff", "é", "\U0001f600",
])
SPECISH = st.lists(FRAGMENTS, max_size=60).map("".join)


def _only_usage_errors(text: str) -> None:
    try:
        parsed = parse_spec(text, NAME, no_disk)
    except UsageError as exc:
        assert exc.exit_code == 2
        assert exc.message.startswith(NAME + ":")
    else:
        assert parsed.images


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=400))
def test_arbitrary_text_gives_a_spec_or_a_usage_error(text):
    _only_usage_errors(text)


@settings(max_examples=600, deadline=None)
@given(SPECISH)
def test_yaml_like_text_gives_a_spec_or_a_usage_error(text):
    _only_usage_errors(text)


@settings(max_examples=300, deadline=None)
@given(st.lists(FRAGMENTS, max_size=30).map("".join))
def test_any_value_in_a_valid_frame_gives_a_spec_or_a_usage_error(value):
    for frame in (
        "images:\n  - source: {v}\n    tags: [1]\n    destination: oci:o\n",
        "images:\n  - source: a.io/x\n    tags: {v}\n    destination: oci:o\n",
        "images:\n  - source: a.io/x\n    tags:\n      regex: {v}\n    destination: oci:o\n",
        "defaults:\n  platforms: {v}\n  referrers: {v}\nimages:\n  - {{source: a.io/x, tags: [{v}], destination: b.io/x}}\n",
    ):
        _only_usage_errors(frame.format(v=value))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300) | SPECISH.map(lambda s: s.encode("utf-8", "surrogatepass")))
def test_arbitrary_bytes_from_a_file_give_a_spec_or_a_usage_error(tmp_path, data):
    path = tmp_path / NAME
    path.write_bytes(data)
    try:
        load_spec(str(path), no_disk)
    except UsageError as exc:
        assert exc.exit_code == 2 and exc.message.startswith(str(path) + ":")


def test_a_semver_range_keeps_its_own_line_for_later_checks():
    parsed = spec("""\
        images:
          - source: a.io/x
            destination: oci:o
            tags:
              regex: ^v
              semver: ">=>=1"
        """)
    choice = parsed.images[0].tags
    assert (choice.kind, choice.semver, choice.regex, choice.line, choice.semver_line) == ("semver", ">=>=1", "^v", 5, 6)
