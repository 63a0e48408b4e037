"""Links inside a layout: no command reads, writes, truncates or removes anything outside it through them.

Every link position (the blob directories, index.json, oci-layout, the lock file, a blob, gc's tomb name;
symlinks, and hard links where a file can have them) is crossed with every command that opens a layout.
Beside the layout lies what the links lead to: a secret file, a directory, and the layout's own files moved
out (so that following a link would work, and be noticed). After each command that sentinel is exactly as
it was (kind, content, mode, presence), the secret is never printed, and the exit code is the promised
one: 5 naming the linked path when the command needs what is linked, 0 when it does not.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

import ocisift

SECRET = b"root:$6$hostile-secret$digest:19000:0:99999:7:::\n"


def _blob_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> dict:
    """A layout with 1.0 and 2.0 (artifacts with platforms), an index `idx` of 1.0 and unreachable garbage."""
    root = tmp_path_factory.mktemp("links-template")
    layout = root / "layout"
    files = {name: root / f"{name}.txt" for name in ("one", "two", "garbage")}
    for name, path in files.items():
        path.write_bytes(f"{name} content\n".encode())
    ref = f"oci:{layout}"
    one = ocisift.push(f"{ref}:1.0", [str(files["one"])], platform="linux/amd64")
    two = ocisift.push(f"{ref}:2.0", [str(files["two"])], platform="linux/arm64")
    ocisift.push(f"{ref}:garbage", [str(files["garbage"])])
    ocisift.untag(f"{ref}:garbage")
    ocisift.index_create(f"{ref}:idx", [f"{ref}:1.0"])
    return {
        "root": layout,
        "one": str(one.descriptor.digest),
        "two": str(two.descriptor.digest),
        "layer": _blob_hex(files["one"].read_bytes()),
        "garbage": _blob_hex(files["garbage"].read_bytes()),
    }


def _move_out(inside: Path, outside: Path) -> None:
    shutil.move(str(inside), str(outside))
    inside.symlink_to(outside)


def _hardlink_out(inside: Path, outside: Path) -> None:
    os.link(inside, outside)


def _blob(layout: Path, hex_: str) -> Path:
    return layout / "blobs" / "sha256" / hex_


# Each position: how to plant it (layout, outside, template) and the path its refusal names.
Plant = Callable[[Path, Path, dict], None]
POSITIONS: dict[str, tuple[Plant, str]] = {
    "blobs symlinked out": (lambda lay, out, t: _move_out(lay / "blobs", out / "blobs"), "blobs"),
    "blobs/sha256 symlinked out": (
        lambda lay, out, t: _move_out(lay / "blobs" / "sha256", out / "sha256"), "sha256"),
    "index.json symlinked out": (lambda lay, out, t: _move_out(lay / "index.json", out / "index.json"), "index.json"),
    "index.json hard-linked out": (
        lambda lay, out, t: _hardlink_out(lay / "index.json", out / "index.json"), "index.json"),
    "oci-layout symlinked out": (lambda lay, out, t: _move_out(lay / "oci-layout", out / "oci-layout"), "oci-layout"),
    "lock symlinked to a secret": (
        lambda lay, out, t: ((lay / ".index.json.lock").unlink(),
                             (lay / ".index.json.lock").symlink_to(out / "secret")), ".index.json.lock"),
    "lock hard-linked to a secret": (
        lambda lay, out, t: ((lay / ".index.json.lock").unlink(),
                             os.link(out / "secret", lay / ".index.json.lock")), ".index.json.lock"),
    "manifest blob symlinked out": (
        lambda lay, out, t: _move_out(_blob(lay, t["one"].split(":")[1]), out / "manifest"), "one"),
    "layer blob symlinked to a secret": (
        lambda lay, out, t: (_blob(lay, t["layer"]).unlink(), _blob(lay, t["layer"]).symlink_to(out / "secret")),
        "layer"),
    "layer blob symlinked to a directory": (
        lambda lay, out, t: (_blob(lay, t["layer"]).unlink(), _blob(lay, t["layer"]).symlink_to(out / "dir")),
        "layer"),
    "layer blob hard-linked out": (lambda lay, out, t: _hardlink_out(_blob(lay, t["layer"]), out / "layer"), "layer"),
    "garbage blob hard-linked out": (
        lambda lay, out, t: _hardlink_out(_blob(lay, t["garbage"]), out / "garbage"), "garbage"),
    "gc tomb symlinked to a secret": (
        lambda lay, out, t: _blob(lay, f".gc-{t['garbage']}").symlink_to(out / "secret"), ".gc-"),
    "gc tomb symlinked to a directory": (
        lambda lay, out, t: _blob(lay, f".gc-{t['garbage']}").symlink_to(out / "dir"), ".gc-"),
    "temporary name symlinked to a secret": (
        lambda lay, out, t: _blob(lay, ".tmp-0000000000000000").symlink_to(out / "secret"), ".tmp-"),
}

COMMANDS: dict[str, Callable[[dict], list[str]]] = {
    "resolve": lambda c: ["resolve", f"oci:{c['layout']}:1.0"],
    "tree": lambda c: ["tree", f"oci:{c['layout']}:1.0"],
    "manifest get": lambda c: ["manifest", "get", f"oci:{c['layout']}:1.0"],
    "blob get": lambda c: ["blob", "get", f"oci:{c['layout']}@sha256:{c['layer']}", "-o", "-"],
    "pull": lambda c: ["pull", f"oci:{c['layout']}:1.0", "-o", str(c["work"] / "pulled")],
    "copy out of it": lambda c: ["copy", f"oci:{c['layout']}:1.0", f"oci:{c['work'] / 'copied'}:1.0"],
    "copy into it": lambda c: ["copy", f"oci:{c['source']}:1.0", f"oci:{c['layout']}:copied"],
    "push": lambda c: ["push", f"oci:{c['layout']}:3.0", str(c["new_file"])],
    "tag": lambda c: ["tag", f"oci:{c['layout']}:1.0", "4.0"],
    "untag": lambda c: ["untag", f"oci:{c['layout']}:2.0"],
    "delete": lambda c: ["delete", f"oci:{c['layout']}@{c['two']}"],
    "gc": lambda c: ["gc", f"oci:{c['layout']}", "--grace", "0"],
    "sync": lambda c: ["sync", str(c["spec"])],
    "index create": lambda c: ["index", "create", f"oci:{c['layout']}:new", f"oci:{c['layout']}:1.0",
                               f"oci:{c['layout']}:2.0"],
    "index add": lambda c: ["index", "add", f"oci:{c['layout']}:idx", f"oci:{c['layout']}:2.0"],
    "index remove": lambda c: ["index", "remove", f"oci:{c['layout']}:idx", c["one"]],
}

ALL = set(COMMANDS)
WRITERS = {"copy into it", "push", "tag", "untag", "delete", "gc", "sync", "index create", "index add", "index remove"}
# What reads 1.0's layer (a copy into the layout finds 1.0's manifest there and goes no further).
LAYER_USERS = {"blob get", "pull", "copy out of it", "gc"}
# What reads 1.0's manifest, or marks it as reused (a copy that finds it present).
MANIFEST_USERS = ALL - {"untag", "blob get", "push", "index add", "index remove"}

# The commands that succeed, per position (every other one is refused with exit 5).
SUCCEEDS: dict[str, set[str]] = {
    "blobs symlinked out": {"untag"},
    "blobs/sha256 symlinked out": {"untag"},
    "index.json symlinked out": {"blob get"},
    "index.json hard-linked out": ALL,
    "oci-layout symlinked out": set(),
    "lock symlinked to a secret": ALL - WRITERS,
    "lock hard-linked to a secret": ALL - WRITERS,
    "manifest blob symlinked out": ALL - MANIFEST_USERS,
    "layer blob symlinked to a secret": ALL - LAYER_USERS,
    "layer blob symlinked to a directory": ALL - LAYER_USERS,
    "layer blob hard-linked out": ALL,
    "garbage blob hard-linked out": ALL,
    "gc tomb symlinked to a secret": ALL,
    "gc tomb symlinked to a directory": ALL,
    "temporary name symlinked to a secret": ALL,
}


def _outside_state(root: Path) -> dict[str, tuple]:
    """Kind, mode, content digest and link target of everything below `root` (mtimes aside: a reused blob
    is marked by its mtime, and a hard link shares it)."""
    state: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            rel = str(path.relative_to(root))
            if stat.S_ISLNK(st.st_mode):
                state[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                state[rel] = ("dir", stat.S_IMODE(st.st_mode))
            else:
                state[rel] = ("file", stat.S_IMODE(st.st_mode), st.st_size, hashlib.sha256(path.read_bytes()).hexdigest())
    return state


@pytest.fixture
def case(tmp_path, template) -> dict:
    work = tmp_path / "work"
    work.mkdir()
    layout = tmp_path / "layout"
    shutil.copytree(template["root"], layout, symlinks=True)
    source = tmp_path / "source"
    shutil.copytree(template["root"], source, symlinks=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(SECRET)
    (outside / "secret").chmod(0o600)
    (outside / "dir").mkdir()
    (outside / "dir" / "keep").write_bytes(b"keep me\n")
    new_file = tmp_path / "three.txt"
    new_file.write_bytes(b"three content\n")
    spec = tmp_path / "sync.yaml"
    ocisift.tag(f"oci:{source}:1.0", ["5.0"])  # what sync brings: a tag the layout does not have yet
    spec.write_text(json.dumps({"images": [{"source": f"oci:{source}", "tags": ["5.0"],
                                            "destination": f"oci:{layout}"}]}))
    return {**template, "layout": layout, "source": source, "outside": outside, "work": work,
            "new_file": new_file, "spec": spec}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("position", list(POSITIONS))
def test_no_command_goes_through_a_link_out_of_the_layout(case, cli, position, command):
    plant, named = POSITIONS[position]
    plant(case["layout"], case["outside"], case)
    before = _outside_state(case["outside"])
    res = cli(*COMMANDS[command](case))
    assert _outside_state(case["outside"]) == before, f"{command} changed what lies outside the layout"
    assert SECRET.decode() not in res.out + res.err
    expected = 0 if command in SUCCEEDS[position] else 5
    assert res.code == expected, f"{command} with {position}: exit {res.code}\n{res.out}\n{res.err}"
    if expected == 5:
        name = {"one": case["one"].split(":")[1], "layer": case["layer"], "garbage": case["garbage"]}.get(named, named)
        assert "refusing" in res.err and name in res.err, res.err


def test_a_hard_linked_lock_file_is_never_truncated(case, cli):
    """filelock would open it with O_TRUNC: the user's file behind the link keeps every byte."""
    lock = case["layout"] / ".index.json.lock"
    lock.unlink()
    os.link(case["outside"] / "secret", lock)
    assert cli("tag", f"oci:{case['layout']}:1.0", "5.0").code == 5
    assert (case["outside"] / "secret").read_bytes() == SECRET
    assert os.stat(case["outside"] / "secret").st_nlink == 2


def test_gc_drops_only_the_name_of_a_hard_linked_garbage_blob(case, cli):
    outside = case["outside"] / "garbage"
    os.link(_blob(case["layout"], case["garbage"]), outside)
    res = cli("gc", f"oci:{case['layout']}", "--grace", "0", "--format", "json")
    assert res.code == 0, res.err
    assert f"sha256:{case['garbage']}" in res.json()["removed"]
    assert not _blob(case["layout"], case["garbage"]).exists()
    assert outside.read_bytes() == b"garbage content\n" and os.stat(outside).st_nlink == 1


def test_a_gc_tomb_that_is_a_link_is_replaced_not_followed(case, cli):
    tomb = _blob(case["layout"], f".gc-{case['garbage']}")
    tomb.symlink_to(case["outside"] / "secret")
    assert cli("gc", f"oci:{case['layout']}", "--grace", "0").code == 0
    assert not os.path.lexists(tomb)
    assert (case["outside"] / "secret").read_bytes() == SECRET


def test_the_layout_root_itself_may_be_a_symlink(case, cli, tmp_path):
    link = tmp_path / "link-to-layout"
    link.symlink_to(case["layout"])
    assert cli("tag", f"oci:{link}:1.0", "6.0").code == 0
    assert cli("gc", f"oci:{link}", "--grace", "0").code == 0
    assert cli("resolve", f"oci:{case['layout']}:6.0").code == 0
