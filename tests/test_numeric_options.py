"""Every numeric option of every command, found from click's own command tree, fed what users mistype.

A new numeric option cannot escape: the tree is walked, and an option the table below does not classify
fails the test until someone says whether 0 and huge values are valid for it. Out of range, NaN, infinity
and non-numbers are click's usual usage error (exit 2, "Invalid value for '--OPTION'"), in text and in
JSON; values in range are accepted, and the extremes of the ranges really run. The Python API checks the
same ranges where each value enters and raises UsageError.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import click
import pytest

import ocisift
from ocisift import ExtractLimits, LayerSelector, RegistryOptions, Selector, UsageError
from ocisift._cli.main import main
from ocisift._core import bounds

# Options for which 0 is a meaningful value (the first layer; keep no blob for its age).
ZERO_VALID = {"--layer-index", "--grace"}
# Float options without an upper end (a ratio, an age), as against waits, which stop at a day.
HUGE_FLOAT_VALID = {"--max-ratio", "--grace"}
KNOWN = {"--concurrency", "--images", "--max-depth", "--layer-index", "--max-extract-size", "--max-ratio",
         "--timeout", "--grace", "--shards"}

NOT_NUMBERS = ["abc", "", " ", "1,5", "--", "0x10", "1e", "½", "٣.٣.٣"]
HUGE_INTS = ["9223372036854775808", "1" + "0" * 30, "9" * 5000]


def commands(group: click.Group = main, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from commands(command, (*path, name))
        else:
            yield (*path, name), command


def numeric_options() -> list[tuple[tuple[str, ...], click.Command, click.Parameter]]:
    found = []
    for path, command in commands():
        for param in command.params:
            if isinstance(param.type, (click.types.IntParamType, click.types.FloatParamType)):
                found.append((path, command, param))
    return found


NUMERIC = numeric_options()


def _id(item: tuple[tuple[str, ...], click.Command, click.Parameter]) -> str:
    return f"{' '.join(item[0])} {item[2].opts[0] if isinstance(item[2], click.Option) else item[2].name}"


def _positionals(command: click.Command) -> list[str]:
    """Arguments (and required options) that parse, so that the option under test is what fails (the
    command never runs)."""
    out = ["oci:./nowhere:1" for p in command.params if isinstance(p, click.Argument)]
    for p in command.params:
        if isinstance(p, click.Option) and p.required:
            out += [p.opts[0], "nowhere"]
    return out


def test_the_tree_has_the_numeric_options_this_file_knows():
    assert {p.opts[0] for _, _, p in NUMERIC if isinstance(p, click.Option)} == KNOWN
    assert all(isinstance(p, click.Option) for _, _, p in NUMERIC), "a numeric argument: classify it here"
    assert len(NUMERIC) > 25  # --timeout alone is on every registry command


def invalid_values(param: click.Parameter) -> list[str]:
    name = param.opts[0]
    is_float = isinstance(param.type, click.types.FloatParamType)
    values = ["-1", "-0.5" if is_float else "-9223372036854775809", *NOT_NUMBERS]
    if name not in ZERO_VALID:
        values.append("0")
    if is_float:
        values += ["nan", "NaN", "inf", "-inf", "Infinity", "1e999", "-0.0" if name not in ZERO_VALID else "-1e-300"]
        if name not in HUGE_FLOAT_VALID:
            values += ["1e300", "86400.5"]
    else:
        values += [*HUGE_INTS, "1.5", "1e3", "nan"]
    return values


def valid_values(param: click.Parameter) -> list[str]:
    name = param.opts[0]
    is_float = isinstance(param.type, click.types.FloatParamType)
    values = ["1", " 2 "]
    if name in ZERO_VALID:
        values.append("0")
    if is_float:
        values += ["0.5", "86400"] + (["1e300"] if name in HUGE_FLOAT_VALID else [])
    return values


@pytest.mark.parametrize("item", NUMERIC, ids=_id)
def test_every_numeric_option_has_a_bounded_type(item):
    _, _, param = item
    kind = param.type
    assert isinstance(kind, (click.IntRange, click.FloatRange)), f"{_id(item)} is a bare {kind.name}"
    assert kind.min is not None, f"{_id(item)} has no lower end"
    if isinstance(kind, click.IntRange):
        assert kind.max is not None and kind.max <= bounds.INT64_MAX, f"{_id(item)} has no upper end"


@pytest.mark.parametrize("item", NUMERIC, ids=_id)
def test_out_of_range_and_non_numbers_are_a_usage_error(item, cli):
    path, command, param = item
    name = param.opts[0]
    for value in invalid_values(param):
        for args in ([*path, f"{name}={value}", *_positionals(command)],
                     [*path, *_positionals(command), name, value, "--format", "json"]):
            res = cli(*args)
            assert res.code == 2, (args, res)
            assert "Traceback" not in res.err and "internal error" not in res.out + res.err, (args, res)
            if "--format" in args:
                error = res.json()["error"]
                assert error["code"] == 2 and error["kind"] == "usage", (args, res)
                assert f"Invalid value for '{name}'" in error["message"], (args, res)
            else:
                assert f"Invalid value for '{name}'" in res.err, (args, res)


@pytest.mark.parametrize("item", NUMERIC, ids=_id)
def test_values_in_range_are_accepted(item):
    path, command, param = item
    for value in valid_values(param):
        with command.make_context(path[-1], [param.opts[0], value, *_positionals(command)]) as ctx:
            got = ctx.params[param.name]
            assert got == (float(value) if isinstance(param.type, click.types.FloatParamType) else int(value))


# -- the extremes of the ranges run ------------------------------------------------------------------------------


def test_the_ends_of_the_ranges_run(sample, tmp_path, cli):
    ref = f"oci:{sample}:7.2"
    big = str(bounds.INT64_MAX)
    assert cli("resolve", ref, "--max-depth", "256", "--timeout", "86400").code == 0
    assert cli("tree", f"oci:{sample}", "--max-depth", "256", "--timeout", "0.001").code == 0
    res = cli("pull", ref, "-o", str(tmp_path / "a"), "--mode", "extract-all", "--max-extract-size", big,
              "--max-ratio", "1e300", "--concurrency", "64", "--format", "json")
    assert res.code == 0, res
    res = cli("pull", ref, "-o", str(tmp_path / "b"), "--layer-index", big, "--format", "json")
    assert res.code == 3 and "layer" in res.json()["error"]["message"], res
    assert cli("copy", ref, f"oci:{tmp_path / 'c'}:7.2", "--concurrency", "64").code == 0
    res = cli("gc", f"oci:{tmp_path / 'c'}", "--grace", "1e300", "--format", "json")
    assert res.code == 0 and res.json()["removed"] == [], res
    assert cli("gc", f"oci:{tmp_path / 'c'}", "--grace", "0").code == 0
    res = cli("pull", ref, "-o", str(tmp_path / "d"), "--mode", "extract-all", "--max-extract-size", "1",
              "--format", "json")
    assert res.code == 5, res  # a cap of one byte holds


def test_a_nesting_as_deep_as_max_depth_allows_is_walked_and_one_deeper_refused(tmp_path, cli):
    """256 is the top of --max-depth because the walk recurses per level: a chain that deep is walked
    (no RecursionError, even inside pytest's own frames), and one level more is exit 5."""
    from conftest import artifact, push_index
    from ocisift._stores.layout import LayoutStore

    store = LayoutStore.create(str(tmp_path / "deep"))
    desc = artifact(store)
    for _ in range(256):
        desc = push_index(store, [desc])
    store.tag(desc, "deep")
    ref = f"oci:{tmp_path / 'deep'}:deep"
    assert cli("tree", ref, "--max-depth", "256").code == 0
    assert cli("resolve", ref, "--max-depth", "256").code == 0
    res = cli("tree", ref, "--max-depth", "255", "--format", "json")
    assert res.code == 5 and "deeper than 255" in res.json()["error"]["message"], res


# -- the Python API ------------------------------------------------------------------------------------------------


BAD_COUNTS = [0, -1, 65, 10**30, True, 2.0, "4", None, math.nan]


def _api_calls(sample: str, out: str) -> Iterator[tuple[str, object]]:
    ref = f"oci:{sample}:7.2"
    for bad in BAD_COUNTS:
        yield f"pull concurrency={bad!r}", lambda bad=bad: ocisift.pull(ref, out, concurrency=bad)
        yield f"copy concurrency={bad!r}", lambda bad=bad: ocisift.copy(ref, f"oci:{out}:1", concurrency=bad)
        yield f"copy_tags concurrency={bad!r}", lambda bad=bad: ocisift.copy_tags(f"oci:{sample}", f"oci:{out}",
                                                                               concurrency=bad)
        yield f"sync images_at_once={bad!r}", lambda bad=bad: ocisift.sync(out, images_at_once=bad)
        yield f"sync concurrency={bad!r}", lambda bad=bad: ocisift.sync(out, concurrency=bad)
    for bad in [0, -1, 257, 10**30, True, "16", None]:
        yield f"tree max_depth={bad!r}", lambda bad=bad: ocisift.tree(ref, max_depth=bad)
        yield f"Selector.build max_depth={bad!r}", lambda bad=bad: Selector.build(max_depth=bad)
        yield f"Selector max_depth={bad!r}", lambda bad=bad: Selector(max_depth=bad)
    for bad in [-1, -10**30, 10**30, True, "0", 1.0]:
        yield f"LayerSelector.build index={bad!r}", lambda bad=bad: LayerSelector.build(index=bad)
        yield f"LayerSelector index={bad!r}", lambda bad=bad: LayerSelector(index=bad)
    for bad in [-1, -0.5, math.nan, math.inf, -math.inf, 10**400, "600", None]:
        yield f"gc grace_seconds={bad!r}", lambda bad=bad: ocisift.gc(f"oci:{sample}", grace_seconds=bad)
    for field, values in {
        "max_bytes": [0, -1, 10**30, 1.5, True],
        "max_ratio": [0, -1.0, math.nan, math.inf, "250"],
        "ratio_floor": [-1, 10**30, math.nan],
        "max_entries": [0, -1, 10**30],
    }.items():
        for bad in values:
            yield f"ExtractLimits {field}={bad!r}", lambda field=field, bad=bad: ExtractLimits(**{field: bad})
    for field, values in {
        "timeout": [0, -1, -0.0, math.nan, math.inf, 86401, 1e300, 10**400, "30", None],
        "retries": [-1, 101, 10**30, 1.5, True, math.nan],
        "max_retry_wait": [-1, math.nan, math.inf, 1e300],
        "chunk_size": [0, -1, 10**30, 1.5, math.nan],
    }.items():
        for bad in values:
            yield f"RegistryOptions {field}={bad!r}", lambda field=field, bad=bad: RegistryOptions(**{field: bad})


def test_the_api_checks_the_same_ranges_where_each_value_enters(sample, tmp_path):
    out = str(tmp_path / "out")
    failures = []
    for what, call in _api_calls(sample, out):
        try:
            call()  # type: ignore[operator]
        except UsageError as exc:
            if "\n" in exc.message or len(exc.message) > 300:
                failures.append(f"{what}: message {exc.message[:100]!r}…")
            continue
        except Exception as exc:  # anything but UsageError is the failure this test reports
            failures.append(f"{what}: {type(exc).__name__}: {exc}")
            continue
        failures.append(f"{what}: accepted")
    assert not failures, failures
    assert not (tmp_path / "out").exists(), "a call with a bad number wrote something"


def test_the_api_accepts_the_ends_of_its_ranges(sample, tmp_path):
    RegistryOptions(timeout=86400, retries=0, max_retry_wait=0, chunk_size=1)
    RegistryOptions(timeout=1e-3, retries=100, max_retry_wait=86400, chunk_size=bounds.INT64_MAX)
    ExtractLimits(max_bytes=bounds.INT64_MAX, max_ratio=1e300, ratio_floor=0, max_entries=1)
    Selector.build(max_depth=256)
    LayerSelector.build(index=0)
    result = ocisift.pull(f"oci:{sample}:7.2", str(tmp_path / "o"), mode="extract-all", concurrency=64,
                          limits=ExtractLimits(max_bytes=bounds.INT64_MAX, max_ratio=1e300))
    assert result.files
    assert not ocisift.gc(f"oci:{sample}", grace_seconds=1e300).removed
