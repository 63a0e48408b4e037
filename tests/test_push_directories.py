"""push DIR publishes only what pull gives back: the same rules both ways.

A directory is packed as tar+gzip (the ORAS way). What pull refuses in a layer (FIFOs, device nodes,
symlinks that leave, absolute symlinks) or would not write as it is (a `.wh.` name in an image layer is a
whiteout), and what a tar cannot hold (sockets), is refused at push, every such entry named, before
anything is written. What is pushed pulls back byte for byte: files, modes' executable bit, empty
directories, symlinks inside, hardlinks inside; a file whose other hard links are outside the directory
is packed as its content. The special files are real ones (we run as root).
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import ocisift

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="device nodes need root")


def _tree(root: Path) -> dict[str, tuple]:
    """Every entry below `root`: kind, and content, executable bit or link target."""
    out: dict[str, tuple] = {}
    for current, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            path = Path(current) / name
            rel = str(path.relative_to(root))
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir",)
            else:
                out[rel] = ("file", path.read_bytes(), bool(st.st_mode & 0o100))
    return out


def _special(kind: str, path: Path) -> None:
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
        sock.close()  # the socket file stays
    elif kind == "char device":
        os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 3))  # as /dev/null
    elif kind == "block device":
        os.mknod(path, stat.S_IFBLK | 0o600, os.makedev(7, 0))  # as /dev/loop0


REFUSED = {
    "fifo": ("sub/pipe", lambda d, p: _special("fifo", p), "is a FIFO"),
    "socket": ("sub/sock", lambda d, p: _special("socket", p), "is a socket"),
    "char device": ("sub/null", lambda d, p: _special("char device", p), "is a device node"),
    "block device": ("loop", lambda d, p: _special("block device", p), "is a device node"),
    "absolute symlink": ("sub/passwd", lambda d, p: os.symlink("/etc/passwd", p), "absolute symlink"),
    "absolute symlink into the tree": ("sub/self", lambda d, p: os.symlink(str(d / "a.txt"), p), "absolute symlink"),
    "symlink out": ("sub/up", lambda d, p: os.symlink("../../outside.txt", p), "leaves the directory"),
    "symlink to the directory beside": ("beside", lambda d, p: os.symlink("../other", p), "leaves the directory"),
    "symlink chain out": ("sub/first", lambda d, p: (os.symlink("second", p), os.symlink("../..", d / "sub" / "second")),
                          "leaves the directory"),
    "symlink out through a directory link": ("sub/through", lambda d, p: (os.symlink("sub", d / "d"),
                                                                           os.symlink("../d/../../x", p)),
                                             "leaves the directory"),
    "whiteout name": ("sub/.wh.gone", lambda d, p: p.write_text("x"), "whiteout"),
    "opaque whiteout name": (".wh..wh..opq", lambda d, p: p.write_text(""), "whiteout"),
}


def _directory(tmp_path: Path) -> Path:
    d = tmp_path / "bundle"
    (d / "sub").mkdir(parents=True)
    (d / "a.txt").write_text("a\n")
    (tmp_path / "outside.txt").write_text("outside\n")
    (tmp_path / "other").mkdir()
    return d


@pytest.mark.parametrize("kind", sorted(REFUSED))
def test_what_pull_would_refuse_is_refused_at_push(tmp_path, cli, kind):
    d = _directory(tmp_path)
    rel, make, words = REFUSED[kind]
    make(d, d / rel)
    for dest in (f"oci:{tmp_path}/layout:1", f"oci-archive:{tmp_path}/bundle.tar:1"):
        res = cli("push", dest, str(d), "--format", "json")
        assert res.code == 5, (dest, res.out)
        message = res.json()["error"]["message"]
        assert repr(rel) in message and words in message, message
        assert not (tmp_path / "layout").exists() and not (tmp_path / "bundle.tar").exists()
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".ocisift")] == []


def test_every_refused_entry_is_named_at_once(tmp_path, cli):
    d = _directory(tmp_path)
    _special("fifo", d / "pipe")
    os.symlink("/etc/shadow", d / "sub" / "shadow")
    res = cli("push", f"oci:{tmp_path}/layout:1", str(d), "--format", "json")
    message = res.json()["error"]["message"]
    assert res.code == 5 and "'pipe' is a FIFO" in message and "'sub/shadow' -> '/etc/shadow'" in message


def test_a_whiteout_name_is_kept_when_the_layer_is_no_image_layer(tmp_path, cli):
    """Whiteouts are an image layer's; pushed as an artifact type, `.wh.` is a name like any other."""
    d = _directory(tmp_path)
    (d / ".wh.kept").write_text("kept\n")
    assert cli("push", f"oci:{tmp_path}/layout:1", f"{d}:application/vnd.acme.tree.v1.tar+gzip").code == 0
    assert cli("pull", f"oci:{tmp_path}/layout:1", "--mode", "extract", "-o", str(tmp_path / "out")).code == 0
    assert (tmp_path / "out" / "bundle" / ".wh.kept").read_text() == "kept\n"


@pytest.mark.parametrize("kind", ["fifo", "char device", "socket"])
def test_a_special_file_given_as_a_file_is_refused_without_waiting(tmp_path, kind):
    """A FIFO as FILE would be waited on forever, a device read forever: refused before it is opened."""
    path = tmp_path / "special"
    _special(kind, path)
    proc = subprocess.run([sys.executable, "-m", "ocisift", "push", f"oci:{tmp_path}/layout:1", str(path),
                           "--format", "json"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "not a regular file" in proc.stdout
    assert not (tmp_path / "layout").exists()


def _rich_directory(tmp_path: Path) -> Path:
    d = tmp_path / "tree"
    (d / "bin").mkdir(parents=True)
    (d / "etc" / "conf.d").mkdir(parents=True)
    (d / "empty").mkdir()
    (d / "bin" / "run").write_bytes(b"#!/bin/sh\necho hi\n")
    os.chmod(d / "bin" / "run", 0o755)
    (d / "etc" / "app.yaml").write_bytes(b"k: v\n")
    (d / "etc" / "conf.d" / "blob.bin").write_bytes(os.urandom(200_000) + bytes(100_000))
    (d / "zero-length").write_bytes(b"")
    os.symlink("../etc/app.yaml", d / "bin" / "config")  # climbs, stays inside
    os.symlink("etc", d / "settings")  # a link to a directory
    os.symlink("not-there-yet", d / "dangling")  # inside, dangling: pull writes it as it is
    os.link(d / "etc" / "app.yaml", d / "etc" / "app-hardlink.yaml")  # a hardlink inside
    (tmp_path / "elsewhere.txt").write_bytes(b"shared\n")
    os.link(tmp_path / "elsewhere.txt", d / "shared.txt")  # its other name is outside: packed as content
    return d


@pytest.mark.parametrize("dest", ["oci", "oci-archive"])
def test_what_is_pushed_pulls_back_byte_for_byte(tmp_path, cli, dest):
    d = _rich_directory(tmp_path)
    ref = f"oci:{tmp_path}/layout:1" if dest == "oci" else f"oci-archive:{tmp_path}/bundle.tar:1"
    assert cli("push", ref, str(d)).code == 0
    for mode in ("extract", "extract-all"):
        out = tmp_path / f"out-{mode}"
        res = cli("pull", ref, "--mode", mode, "-o", str(out))
        assert res.code == 0, res.out + res.err
        assert _tree(out / "tree") == _tree(d)
        pulled = out / "tree" / "etc"
        assert (pulled / "app.yaml").stat().st_ino == (pulled / "app-hardlink.yaml").stat().st_ino
        assert not (out / "tree" / "shared.txt").is_symlink()


def test_a_directory_named_through_a_symlink_is_pushed_as_the_directory(tmp_path, cli):
    """Its title is the name given; the tar holds the directory, not a link that pull would not write through."""
    real = _directory(tmp_path)
    os.symlink(real, tmp_path / "alias")
    assert cli("push", f"oci:{tmp_path}/layout:1", str(tmp_path / "alias")).code == 0
    assert cli("pull", f"oci:{tmp_path}/layout:1", "--mode", "extract", "-o", str(tmp_path / "out")).code == 0
    assert _tree(tmp_path / "out" / "alias") == _tree(real)


def test_the_api_refuses_the_same(tmp_path):
    d = _directory(tmp_path)
    _special("fifo", d / "pipe")
    with pytest.raises(ocisift.OcisiftError) as caught:
        ocisift.push(f"oci:{tmp_path}/layout:1", [str(d)])
    assert caught.value.exit_code == 5 and "'pipe' is a FIFO" in caught.value.message
