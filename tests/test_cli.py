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


# The console script ends the process without the interpreter's teardown (`_exit_now`). This probe
# holds an object that only that teardown frees, an exit hook and, on request, a thread still running.
EXIT_PROBE = """
import atexit, sys, threading, time
from ocisift._cli.main import entry

class FreedAtTeardown:
    def __del__(self):
        sys.stderr.write("torn down\\n")

KEPT = FreedAtTeardown()
atexit.register(lambda: sys.stderr.write("exit hook ran\\n"))
if sys.argv[1] == "--with-thread":
    del sys.argv[1]
    threading.Thread(target=lambda: (time.sleep(0.3), sys.stderr.write("thread finished\\n"))).start()
entry()
"""


def run_probe(*args: str, **kwargs) -> subprocess.CompletedProcess:
    if "stdout" not in kwargs:
        kwargs["capture_output"] = True
    return subprocess.run([sys.executable, "-c", EXIT_PROBE, *args], text=True, timeout=60, **kwargs)


def test_the_command_ends_without_teardown_yet_runs_exit_hooks_and_keeps_its_output(sample, cli):
    for args in (["tree", f"oci:{sample}"], ["manifest", "get", f"oci:{sample}:nope"],
                 ["manifest", "get", f"oci:{sample}:nope", "--format", "json"]):
        expected = cli(*args)
        proc = run_probe(*args)
        assert "torn down" not in proc.stderr  # the interpreter's teardown was skipped
        assert "exit hook ran" in proc.stderr  # the exit hooks it would have run did run
        assert (proc.returncode, proc.stdout) == (expected.code, expected.out)  # flushed whole, same code
        assert proc.stderr.replace("exit hook ran\n", "") == expected.err
    assert expected.code == 3


def test_a_thread_still_running_at_the_end_is_waited_for(sample):
    proc = run_probe("--with-thread", "tree", f"oci:{sample}")
    assert proc.returncode == 0 and "thread finished" in proc.stderr and "exit hook ran" in proc.stderr


def test_output_to_a_closed_pipe_or_a_full_disk_fails_plainly(sample):
    # `--version` stays in the buffer until the end; `tree` writes while it runs: both moments fail alike.
    for args in (["--version"], ["tree", f"oci:{sample}"]):
        read_end, write_end = os.pipe()
        os.close(read_end)  # the reader is gone before a byte is written, as `| head -c0` would leave it
        try:
            proc = run_probe(*args, stdout=write_end, stderr=subprocess.PIPE)
        finally:
            os.close(write_end)
        assert proc.returncode == 1 and "Exception" not in proc.stderr and "Traceback" not in proc.stderr
        with open("/dev/full", "w") as full:
            proc = run_probe(*args, stdout=full, stderr=subprocess.PIPE)
        assert proc.returncode == 1 and "No space left on device" in proc.stderr
        assert "Exception" not in proc.stderr and "Traceback" not in proc.stderr
