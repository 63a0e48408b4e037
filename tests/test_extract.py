"""Extraction: hostile archives are refused, nothing lands outside, nothing the user had is lost."""

from __future__ import annotations

import gzip
import os
import stat
import tarfile

import pytest
import zstandard

import ocisift
from conftest import artifact, entry, member, raw_tar, write_index
from ocisift._core import mediatypes as mt
from ocisift._core.errors import ConflictError, IntegrityError, NotFoundError, UnsafeContentError
from ocisift._demo import make_tar
from ocisift._unpack.layers import LayerSelector
from ocisift._unpack.limits import ExtractLimits

pytestmark = pytest.mark.usefixtures("tar_reader")  # each test under both tar readers

ARTIFACT_TAR = "application/vnd.acme.content.v1.tar+gzip"


def one_layer(layout, data: bytes, media_type: str = ARTIFACT_TAR):
    desc = artifact(layout, layers=[(data, media_type, {})])
    write_index(layout, [entry(desc)])
    return f"oci:{layout.path}"


def pull(ref, out, **kw):
    kw.setdefault("mode", "extract")
    return ocisift.pull(ref, str(out), **kw)


def leftovers(parent) -> list[str]:
    return [n for n in os.listdir(parent) if n.startswith(".ocisift-staging-")]


def assert_refused(layout, tmp_path, entries, error=UnsafeContentError, media_type=ARTIFACT_TAR, **kw):
    ref = one_layer(layout, gzip.compress(raw_tar(entries)), media_type)
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    (out / "mine.txt").write_text("keep me")
    with pytest.raises(error) as info:
        pull(ref, out, **kw)
    assert sorted(os.listdir(out)) == ["mine.txt"]
    assert (out / "mine.txt").read_text() == "keep me"
    assert leftovers(tmp_path) == []
    assert not (tmp_path / "escaped").exists()
    assert not os.path.exists("/tmp/ocisift-escaped")
    return info.value


def test_dotdot_member(layout, tmp_path):
    err = assert_refused(layout, tmp_path, [(member("ok.txt"), b"1"), (member("../escaped"), b"x")])
    assert err.exit_code == 5 and ".." in err.message


def test_absolute_member(layout, tmp_path):
    assert_refused(layout, tmp_path, [(member("/tmp/ocisift-escaped"), b"x")])


@pytest.mark.parametrize("target", ["/etc", "..", "../escaped", "a/../../escaped", "./../.."])
def test_symlink_escape(layout, tmp_path, target):
    assert_refused(layout, tmp_path, [(member("a", tarfile.DIRTYPE, mode=0o755), None),
                                      (member("link", tarfile.SYMTYPE, linkname=target), None)])


def test_symlink_chain_escape(layout, tmp_path):
    assert_refused(layout, tmp_path, [
        (member("d", tarfile.DIRTYPE, mode=0o755), None),
        (member("d/up", tarfile.SYMTYPE, linkname=".."), None),          # points at the root: fine alone
        (member("d/upup", tarfile.SYMTYPE, linkname="up/.."), None),     # through the first link: outside
    ])


def test_link_turned_outward_by_a_later_entry(layout, tmp_path):
    assert_refused(layout, tmp_path, [
        (member("d", tarfile.DIRTYPE, mode=0o755), None),
        (member("a", tarfile.SYMTYPE, linkname="d/.."), None),           # inside while d is a directory
        (member("d", tarfile.SYMTYPE, linkname="."), None),              # still inside
        (member("e", tarfile.DIRTYPE, mode=0o755), None),
        (member("e/f", tarfile.SYMTYPE, linkname=".."), None),
        (member("d", tarfile.SYMTYPE, linkname="e/f"), None),            # now a -> d/.. climbs out
    ])


def test_write_through_symlink(layout, tmp_path):
    err = assert_refused(layout, tmp_path, [(member("real", tarfile.DIRTYPE, mode=0o755), None),
                                            (member("via", tarfile.SYMTYPE, linkname="real"), None),
                                            (member("via/file", tarfile.REGTYPE), b"x")])
    assert "symlink" in err.message


@pytest.mark.parametrize("target", ["../escaped", "/etc/passwd", "missing.txt", "link"])
def test_hardlink_escape_or_dangling(layout, tmp_path, target):
    assert_refused(layout, tmp_path, [(member("inside.txt"), b"data"),
                                      (member("link", tarfile.SYMTYPE, linkname="inside.txt"), None),
                                      (member("h", tarfile.LNKTYPE, linkname=target), None)])


@pytest.mark.parametrize("kind", [tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE])
def test_device_nodes_and_fifos(layout, tmp_path, kind):
    info = member("dev/null", kind)
    info.devmajor, info.devminor = 1, 3
    assert_refused(layout, tmp_path, [(info, None)])


def test_decompression_bomb_ratio(layout, tmp_path):
    big = raw_tar([(member("zeros"), b"\0" * (48 << 20))])
    ref = one_layer(layout, gzip.compress(big, compresslevel=9))
    with pytest.raises(UnsafeContentError, match="ratio"):
        pull(ref, tmp_path / "out")
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []
    # The cap is configurable: a higher ratio lets the same layer through.
    pull(ref, tmp_path / "out", limits=ExtractLimits(max_ratio=5000))
    assert (tmp_path / "out" / "zeros").stat().st_size == 48 << 20


def test_size_cap_and_entry_cap(layout, tmp_path):
    ref = one_layer(layout, gzip.compress(raw_tar([(member(f"f{i}"), os.urandom(4096)) for i in range(40)])))
    with pytest.raises(UnsafeContentError, match="max-extract-size"):
        pull(ref, tmp_path / "a", limits=ExtractLimits(max_bytes=64 * 1024))
    with pytest.raises(UnsafeContentError, match="entries"):
        pull(ref, tmp_path / "b", limits=ExtractLimits(max_entries=10))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_safe_links_are_extracted(layout, tmp_path):
    ref = one_layer(layout, gzip.compress(raw_tar([
        (member("bin", tarfile.DIRTYPE, mode=0o755), None),
        (member("bin/tool"), b"#!/bin/sh\n"),
        (member("usr", tarfile.DIRTYPE, mode=0o755), None),
        (member("usr/tool", tarfile.SYMTYPE, linkname="../bin/tool"), None),
        (member("bin/hard", tarfile.LNKTYPE, linkname="bin/tool"), None),
    ])))
    pull(ref, tmp_path / "out")
    assert os.readlink(tmp_path / "out" / "usr" / "tool") == "../bin/tool"
    assert (tmp_path / "out" / "bin" / "hard").read_bytes() == b"#!/bin/sh\n"


def test_setuid_bits_are_dropped(layout, tmp_path):
    ref = one_layer(layout, gzip.compress(raw_tar([(member("suid", mode=0o4755), b"x")])))
    pull(ref, tmp_path / "out")
    assert (tmp_path / "out" / "suid").stat().st_mode & 0o7777 == 0o755


def _two_image_layers(layout, tmp_path, lower: dict[str, bytes], upper: list):  # type: ignore[no-untyped-def]
    """`lower` (files) under `upper` (tar members), both image layers, unpacked whole; the output."""
    layers = [(make_tar(lower), mt.OCI_LAYER_GZIP, {}), (gzip.compress(raw_tar(upper)), mt.OCI_LAYER_GZIP, {})]
    write_index(layout, [entry(artifact(layout, layers=layers))])
    out = tmp_path / "out"
    ocisift.pull(f"oci:{layout.path}", str(out), mode="extract-all")
    return out


def test_whiteouts_in_image_layers(layout, tmp_path):
    out = _two_image_layers(layout, tmp_path, {"a/x": b"x", "a/y": b"y", "b/old": b"old", "keep": b"k"}, [
        (member("a/.wh.x"), b""),
        (member("b/.wh..wh..opq"), b""),
        (member("b/new"), b"new"),
    ])
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == ["a/y", "b/new", "keep"]


def test_an_opaque_marker_repeated_in_a_layer_hides_the_lower_layers_once(layout, tmp_path):
    """The second marker finds nothing of a lower layer left (and costs no scan of the directory): this
    layer's entries, written between the markers, stay."""
    out = _two_image_layers(layout, tmp_path, {"b/old": b"old", "b/older": b"older"}, [
        (member("b/.wh..wh..opq"), b""),
        (member("b/new"), b"new"),
        *[(member("b/.wh..wh..opq"), b"") for _ in range(50)],
        (member("b/newer"), b"newer"),
    ])
    assert sorted(p.name for p in (out / "b").iterdir()) == ["new", "newer"]


def test_files_deep_under_known_directories_resolve_through_links_as_before(layout, tmp_path):
    """Parents this extraction made resolve to themselves without a walk; a path through a link still
    resolves through it (inside the root), whatever the depth."""
    deep = "/".join(["d"] * 300)
    layer = gzip.compress(raw_tar([
        (member("elsewhere", tarfile.DIRTYPE), None),
        (member("l", tarfile.SYMTYPE, linkname="elsewhere"), None),
        *[(member(f"{deep}/f{i}"), b"x") for i in range(3)],
        (member(f"{deep}/up", tarfile.SYMTYPE, linkname="/elsewhere"), None),
        (member(f"{deep}/up/through"), b"t"),
        (member("l/direct"), b"y"),
    ]))
    out = tmp_path / "out"
    ocisift.pull(one_layer(layout, layer, mt.OCI_LAYER_GZIP), str(out), mode="extract")
    assert sorted(os.listdir(out / "elsewhere")) == ["direct", "through"]
    assert sorted(os.listdir(out / deep)) == ["f0", "f1", "f2", "up"]


def test_artifact_links_that_cost_too_much_resolving_are_refused(layout, tmp_path):
    """Artifact layers' links are resolved to check they stay inside, under the same step allowance as a
    root filesystem's: a chain whose targets wind back and forth, linked to a few thousand times, is refused
    instead of taking minutes."""
    winding = "/".join(["q", ".."] * 800)  # a target of 4,000 bytes: about what a Linux link holds
    entries = [(member("q", tarfile.DIRTYPE), None), (member("L30", tarfile.SYMTYPE, linkname="q"), None)]
    entries += [(member(f"L{i}", tarfile.SYMTYPE, linkname=f"{winding}/L{i + 1}"), None) for i in range(30)]
    entries += [(member(f"p{i}", tarfile.SYMTYPE, linkname="L0"), None) for i in range(200)]
    ref = one_layer(layout, gzip.compress(raw_tar(entries)))
    with pytest.raises(UnsafeContentError, match="too much work to resolve"):
        ocisift.pull(ref, str(tmp_path / "out"), mode="extract")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("media_type", [ARTIFACT_TAR, mt.OCI_LAYER_GZIP])
@pytest.mark.parametrize("entries", [
    [("x", "file"), ("l", "symlink:x"), ("l", "hardlink:l")],
    [("x", "file"), ("l", "hardlink:l")],
    [("d", "dir"), ("d/l", "file"), ("d", "hardlink:d/l")],
], ids=["link to itself over a symlink", "link to itself", "link to what it replaces"])
def test_a_hardlink_to_itself_or_inside_what_it_replaces_is_refused(layout, tmp_path, media_type, entries):
    built = []
    for name, kind in entries:
        if kind == "file":
            built.append((member(name), b"x"))
        elif kind == "dir":
            built.append((member(name, tarfile.DIRTYPE), None))
        elif kind.startswith("symlink:"):
            built.append((member(name, tarfile.SYMTYPE, linkname=kind[8:]), None))
        else:
            built.append((member(name, tarfile.LNKTYPE, linkname=kind[9:]), None))
    ref = one_layer(layout, gzip.compress(raw_tar(built)), media_type)
    with pytest.raises(UnsafeContentError, match="links to itself"):
        ocisift.pull(ref, str(tmp_path / "out"), mode="extract")
    assert not (tmp_path / "out").exists()


def test_artifact_layers_conflict_unless_overwrite(layout, tmp_path):
    one = make_tar({"cue.mod/module.cue": b"v1", "values.cue": b"a"})
    two = make_tar({"values.cue": b"b", "templates/x.cue": b"x"})
    desc = artifact(layout, layers=[(one, ARTIFACT_TAR, {}), (two, ARTIFACT_TAR, {})])
    write_index(layout, [entry(desc)])
    with pytest.raises(ConflictError, match=r"values\.cue"):
        ocisift.pull(f"oci:{layout.path}", str(tmp_path / "a"), mode="extract-all")
    assert not (tmp_path / "a").exists()
    ocisift.pull(f"oci:{layout.path}", str(tmp_path / "b"), mode="extract-all", overwrite=True)
    assert (tmp_path / "b" / "values.cue").read_bytes() == b"b"
    assert (tmp_path / "b" / "cue.mod" / "module.cue").read_bytes() == b"v1"


def test_include_exclude(layout, tmp_path):
    ref = one_layer(layout, make_tar({"etc/os-release": b"ID=x", "etc/passwd": b"root", "usr/bin/sh": b"sh"}),
                    mt.OCI_LAYER_GZIP)
    ocisift.pull(ref, str(tmp_path / "a"), mode="extract", include=["etc/os-release"])
    assert [str(p.relative_to(tmp_path / "a")) for p in (tmp_path / "a").rglob("*") if p.is_file()] == ["etc/os-release"]
    ocisift.pull(ref, str(tmp_path / "b"), mode="extract", exclude=["usr"])
    assert sorted(p.name for p in (tmp_path / "b").rglob("*") if p.is_file()) == ["os-release", "passwd"]
    # An --include that matches nothing is not an empty success: exit 3, naming it, nothing written.
    with pytest.raises(NotFoundError, match="etc/os-relase"):
        ocisift.pull(ref, str(tmp_path / "c"), mode="extract", include=["etc/os-release", "etc/os-relase"])
    assert not (tmp_path / "c").exists() and not list(tmp_path.glob(".ocisift-staging-*"))


@pytest.mark.parametrize(("media_type", "compress"), [
    (mt.OCI_LAYER_ZSTD, lambda d: zstandard.ZstdCompressor().compress(d)),
    (mt.OCI_LAYER_TAR, lambda d: d),
    (mt.OCI_LAYER_GZIP, gzip.compress),
])
def test_tar_gzip_zstd(layout, tmp_path, media_type, compress):
    ref = one_layer(layout, compress(make_tar({"f.txt": b"payload"}, compression="none")), media_type)
    pull(ref, tmp_path / "out")
    assert (tmp_path / "out" / "f.txt").read_bytes() == b"payload"


@pytest.mark.parametrize(("media_type", "compress"), [
    (mt.OCI_LAYER_GZIP, lambda d: d),                                       # says gzip, is plain
    (mt.OCI_LAYER_ZSTD, gzip.compress),                                     # says zstd, is gzip
    (mt.OCI_LAYER_TAR, lambda d: zstandard.ZstdCompressor().compress(d)),   # says plain, is zstd
])
def test_magic_bytes_must_agree_with_media_type(layout, tmp_path, media_type, compress):
    ref = one_layer(layout, compress(make_tar({"f.txt": b"x"}, compression="none")), media_type)
    with pytest.raises(IntegrityError, match="bytes"):
        pull(ref, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_existing_destination_is_merged_on_success(layout, tmp_path):
    ref = one_layer(layout, make_tar({"new.txt": b"new", "sub/x": b"x"}), mt.OCI_LAYER_GZIP)
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    (out / "mine.txt").write_text("mine")
    (out / "sub" / "x").write_text("old")
    pull(ref, out)
    assert (out / "mine.txt").read_text() == "mine"
    assert (out / "new.txt").read_text() == "new"
    assert (out / "sub" / "x").read_text() == "x"


def test_destination_symlink_is_not_followed(layout, tmp_path):
    ref = one_layer(layout, make_tar({"etc/passwd": b"evil"}), mt.OCI_LAYER_GZIP)
    out = tmp_path / "out"
    out.mkdir()
    target = tmp_path / "victim"
    target.mkdir()
    (out / "etc").symlink_to(target)
    with pytest.raises(UnsafeContentError, match="symlink"):
        pull(ref, out)
    assert list(target.iterdir()) == []


def test_layer_per_dir_and_copy_names(sample, tmp_path):
    result = ocisift.pull(f"oci:{sample}:7.2", str(tmp_path / "lpd"), mode="layer-per-dir")
    dirs = sorted(p.name for p in (tmp_path / "lpd").iterdir())
    assert dirs == sorted(f"sha256-{p.descriptor.digest.hex}" for p in result.plan)
    assert any((tmp_path / "lpd" / d / "cue.mod").is_dir() for d in dirs)
    ocisift.pull(f"oci:{sample}:7.2", str(tmp_path / "cp"), mode="copy", layers=LayerSelector.build(all=True))
    assert all(p.name.endswith(".tar.gz") for p in (tmp_path / "cp").iterdir())
    ocisift.pull(f"oci:{sample}:7.2", str(tmp_path / "named"), name="module.tgz",
                 layers=LayerSelector.build(index=1))
    assert [p.name for p in (tmp_path / "named").iterdir()] == ["module.tgz"]


def test_tar_without_end_blocks_is_accepted_but_truncated_data_is_not(layout, tmp_path):
    full = raw_tar([(member("a.txt"), b"A" * 100), (member("b.txt"), b"B" * 700)])
    end = full.rindex(b"B" * 700) + 700
    ref = one_layer(layout, gzip.compress(full[:end]))
    pull(ref, tmp_path / "ok")
    assert (tmp_path / "ok" / "b.txt").read_bytes() == b"B" * 700
    ref = one_layer(layout, gzip.compress(full[: end - 300]))
    with pytest.raises(IntegrityError):
        pull(ref, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


def test_long_chains_of_long_links_cost_bounded_work(layout, tmp_path):
    """255 chained links with 4 KB targets, then entries under them: refused within the work bound, quickly."""
    import time

    entries = []
    for i in range(255):
        target = "./" * 2000 + (f"l{i + 1}" if i < 254 else "d")
        entries.append((member(f"l{i}", tarfile.SYMTYPE, linkname=target), None))
    entries.append((member("d", tarfile.DIRTYPE, mode=0o755), None))
    entries += [(member(f"l0/f{i}"), b"x") for i in range(2000)]
    ref = one_layer(layout, gzip.compress(raw_tar(entries)), mt.OCI_LAYER_GZIP)
    started = time.monotonic()
    with pytest.raises(UnsafeContentError, match="too much work"):
        ocisift.pull(ref, str(tmp_path / "out"), mode="extract")
    assert time.monotonic() - started < 30
    assert not (tmp_path / "out").exists()


def test_a_hardlink_to_a_symlink_is_that_symlink_again(layout, tmp_path):
    """As containerd's hardlinkRootPath: the link target's last component is not followed."""
    entries = [(member("a", tarfile.SYMTYPE, linkname="nowhere"), None),
               (member("b", tarfile.LNKTYPE, linkname="a"), None)]
    ref = one_layer(layout, gzip.compress(raw_tar(entries)), mt.OCI_LAYER_GZIP)
    ocisift.pull(ref, str(tmp_path / "out"), mode="extract")
    assert os.readlink(tmp_path / "out" / "b") == "nowhere"


def test_an_include_whose_every_match_is_excluded_matched_nothing(layout, tmp_path):
    ref = one_layer(layout, make_tar({"etc/os-release": b"x", "etc/passwd": b"y"}), mt.OCI_LAYER_GZIP)
    with pytest.raises(NotFoundError, match="--include etc"):
        ocisift.pull(ref, str(tmp_path / "out"), mode="extract", include=["etc"], exclude=["etc"])


def _walk_by_paths(root: str, with_dirs: bool) -> list[str]:
    """The listing _walk_rel gives, made the plain way (each directory by its whole path), to compare with."""
    out: list[str] = []
    pending = [""]
    while pending:
        rel_dir = pending.pop()
        entries = sorted(os.scandir(os.path.join(root, rel_dir)), key=lambda e: e.name)
        subdirs = [os.path.join(rel_dir, e.name) for e in entries if e.is_dir(follow_symlinks=False)]
        out += [os.path.join(rel_dir, e.name) for e in entries
                if with_dirs or not e.is_dir(follow_symlinks=False)]
        pending.extend(reversed(subdirs))
    return out


@pytest.mark.parametrize("with_dirs", [False, True])
def test_the_staged_tree_is_listed_parents_first_sorted_and_never_through_a_link(tmp_path, with_dirs):
    """The walk opens each directory from its parent's descriptor instead of naming it by its whole path;
    what it lists, and in which order, is what the plain walk lists."""
    from ocisift._unpack.staging import _walk_rel

    root = tmp_path / "tree"
    deep = root / "deep"
    deep.mkdir(parents=True)
    for n in range(300):  # deeper than the recursion limit of a recursive walk would like, with siblings
        (deep / f"f{n % 3}").write_text("x")
        if n % 50 == 0:
            (deep / "side").mkdir()
            (deep / "side" / "file").write_text("y")
        deep = deep / "d"
        deep.mkdir()
    comb = root / "comb"  # every level has a subdirectory left to see: more open levels than the walk keeps
    for n in range(150):
        (comb / "z").mkdir(parents=True)
        (comb / "z" / "leaf").write_text(str(n))
        comb = comb / "a"
    for name in ("b", "a", "c"):
        (root / name).mkdir()
        (root / name / "z").write_text(name)
        (root / name / "to-root").symlink_to(root)  # listed as an entry, never walked into
    (root / "empty").mkdir()
    open_before = len(os.listdir("/proc/self/fd"))
    listed = _walk_rel(str(root), with_dirs=with_dirs)
    assert listed == _walk_by_paths(str(root), with_dirs)
    assert "a/to-root" in listed and not any(p.startswith("a/to-root/") for p in listed)
    assert listed.index("a/z") < listed.index("b/z") < listed.index("c/z")
    assert sum(p.endswith("/z/leaf") for p in listed) == 150
    assert len(os.listdir("/proc/self/fd")) == open_before  # every descriptor of the walk is closed


def test_into_an_existing_directory_new_trees_move_whole_and_the_users_entries_stay(layout, tmp_path):
    """A directory the destination lacks moves with one rename (its whole tree, its own mode); into the
    user's directories entries move one by one, files there are replaced, the user's other files stay, and
    every file written is reported."""
    out = tmp_path / "out"
    (out / "etc").mkdir(parents=True)
    (out / "etc").chmod(0o750)
    (out / "etc" / "mine").write_text("keep me")
    (out / "etc" / "app.conf").write_text("old")
    deep = "/".join(f"d{n}" for n in range(40))
    ref = one_layer(layout, make_tar({"etc/app.conf": b"new", "etc/new/a/b.txt": b"b", f"srv/{deep}/leaf": b"l",
                                      "top.txt": b"t"}))
    result = pull(ref, out, mode="extract")
    assert (out / "etc" / "mine").read_text() == "keep me" and (out / "etc" / "app.conf").read_text() == "new"
    assert stat.S_IMODE(os.stat(out / "etc").st_mode) == 0o750
    assert (out / "etc" / "new" / "a" / "b.txt").read_bytes() == b"b"
    assert (out / "srv" / deep / "leaf").read_bytes() == b"l" and (out / "top.txt").read_bytes() == b"t"
    assert sorted(result.files) == sorted(["etc/app.conf", "etc/new/a/b.txt", f"srv/{deep}/leaf", "top.txt"])
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".ocisift-staging-")] == []


def test_a_clash_deep_inside_a_merged_directory_stops_the_pull_before_anything_moves(layout, tmp_path):
    out = tmp_path / "out"
    (out / "etc" / "conf").mkdir(parents=True)
    ref = one_layer(layout, make_tar({"aaa/new.txt": b"n", "etc/conf": b"a file where a directory is"}))
    with pytest.raises(ConflictError, match="etc/conf"):
        pull(ref, out, mode="extract")
    assert sorted(p.name for p in out.iterdir()) == ["etc"]  # aaa, a new tree listed first, did not move
