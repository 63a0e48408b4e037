"""sync --shard: N processes run one spec, each taking a stable share of the (image, tag) work.

The share is rendezvous hashing over the source repository and the tag (`_core/shards.py`); here it is
checked as arithmetic (every key has one owner, adding keys moves none, a fifth shard takes about a fifth)
and on real registries: four shards of a 200-image spec, run as four processes at once, copy exactly what
one run copies, each (image, tag) once.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import ocisift
from ocisift._core import mediatypes as mt
from ocisift._core.builders import manifest_bytes
from ocisift._core.errors import UsageError
from ocisift._core.shards import COUNT_VARIABLE, INDEX_VARIABLE, Shard, owner, parse_shard
from ocisift._demo import build_sample_layout
from ocisift._stores.layout import LayoutStore
from registry import run_registry

IMAGES = 200
TAGS = ("1.0", "latest")

# -- the arithmetic --------------------------------------------------------------------------------------


def _keys(n: int) -> list[tuple[str, str]]:
    return [(f"registry.example/team{i % 7}/app{i}", tag) for i in range(n) for tag in ("1.0.0", "latest")]


def test_every_key_has_exactly_one_shard_and_the_shares_are_even():
    keys = _keys(2000)
    for count in (1, 2, 4, 7):
        owners = [owner(repo, tag, count) for repo, tag in keys]
        shards = [Shard(i, count) for i in range(count)]
        for (repo, tag), first in zip(keys, owners, strict=True):
            assert [s.index for s in shards if s.owns(repo, tag)] == [first]
        share = len(keys) / count
        assert all(abs(owners.count(i) - share) < 0.15 * share for i in range(count)), count


def test_adding_images_moves_no_tag_and_a_new_shard_takes_only_its_share():
    keys = _keys(2000)
    before = {k: owner(*k, 4) for k in keys}
    more = {k: owner(*k, 4) for k in _keys(2500)}
    assert all(more[k] == before[k] for k in keys)  # the new images' tags go somewhere; no other tag moves
    five = {k: owner(*k, 5) for k in keys}
    moved = [k for k in keys if five[k] != before[k]]
    assert all(five[k] == 4 for k in moved)  # a tag moves only to the new shard
    assert 0.15 < len(moved) / len(keys) < 0.25  # about a fifth, not nearly all as modulo N would move


def test_shard_arguments_and_the_environment():
    assert parse_shard("2/4", None, {}) == Shard(2, 4)
    assert parse_shard("auto", None, {INDEX_VARIABLE: "3", COUNT_VARIABLE: "8"}) == Shard(3, 8)
    assert parse_shard("auto", 4, {INDEX_VARIABLE: "0", COUNT_VARIABLE: "8"}) == Shard(0, 4)  # --shards wins
    bad = [("4/4", None, {}), ("-1/4", None, {}), ("1/0", None, {}), ("1", None, {}), ("a/b", None, {}),
           ("1/4", 4, {}), ("auto", 4, {}), ("auto", None, {INDEX_VARIABLE: "1"}),
           ("auto", None, {INDEX_VARIABLE: "x", COUNT_VARIABLE: "2"}), ("0/99999999", None, {}),
           ("auto", None, {INDEX_VARIABLE: "²", COUNT_VARIABLE: "4"})]
    for text, count, env in bad:
        with pytest.raises(UsageError):
            parse_shard(text, count, env)


def test_shards_writing_a_layout_or_archive_are_refused_before_anything_runs(tmp_path, cli, monkeypatch):
    build_sample_layout(str(tmp_path / "lay"))
    spec = tmp_path / "local.yaml"
    spec.write_text(f"""images:
  - source: oci:{tmp_path}/lay
    tags: [7.2]
    destination: oci:{tmp_path}/out
""")
    res = cli("sync", str(spec), "--shard", "0/2")
    assert res.code == 2 and "local.yaml:2" in res.err and "2 shards cannot share" in res.err, res.err
    assert not (tmp_path / "out").exists()
    assert cli("sync", str(spec), "--shard", "0/1").code == 0  # one shard is the whole run
    assert cli("sync", str(spec), "--shard", "1/1").code == 2
    monkeypatch.delenv(INDEX_VARIABLE, raising=False)
    res = cli("sync", str(spec), "--shard", "auto", "--shards", "2")
    assert res.code == 2 and INDEX_VARIABLE in res.err, res.err


# -- on real registries ---------------------------------------------------------------------------------


def _push_images(layout: Path, host: str) -> None:
    """IMAGES small images, each its own layer, under shard/appNNN with both TAGS (one digest)."""
    store = LayoutStore.create(str(layout))
    config = store.push_bytes(b"{}", mt.OCI_EMPTY)
    for n in range(IMAGES):
        layer = store.push_bytes(f"app {n}\n".encode(), "application/vnd.example.file")
        store.tag(store.push_bytes(manifest_bytes(config, [layer], artifact_type="application/vnd.example"),
                                   mt.OCI_MANIFEST), f"app{n:03d}")

    def one(n: int) -> None:
        ocisift.copy(f"oci:{layout}:app{n:03d}", f"{host}/shard/app{n:03d}:{TAGS[0]}")
        ocisift.tag(f"{host}/shard/app{n:03d}:{TAGS[0]}", list(TAGS[1:]))

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(one, range(IMAGES)))


def _spec(path: Path, source: str, destination: str) -> Path:
    """Every tenth image takes `tags: all` (each shard lists its tags, and keeps its share)."""
    images = [{"source": f"{source}/shard/app{n:03d}", "tags": "all" if n % 10 == 0 else list(TAGS),
               "destination": f"{destination}/mirror/app{n:03d}"} for n in range(IMAGES)]
    path.write_text(json.dumps({"images": images}))  # JSON is YAML
    return path


def _report(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.skipif(shutil.which("docker-registry") is None, reason="docker-registry is needed")
def test_four_shards_as_four_processes_copy_exactly_what_one_run_copies(tmp_path):
    command = [sys.executable, "-m", "ocisift", "sync"]
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    with run_registry(tmp_path / "src") as src, run_registry(tmp_path / "one") as one, \
            run_registry(tmp_path / "many") as many:
        _push_images(tmp_path / "layout", src.host)
        whole = subprocess.run([*command, str(_spec(tmp_path / "one.yaml", src.host, one.host)), "--images", "8",
                                "--report", str(tmp_path / "one.jsonl"), "--format", "json"],
                               capture_output=True, env=env, timeout=600)
        assert whole.returncode == 0, (whole.stderr.decode()[-2000:],
                                       [i for i in json.loads(whole.stdout)["images"] if "error" in i])
        spec = _spec(tmp_path / "many.yaml", src.host, many.host)
        runs = []
        for i in range(4):  # all at once; the last as a Kubernetes Indexed Job's pod would run it
            args = ["--shard", f"{i}/4"] if i < 3 else ["--shard", "auto"]
            shard_env = {**env, INDEX_VARIABLE: str(i), COUNT_VARIABLE: "4"} if i == 3 else env
            runs.append(subprocess.Popen([*command, str(spec), *args, "--images", "2", "--format", "json",
                                          "--report", str(tmp_path / f"shard{i}.jsonl")],
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=shard_env))
        outputs = [r.communicate(timeout=600) for r in runs]
        for run, (out, err) in zip(runs, outputs, strict=True):
            assert run.returncode == 0, (err.decode()[-2000:], [i["error"] for i in json.loads(out)["images"] if "error" in i][:3])

        every = {(f"{src.host}/shard/app{n:03d}", tag) for n in range(IMAGES) for tag in TAGS}
        single = _report(tmp_path / "one.jsonl")
        assert sorted((r["source"], r["tag"]) for r in single) == sorted(every)
        shares = [_report(tmp_path / f"shard{i}.jsonl") for i in range(4)]
        taken = [(r["source"], r["tag"]) for share in shares for r in share]
        assert sorted(taken) == sorted(every)  # together every (image, tag), and each exactly once
        for i, share in enumerate(shares):
            assert IMAGES * len(TAGS) / 8 < len(share) < IMAGES * len(TAGS) / 2  # each a fair share
            assert all(owner(r["source"], r["tag"], 4) == i for r in share)  # the share the hash gives
            assert {r["result"] for r in share} == {"copied"} and all(r["exitCode"] == 0 for r in share)
            assert json.loads(outputs[i][0])["shard"] == f"{i}/4"
        # what one run copied, the shards copied: the same tags naming the same digests
        assert {(r["source"], r["tag"]): r["digest"] for r in single} == \
            {(r["source"], r["tag"]): r["digest"] for share in shares for r in share}
        for n in range(IMAGES):
            assert sorted(ocisift.tags(f"{many.host}/mirror/app{n:03d}")) == \
                sorted(ocisift.tags(f"{one.host}/mirror/app{n:03d}")) == sorted(TAGS)
        for n in range(0, IMAGES, 17):
            for tag in TAGS:
                assert ocisift.resolve(f"{many.host}/mirror/app{n:03d}:{tag}").descriptor.digest == \
                    ocisift.resolve(f"{src.host}/shard/app{n:03d}:{tag}").descriptor.digest
