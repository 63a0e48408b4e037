"""The command line: exit codes, JSON everywhere (errors too), examples in every --help."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile

import pytest

import ocisift
from ocisift._cli.main import main


def test_api_names_are_functions_even_after_every_module_is_imported():
    import importlib
    import pkgutil

    for info in pkgutil.walk_packages(ocisift.__path__, "ocisift."):
        importlib.import_module(info.name)
    for name in ("resolve", "pull", "tree", "tags", "manifest", "open"):
        assert callable(getattr(ocisift, name)) and not isinstance(getattr(ocisift, name), type(ocisift))


def all_commands(group, prefix=()):
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):
            yield from all_commands(cmd, (*prefix, name))
        else:
            yield (*prefix, name)


@pytest.mark.parametrize("command", list(all_commands(main)))
def test_every_help_has_an_example(cli, command):
    res = cli(*command, "--help")
    assert res.code == 0
    assert "Example:" in res.out and "ocisift " in res.out.split("Example:", 1)[1]


def test_resolve_tree_tags_manifest(sample, cli):
    res = cli("resolve", f"oci:{sample}:1.2", "--platform", "linux/arm64:el9", "--format", "json")
    assert res.code == 0
    body = res.json()
    assert body["platform"] == "linux/arm64/v8:el9"
    assert body["pinned"] == f"oci:{sample}@{body['digest']}"
    # The pinned reference resolves to the same digest.
    assert cli("resolve", body["pinned"]).out.strip() == body["digest"]

    tree = cli("tree", f"oci:{sample}", "--format", "json").json()
    assert [n["kind"] for n in tree] == ["index", "index", "manifest"]
    nested = tree[1]["manifests"][0]
    assert nested["kind"] == "index" and len(nested["manifests"]) == 2
    assert "example.com/acme/product:2.0" in cli("tree", f"oci:{sample}").out

    assert set(cli("tags", f"oci:{sample}", "--format", "json").json()["tags"]) >= {"1.2", "7.2"}

    raw = subprocess.run([sys.executable, "-m", "ocisift", "manifest", "get", f"oci:{sample}:7.2"],
                         capture_output=True, check=True).stdout
    digest = cli("resolve", f"oci:{sample}:7.2").out.strip()
    assert ocisift.Digest.of(raw) == ocisift.Digest.parse(digest)


def test_pull_json_reports_revision_and_files(sample, cli, tmp_path):
    res = cli("pull", f"oci:{sample}:7.2", "-o", str(tmp_path / "m"), "--layer-media-type",
              "application/vnd.timoni.*", "--mode", "extract-all", "--format", "json")
    assert res.code == 0, res.out
    body = res.json()
    assert body["revision"].startswith("7.2@sha256:")
    assert "timoni.cue" in body["files"] and (tmp_path / "m" / "cue.mod" / "module.cue").is_file()
    by_digest = cli("pull", body["pinned"], "-o", str(tmp_path / "d"), "--layer-index", "1", "--format", "json").json()
    assert by_digest["revision"] == body["digest"]
    # Two layers match in copy mode and neither --layer-index nor --all-layers was given: never a guess.
    guess = cli("pull", body["pinned"], "-o", str(tmp_path / "g"), "--format", "json")
    assert guess.code == 4 and not (tmp_path / "g").exists()
    listed = guess.json()["error"]["candidates"]
    assert [(c["layerIndex"], c["position"]) for c in listed] == [(0, 0), (1, 1)]
    assert "--layer-index N" in guess.json()["error"]["message"]


def test_dry_run_fetches_nothing(sample, cli, tmp_path):
    blobs = os.path.join(sample, "blobs", "sha256")
    plan = cli("pull", f"oci:{sample}:7.2", "-o", str(tmp_path / "x"), "--mode", "extract-all",
               "--dry-run", "--format", "json").json()
    assert plan["dryRun"] and len(plan["blobs"]) == 2
    for blob in plan["blobs"]:  # remove the layers: a dry run must not need them
        os.remove(os.path.join(blobs, blob["digest"].split(":")[1]))
    again = cli("pull", f"oci:{sample}:7.2", "-o", str(tmp_path / "x"), "--mode", "extract-all", "--dry-run")
    assert again.code == 0 and "would write" in again.out
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(("args", "code", "kind"), [
    (["resolve", "Not A Ref"], 2, "reference"),
    (["resolve", "oci:{s}:9.9"], 3, "not-found"),
    (["resolve", "oci:{s}:1.2", "--platform", "linux/s390x"], 3, "not-found"),
    (["resolve", "oci:{s}:1.2", "--platform", "linux/amd64"], 4, "ambiguous"),
    (["resolve", "oci:{s}"], 4, "ambiguous"),
    (["resolve", "oci:{s}:1.2", "--platform", "linux"], 2, "usage"),
    (["pull", "oci:{s}:7.2", "-o", "{o}", "--mode", "extract", "--all-layers"], 2, "usage"),
    (["pull", "oci:{s}:7.2", "-o", "{o}", "--mode", "nope"], 2, "usage"),
    (["resolve", "oci:/nonexistent/layout:1"], 3, "not-found"),
])
def test_exit_codes_and_json_errors(sample, cli, tmp_path, args, code, kind):
    args = [a.format(s=sample, o=tmp_path / "o") for a in args]
    res = cli(*args, "--format", "json")
    assert res.code == code, res.out
    err = res.json()["error"]
    assert err["code"] == code
    assert err["kind"] == kind
    human = cli(*args)
    assert human.code == code and human.err.startswith(("error:", "Error:", "Usage:"))


def test_ambiguity_lists_ready_to_paste_candidates(sample, cli):
    res = cli("resolve", f"oci:{sample}:1.2", "--platform", "linux/amd64", "--format", "json")
    candidates = res.json()["error"]["candidates"]
    assert {c["platform"] for c in candidates} == {"linux/amd64:el8", "linux/amd64:el9"}
    for c in candidates:
        assert cli("resolve", c["reference"]).out.strip() == c["digest"]


def test_layout_path_with_colon_and_archive(sample, cli, tmp_path):
    colon_dir = tmp_path / "build:2024"
    colon_dir.mkdir()
    import shutil

    shutil.copytree(sample, colon_dir / "out")
    a = cli("resolve", f"oci:{colon_dir}/out:7.2").out.strip()
    assert a == cli("resolve", f"oci:{sample}:7.2").out.strip()
    assert cli("resolve", f"{colon_dir}/out:7.2").out.strip() == a  # bare path form

    archive = tmp_path / "layout.tar"
    with tarfile.open(archive, "w") as tar:
        for name in sorted(os.listdir(sample)):
            tar.add(os.path.join(sample, name), arcname=name)
    assert cli("resolve", f"oci-archive:{archive}:7.2").out.strip() == a
    res = cli("pull", f"oci-archive:{archive}:1.2", "--platform", "linux/amd64:el9", "--mode", "extract",
              "-o", str(tmp_path / "x"), "--format", "json")
    assert res.code == 0, res.out
    assert (tmp_path / "x" / "repo" / "el9" / "amd64" / "repodata" / "repomd.xml").is_file()
    tree = cli("tree", f"oci-archive:{archive}", "--format", "json").json()
    assert len(tree) == 3


def test_hostile_archive_file_is_refused_cleanly(cli, tmp_path):
    not_tar = tmp_path / "x.tar"
    not_tar.write_bytes(os.urandom(2000))
    res = cli("tree", f"oci-archive:{not_tar}", "--format", "json")
    assert res.code in (3, 5) and "error" in res.json()
    gz = tmp_path / "y.tar"
    gz.write_bytes(b"\x1f\x8b" + os.urandom(100))
    res = cli("tree", f"oci-archive:{gz}")
    assert res.code == 2 and "compressed" in res.err


def test_version_and_module_entry():
    out = subprocess.run([sys.executable, "-m", "ocisift", "--version"], capture_output=True, text=True, check=True)
    assert ocisift.__version__ in out.stdout


def test_max_depth_bounds_the_walk(layout, cli):
    from conftest import artifact, entry, push_index, write_index
    from ocisift._core.platform import Platform

    node = artifact(layout, platform=Platform.parse("linux/amd64"))
    for _ in range(20):
        node = push_index(layout, [node])
    write_index(layout, [entry(node, org__opencontainers__image__ref__name="deep")])
    res = cli("resolve", f"oci:{layout.path}:deep", "--platform", "linux/amd64", "--format", "json")
    assert res.code == 5 and "deeper than 16" in res.json()["error"]["message"]
    assert cli("resolve", f"oci:{layout.path}:deep", "--platform", "linux/amd64", "--max-depth", "32").code == 0
    assert cli("tree", f"oci:{layout.path}:deep").code == 5
    assert cli("tree", f"oci:{layout.path}:deep", "--max-depth", "32").code == 0


def test_text_from_documents_is_data_and_is_never_cut(layout, cli):
    from conftest import artifact, entry, write_index

    long_value = "v" * 400
    hostile = "[bold red]shout[/bold red] \x1b[2J\x1b]0;pwned\x07 \u202egnp.exe"
    desc = artifact(layout, {"a.txt": b"a"}, annotations={"com.acme.long": long_value})
    write_index(layout, [entry(desc, org__opencontainers__image__ref__name="v1", com__acme__note=hostile,
                               com__acme__long=long_value)])
    res = cli("tree", f"oci:{layout.path}:v1")
    assert res.code == 0
    assert f"com.acme.long={long_value}" in res.out  # whole, on one line, although it is far wider than 80
    assert "[bold red]shout[/bold red]" in res.out  # printed, not interpreted as markup
    assert "\x1b" not in res.out and "\x07" not in res.out and "\u202e" not in res.out
    assert "\\u001b[2J" in res.out and "\\u202e" in res.out  # shown escaped
    as_json = cli("tree", f"oci:{layout.path}:v1", "--format", "json").json()
    assert as_json[0]["annotations"]["com.acme.note"] == hostile  # JSON stays exact
    missing = cli("resolve", f"oci:{layout.path}:nope")
    assert missing.code == 3 and "\x1b" not in missing.err and "\\u001b" in missing.err


def test_the_suite_refuses_to_run_without_its_real_peers(tmp_path):
    """./dev test fails loudly, naming what to install, when skopeo, umoci or docker-registry is missing."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "OCISIFT_SKIP_INTEROP"}
    env["PATH"] = os.path.dirname(sys.executable)  # the virtualenv only: none of the peers
    run = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                          "tests/test_platform.py"], cwd=os.path.dirname(os.path.dirname(__file__)),
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    assert "skopeo" in run.stdout + run.stderr and "OCISIFT_SKIP_INTEROP=1" in run.stdout + run.stderr
    env["OCISIFT_SKIP_INTEROP"] = "1"
    opted_out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                                "tests/test_platform.py"], cwd=os.path.dirname(os.path.dirname(__file__)),
                               env=env, capture_output=True, text=True, timeout=120)
    assert opted_out.returncode == 0
