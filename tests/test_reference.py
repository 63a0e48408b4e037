"""The reference grammar: Docker normalisation, layout forms, and bad input before any I/O."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocisift._core.errors import ReferenceError_, UsageError
from ocisift._core.reference import (
    ACCEPTED_FORMS,
    LayoutReference,
    RegistryReference,
    parse_image_name,
    parse_reference,
)

DIGEST = "sha256:" + "a" * 64


def fake_probe(layouts: dict[str, str]):
    return lambda path: layouts.get(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("alpine", "docker.io/library/alpine:latest"),
        ("alpine:3.16", "docker.io/library/alpine:3.16"),
        ("library/alpine:3.16", "docker.io/library/alpine:3.16"),
        ("docker.io/library/alpine:3.16", "docker.io/library/alpine:3.16"),
        ("index.docker.io/library/alpine", "docker.io/library/alpine:latest"),
        ("user/app", "docker.io/user/app:latest"),
        ("localhost/app:1", "localhost/app:1"),
        ("localhost:5000/team/app:1.0", "localhost:5000/team/app:1.0"),
        ("ghcr.io/org/repo/sub:v1-rc.2", "ghcr.io/org/repo/sub:v1-rc.2"),
        (f"ghcr.io/org/repo@{DIGEST}", f"ghcr.io/org/repo@{DIGEST}"),
        (f"ghcr.io/org/repo:1@{DIGEST}", f"ghcr.io/org/repo:1@{DIGEST}"),
        ("127.0.0.1:5000/x", "127.0.0.1:5000/x:latest"),
        ("[::1]:5000/x:2", "[::1]:5000/x:2"),
    ],
)
def test_docker_normalisation(text, expected):
    ref = parse_reference(text, fake_probe({}))
    assert isinstance(ref, RegistryReference)
    assert str(ref) == expected


@pytest.mark.parametrize(
    "text",
    ["", " alpine", "Alpine", "alpine:", "alpine:-bad", "a//b", "alpine@sha256:abc", "alpine@md5:" + "a" * 32,
     "host.io/Repo", "ftp://x/y", "oci:", "oci-archive:", "a" * 300, "alpine:" + "t" * 200, "re po"],
)
def test_bad_references_exit_2_and_show_forms(text):
    with pytest.raises(ReferenceError_) as info:
        parse_reference(text, fake_probe({}))
    assert info.value.exit_code == 2
    assert ACCEPTED_FORMS in info.value.message


def test_layout_forms_and_aliases():
    probe = fake_probe({"store": "dir"})
    for prefix in ("oci:", "oci-layout://", "ocidir://"):
        ref = parse_reference(f"{prefix}store:3.16", probe)
        assert ref == LayoutReference("store", "dir", tag="3.16")
    assert parse_reference("oci:store", probe) == LayoutReference("store", "dir")
    assert parse_reference("oci:store", probe).target.tagless
    assert parse_reference(f"oci:store@{DIGEST}", probe).digest is not None


def test_full_name_inside_a_layout_store_is_normalised():
    probe = fake_probe({"store": "dir"})
    a = parse_reference("oci:store/alpine:3.16", probe)
    b = parse_reference("oci:store/library/alpine:3.16", probe)
    c = parse_reference("oci:store/docker.io/library/alpine:3.16", probe)
    d = parse_reference("oci:store:docker.io/library/alpine:3.16", probe)  # a TAG that parses as a full reference
    assert a.image == b.image == c.image == d.image
    assert str(a.image) == "docker.io/library/alpine:3.16"
    assert a.path == "store" and a.tag is None
    assert parse_reference("oci:store/alpine", probe).image.tag == "latest"


def test_path_with_colons_splits_on_the_layout_on_disk():
    probe = fake_probe({"/data/build:2024/out": "dir", "/data/build:2024": None})
    ref = parse_reference("oci:/data/build:2024/out:v1", probe)
    assert ref == LayoutReference("/data/build:2024/out", "dir", tag="v1")
    tagless = parse_reference("oci:/data/build:2024/out", probe)
    assert tagless.path == "/data/build:2024/out" and tagless.target.tagless
    # A longer existing prefix wins over a shorter one.
    probe2 = fake_probe({"a": "dir", "a:b": "dir"})
    assert parse_reference("oci:a:b:c", probe2) == LayoutReference("a:b", "dir", tag="c")


def test_archive_and_bare_paths():
    probe = fake_probe({"./img.tar": "file", "./lay": "dir", "/abs/lay": "dir"})
    assert parse_reference("oci-archive:./img.tar:1", probe) == LayoutReference("./img.tar", "archive", tag="1")
    assert parse_reference("./img.tar:1", probe) == LayoutReference("./img.tar", "archive", tag="1")
    assert parse_reference("./lay:2", probe) == LayoutReference("./lay", "dir", tag="2")
    assert parse_reference("/abs/lay", probe) == LayoutReference("/abs/lay", "dir")


def test_layout_that_does_not_exist_yet_splits_at_the_last_colon():
    ref = parse_reference("oci:new/out:v2", fake_probe({}))
    assert ref == LayoutReference("new/out", "dir", tag="v2")


def test_bad_layout_suffixes():
    probe = fake_probe({"store": "dir"})
    with pytest.raises(ReferenceError_):
        parse_reference("oci:store:Not A Tag", probe)
    with pytest.raises(ReferenceError_):
        parse_reference("oci:store@sha256:abc", probe)
    with pytest.raises(ReferenceError_):
        parse_reference("oci:store/UPPER:1", probe)


# -- properties ---------------------------------------------------------------------

component = st.from_regex(r"[a-z0-9]{1,8}([._-][a-z0-9]{1,6}){0,2}", fullmatch=True)
plain_component = st.from_regex(r"[a-z0-9]{1,8}([_-][a-z0-9]{1,6}){0,2}", fullmatch=True)
tags = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)
hosts = st.one_of(
    st.none(),
    st.just("localhost"),
    st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]\.[a-z]{2,5}(:[1-9][0-9]{0,4})?", fullmatch=True),
)
digests = st.one_of(st.none(), st.from_regex(r"sha256:[a-f0-9]{64}", fullmatch=True))


@st.composite
def image_names(draw):
    host = draw(hosts)
    first = draw(component if host else plain_component.filter(lambda c: c != "localhost"))
    path = "/".join([first, *draw(st.lists(component, max_size=2))])
    text = f"{host}/{path}" if host else path
    tag = draw(st.one_of(st.none(), tags))
    digest = draw(digests)
    if tag:
        text += f":{tag}"
    if digest:
        text += f"@{digest}"
    return text, host, tag, digest


@settings(max_examples=300, deadline=None)
@given(image_names())
def test_property_valid_names_round_trip(case):
    text, host, tag, digest = case
    parsed = parse_image_name(text)
    again = parse_image_name(str(parsed))
    assert again == parsed
    assert parsed.host == (host or "docker.io")
    if tag:
        assert parsed.tag == tag
    elif not digest:
        assert parsed.tag == "latest"
    if digest:
        assert str(parsed.digest) == digest


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=80))
def test_property_arbitrary_text_parses_or_fails_with_usage_error(text):
    try:
        ref = parse_reference(text, lambda p: None)
    except UsageError as exc:
        assert exc.exit_code == 2
        return
    assert parse_reference(str(ref), lambda p: None) == ref  # what we print parses back to the same thing


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["a", "b:c", "x", "y:z"]), min_size=1, max_size=4), tags)
def test_property_layout_split_picks_the_existing_prefix(parts, tag):
    path = "/".join(parts)
    ref = parse_reference(f"oci:{path}:{tag}", lambda p: "dir" if p == path else None)
    assert isinstance(ref, LayoutReference)
    assert ref.path == path
    assert ref.tag == tag or (ref.image is not None and ref.image.tag == tag)


def test_docker_alias_and_docker_archive_forms():
    from ocisift._core.reference import DockerArchiveReference

    assert parse_reference("docker://localhost:5000/acme/app:1.0") == parse_reference("localhost:5000/acme/app:1.0")
    assert str(parse_reference("docker://alpine").image) == "docker.io/library/alpine:latest"
    with pytest.raises(ReferenceError_):
        parse_reference("docker://")
    probe = fake_probe({"/data/img.tar": "file"})
    plain = parse_reference("docker-archive:/data/img.tar", probe)
    assert plain == DockerArchiveReference("/data/img.tar") and plain.target.tagless
    named = parse_reference("docker-archive:/data/img.tar:alpine:3.16", probe)
    assert named.image == parse_image_name("alpine:3.16") and named.target.name == named.image
    for spelled in ("docker-archive:/data/img.tar@1", "docker-archive:/data/img.tar:@1"):  # ours and skopeo's
        assert parse_reference(spelled, probe).target.position == 1
    new = parse_reference("docker-archive:out/new.tar:example.com/app:2.0", probe)  # not on disk yet
    assert new.path == "out/new.tar" and str(new.image) == "example.com/app:2.0"
    with pytest.raises(ReferenceError_):
        parse_reference("docker-archive:/data/img.tar:alpine@1", probe)


def test_docker_archive_paths_with_at_and_docker_scheme_edges():
    probe = fake_probe({"/d/a@1.tar": "file", "/d/img": "file", "/d/img@2": "file"})
    assert parse_reference("docker-archive:/d/a@1.tar", probe).path == "/d/a@1.tar"  # a file, not a selector
    assert parse_reference("docker-archive:/d/img@2", probe).target.position is None  # that file exists too
    assert parse_reference("docker-archive:/d/new@x.tar:foo", probe).path == "/d/new@x.tar"
    for text in ("docker://oci:/tmp/x", "docker:///tmp/x", "docker://docker-archive:/x.tar"):
        with pytest.raises(ReferenceError_):
            parse_reference(text)
