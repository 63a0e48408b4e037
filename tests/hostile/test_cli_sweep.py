"""A sweep of the whole command line: every command, on fuzzed stores, references, documents and options.

Each example builds a small world in a fresh directory (a layout, the same layout packed as an
oci-archive, a docker-archive, a dir: directory, a sync spec, a Docker config.json), each of them
possibly damaged by hypothesis (index.json, manifests, configs and layers replaced by arbitrary JSON or
bytes, tar members crafted), then runs one command taken from click's own command tree (so a new
command or option cannot escape the sweep) with arguments and options drawn for it. What may come out:
a documented exit code, never a traceback, never "internal error", nothing written outside the world,
no staging left behind. It runs in `.ci/run` with a fixed example budget.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import math
import os
import tarfile
import tempfile
from pathlib import Path

import click
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ocisift._cli.main import main, run
from ocisift._core import mediatypes as mt
from ocisift._demo import build_sample_layout

DOCUMENTED_EXIT_CODES = {0, 1, 2, 3, 4, 5, 6, 7}
EXAMPLES = int(os.environ.get("OCISIFT_SWEEP_EXAMPLES", "16"))  # per command


def _commands() -> list[tuple[tuple[str, ...], click.Command]]:
    found: list[tuple[tuple[str, ...], click.Command]] = []
    pending: list[tuple[tuple[str, ...], click.Command]] = [((), main)]
    while pending:
        path, command = pending.pop()
        if isinstance(command, click.Group):
            pending.extend(((*path, name), sub) for name, sub in sorted(command.commands.items()))
        else:
            found.append((path, command))
    return sorted(found, key=lambda c: c[0])


COMMANDS = _commands()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**65, 2**65) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["mediaType", "digest", "size", "manifests", "layers", "config", "annotations", "platform",
                         "urls", "os", "architecture", "auths", "auth", "credsStore", "images", "source", "tags",
                         "destination", "RepoTags", "Layers", "Config"]) | st.text(max_size=6), inner, max_size=5),
    max_leaves=15,
)
damage = st.one_of(json_values.map(lambda v: json.dumps(v).encode()), st.binary(max_size=120))


def _tar(members: list[tuple[str, bytes, int]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, kind in members:
            info = tarfile.TarInfo(name)
            info.type = bytes([kind])
            info.size = len(data) if info.type == tarfile.REGTYPE else 0
            info.linkname = "../../x" if info.type in (tarfile.SYMTYPE, tarfile.LNKTYPE) else ""
            tar.addfile(info, io.BytesIO(data) if info.type == tarfile.REGTYPE else None)
    return buf.getvalue()


tar_members = st.lists(st.tuples(st.sampled_from(["a", "b/c", "../up", "/abs", ".wh.a", "d/.wh..wh..opq", "x" * 120]),
                                 st.binary(max_size=30), st.sampled_from([ord("0"), ord("2"), ord("1"), ord("5"),
                                                                          ord("3"), ord("6")])),
                       max_size=5)


@st.composite
def worlds(draw: st.DrawFn) -> dict[str, object]:
    return {
        "index": draw(st.none() | damage),  # None: keep the sample layout's own index.json
        "blob": draw(st.none() | damage),  # replaces one blob (digest then wrong: exit 5 where it is read)
        "layer": draw(st.none() | tar_members),  # a crafted layer added under a new tag
        "docker_manifest": draw(st.none() | damage),
        "spec": draw(st.none() | damage | json_values.map(lambda v: json.dumps(v).encode())),
        "config": draw(st.none() | damage),
    }


def _build(root: Path, world: dict[str, object]) -> dict[str, str]:
    """The stores, with the damage drawn applied; returns the places references may name."""
    layout = root / "layout"
    build_sample_layout(str(layout))
    blobs = sorted((layout / "blobs" / "sha256").iterdir())
    if world["blob"] is not None:
        blobs[len(blobs) // 2].write_bytes(world["blob"])  # type: ignore[arg-type]
    if world["layer"] is not None:
        from ocisift._demo import push_manifest
        from ocisift._stores.layout import LayoutStore

        store = LayoutStore(str(layout))
        data = gzip.compress(_tar(world["layer"]))  # type: ignore[arg-type]
        desc = push_manifest(store, [(data, mt.OCI_LAYER_GZIP, {})])
        store.tag(desc, "crafted")
        store.close()
    if world["index"] is not None:
        (layout / "index.json").write_bytes(world["index"])  # type: ignore[arg-type]
    archive = root / "bundle.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(layout, arcname=".")
    docker = root / "docker.tar"
    with tarfile.open(docker, "w") as tar:
        body = world["docker_manifest"] if world["docker_manifest"] is not None else json.dumps(
            [{"Config": "c.json", "RepoTags": ["acme/app:1"], "Layers": ["l.tar"]}]).encode()
        for name, data in (("manifest.json", body), ("c.json", b'{"rootfs":{"diff_ids":[]}}'), ("l.tar", b"")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    spec = root / "mirror.yaml"
    spec.write_bytes(world["spec"] if world["spec"] is not None else  # type: ignore[arg-type]
                     f"images:\n  - source: oci:{layout}\n    tags: [1.2]\n    destination: oci:{root}/m\n".encode())
    config_dir = root / "docker-config"
    config_dir.mkdir()
    (config_dir / "config.json").write_bytes(world["config"] if world["config"] is not None else  # type: ignore[arg-type]
                                             b'{"auths": {}}')
    return {"layout": str(layout), "archive": str(archive), "docker": str(docker), "spec": str(spec),
            "root": str(root), "config": str(config_dir)}


def _references(places: dict[str, str]) -> st.SearchStrategy[str]:
    layout, archive, docker, root = places["layout"], places["archive"], places["docker"], places["root"]
    suffixes = st.sampled_from(["", ":1.2", ":7.2", ":crafted", ":nope", "@sha256:" + "0" * 64, ":a:b", "@",
                                "/example.com/acme/modules/redis:7.2", ":example.com/acme/product:2.0"])
    bases = st.sampled_from([f"oci:{layout}", f"oci-archive:{archive}", f"docker-archive:{docker}",
                             f"dir:{root}/dir", f"oci:{root}/new", f"oci-archive:{root}/new.tar", layout,
                             "127.0.0.1:1/acme/app", "docker://127.0.0.1:1/x", "ocidir://" + layout, "alpine"])
    valid = st.builds(str.__add__, bases, suffixes)
    return st.one_of(valid, valid, valid, st.text(max_size=30))


def _value(param: click.Parameter, places: dict[str, str], refs: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    kind = param.type
    if isinstance(kind, click.Choice):
        return st.sampled_from([*kind.choices, "bogus"])
    if isinstance(kind, click.types.IntParamType | click.IntRange):
        return st.integers(1, 8).map(str) | st.integers(-2**64, 2**64).map(str) | st.sampled_from(["0", "-1", "x"])
    if isinstance(kind, click.types.FloatParamType | click.FloatRange):
        return st.floats(allow_nan=True, allow_infinity=True).map(lambda f: "nan" if math.isnan(f) else str(f)) \
            | st.sampled_from(["0", "-1", "x"])
    name = (param.name or "").lower()
    if name in ("output", "output_file") or "dir" in name:
        return st.sampled_from([f"{places['root']}/out", f"{places['root']}/out/sub", "-", places["layout"]])
    if "platform" in name:
        return st.sampled_from(["linux/amd64", "linux/arm64:el9", "linux", "//", "a/b/c/d", "linux/arm64=x"])
    if "annotation" in name:
        return st.sampled_from(["k=v", "k", "=", "com.acme.env=production"]) | st.text(max_size=8)
    return st.one_of(refs, st.text(max_size=12), st.sampled_from(["latest", "1.2", ">=1 <2", "^v1", "a" * 300]))


@st.composite
def invocations(draw: st.DrawFn, places: dict[str, str], path: tuple[str, ...], command: click.Command) -> list[str]:
    refs = _references(places)
    argv = list(path)
    for param in command.params:
        if isinstance(param, click.Argument):
            count = 1 if param.nargs == 1 else draw(st.integers(0 if not param.required else 1, 3))
            for _ in range(count):
                if param.name == "spec":
                    argv.append(draw(st.sampled_from([places["spec"], f"{places['root']}/none.yaml"])))
                else:
                    argv.append(draw(refs | st.sampled_from([f"{places['root']}/file.txt", places["root"]])))
        elif isinstance(param, click.Option) and param.name not in ("help",) and \
                (param.required or draw(st.sampled_from([False, False, True]))):
            flag = param.opts[-1] if param.opts else f"--{param.name}"
            if param.is_flag:
                argv.append(flag)
            else:
                argv.extend([flag, draw(_value(param, places, refs))])
    return argv


@pytest.mark.parametrize("path, command", COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(world=worlds(), data=st.data())
def test_every_command_on_fuzzed_input_ends_in_a_documented_exit_code(path, command, world, data):
    with tempfile.TemporaryDirectory(prefix="ocisift-sweep-") as outer:
        root = Path(outer) / "world"
        root.mkdir()
        places = _build(root, world)
        (root / "file.txt").write_text("a file\n")
        outside = sorted(os.listdir(outer))
        argv = data.draw(invocations(places, path, command), label="argv")
        raw_out = io.BytesIO()  # binary output (blob get -o -) goes to sys.stdout.buffer, as a real stdout has one
        out, err = io.TextIOWrapper(raw_out, encoding="utf-8", errors="replace", write_through=True), io.StringIO()
        old_cwd, old_env = os.getcwd(), dict(os.environ)
        os.environ.update(DOCKER_CONFIG=places["config"], HOME=str(root), OCISIFT_CERTS_DIRS=str(root / "certs"))
        os.environ.pop("OCISIFT_DEBUG", None)
        os.chdir(root)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = run(argv)
        finally:
            os.chdir(old_cwd)
            os.environ.clear()
            os.environ.update(old_env)
        said = raw_out.getvalue().decode("utf-8", "replace") + err.getvalue()
        event(f"{' '.join(argv[:2] if argv[:1] in (['index'], ['manifest'], ['blob']) else argv[:1])}: exit {code}")
        assert "internal error" not in said and "Traceback" not in said, (argv, said[-2000:])
        assert code in DOCUMENTED_EXIT_CODES, (argv, code, said[-2000:])
        assert sorted(os.listdir(outer)) == outside, (argv, "wrote beside the world")
        left = [str(p) for p in root.rglob(".ocisift-staging-*")] + [str(p) for p in root.rglob(".ocisift-dir-*")]
        assert left == [], (argv, left)
