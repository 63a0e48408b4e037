from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ocisift._core.errors import UsageError
from ocisift._core.platform import Platform, platform_matches


def p(text: str) -> Platform:
    return Platform.parse(text)


def test_parse_with_os_version():
    plat = p("linux/arm64/v8:el9")
    assert (plat.os, plat.architecture, plat.variant, plat.os_version) == ("linux", "arm64", "v8", "el9")
    assert str(plat) == "linux/arm64/v8:el9"
    assert p("windows/amd64:10.0.17763.5122").os_version == "10.0.17763.5122"


@pytest.mark.parametrize("bad", ["linux", "linux/", "/amd64", "linux/amd64/v8/x", "linux/amd64:", "li nux/amd64", ""])
def test_parse_rejects(bad):
    with pytest.raises(UsageError):
        p(bad)


@pytest.mark.parametrize(
    ("wanted", "candidate"),
    [
        ("linux/arm64", "linux/arm64/v8"),
        ("linux/arm64/v8", "linux/arm64"),
        ("linux/arm", "linux/arm/v7"),
        ("linux/amd64", "linux/amd64/v1"),
        ("linux/x86_64", "linux/amd64"),
        ("linux/aarch64", "linux/arm64/v8"),
        ("linux/arm64", "linux/arm64/v8:el8"),  # os.version not asked for: any
        ("linux/arm64:el8", "linux/arm64/v8:el8"),
    ],
)
def test_matches(wanted, candidate):
    assert platform_matches(p(wanted), p(candidate))


@pytest.mark.parametrize(
    ("wanted", "candidate"),
    [
        ("linux/arm64:el8", "linux/arm64/v8:el9"),
        ("linux/arm64:el8", "linux/arm64/v8"),
        ("linux/arm/v6", "linux/arm/v7"),
        ("linux/amd64", "linux/arm64"),
        ("windows/amd64", "linux/amd64"),
        ("linux/amd64", "linux/amd64/v3"),
    ],
)
def test_does_not_match(wanted, candidate):
    assert not platform_matches(p(wanted), p(candidate))


def test_os_features_subset():
    cand = Platform("windows", "amd64", os_features=("win32k", "x"))
    assert platform_matches(Platform("windows", "amd64", os_features=("win32k",)), cand)
    assert not platform_matches(Platform("windows", "amd64", os_features=("gpu",)), cand)


@given(st.sampled_from(["linux", "windows", "darwin"]), st.sampled_from(["amd64", "arm64", "arm", "386", "riscv64"]),
       st.one_of(st.none(), st.sampled_from(["v5", "v6", "v7", "v8"])), st.one_of(st.none(), st.sampled_from(["el8", "el9"])))
def test_property_parse_round_trip_and_self_match(os_, arch, variant, version):
    text = f"{os_}/{arch}" + (f"/{variant}" if variant else "") + (f":{version}" if version else "")
    plat = p(text)
    assert p(str(plat)) == plat
    assert platform_matches(plat, plat)
