"""The files in examples/ say what the code does: the manifests and the workflow load as YAML, run
`ocisift sync SPEC --shard auto` with options the command takes, set the environment variables the code
reads, give as many shards as they run, and their specs are valid specs that several shards may run."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from ocisift._cli.main import main
from ocisift._core.shards import COUNT_VARIABLE, INDEX_VARIABLE
from ocisift._core.specfile import parse_spec
from ocisift._core.syncspec import check_shardable

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _documents(name: str) -> list[dict[str, Any]]:
    with open(EXAMPLES / name, encoding="utf-8") as fh:
        return [d for d in yaml.safe_load_all(fh) if d is not None]


def _check_sync_args(args: list[str], shards: int) -> None:
    """`ocisift sync SPEC --shard auto --shards N …`, parsed by the command itself."""
    assert args[0] == "sync" and args[args.index("--shard") + 1] == "auto"
    context = main.commands["sync"].make_context("sync", list(args[1:]))
    assert context.params["shard"] == "auto"
    assert context.params["shards"] in (shards, None)


def _check_pod(template: dict[str, Any], shards: int, spec_text: str) -> None:
    (container,) = template["spec"]["containers"]
    args = container["args"]
    _check_sync_args(args, shards)
    assert int(args[args.index("--shards") + 1]) == shards  # the pods' count is the Job's
    for name in re.findall(r"\$\((\w+)\)", " ".join(args)):  # Kubernetes expands $(VAR) from the pod's env
        assert name == INDEX_VARIABLE
    mounted = {m["mountPath"] for m in container["volumeMounts"]}
    assert args[1] in mounted  # the spec is where the ConfigMap puts it
    check_shardable(parse_spec(spec_text, "mirror.yaml"), shards)


def _indexed(job_spec: dict[str, Any]) -> int:
    assert job_spec["completionMode"] == "Indexed"  # what sets JOB_COMPLETION_INDEX in each pod
    assert job_spec["completions"] == job_spec["parallelism"]
    return int(job_spec["completions"])


def _spec_text() -> str:
    (config_map,) = [d for d in _documents("kubernetes-job.yaml") if d["kind"] == "ConfigMap"]
    return str(config_map["data"]["mirror.yaml"])


def test_the_kubernetes_indexed_job_runs_one_shard_per_pod():
    (job,) = [d for d in _documents("kubernetes-job.yaml") if d["kind"] == "Job"]
    assert job["apiVersion"] == "batch/v1"
    _check_pod(job["spec"]["template"], _indexed(job["spec"]), _spec_text())


def test_the_cronjob_runs_the_same_job_and_never_two_at_once():
    (cron,) = _documents("kubernetes-cronjob.yaml")
    assert cron["kind"] == "CronJob" and cron["spec"]["concurrencyPolicy"] == "Forbid"
    job = cron["spec"]["jobTemplate"]["spec"]
    _check_pod(job["template"], _indexed(job), _spec_text())


def test_the_ci_matrix_sets_what_shard_auto_reads():
    (workflow,) = _documents("github-actions-mirror.yml")
    assert "schedule" in workflow.get("on", workflow.get(True))  # YAML 1.1 reads the key `on` as true
    job = workflow["jobs"]["sync"]
    shards = len(job["strategy"]["matrix"]["shard"])
    assert job["strategy"]["fail-fast"] is False
    assert job["env"] == {INDEX_VARIABLE: "${{ matrix.shard }}", COUNT_VARIABLE: "${{ strategy.job-total }}"}
    runs = [step["run"] for step in job["steps"] if "ocisift sync" in step.get("run", "")]
    (line,) = runs
    args = re.sub(r"\$\{\{[^}]*\}\}", "0", line).split()[1:]  # as the runner of shard 0 expands it
    _check_sync_args(args, shards)
    spec = EXAMPLES.parent / args[1]
    check_shardable(parse_spec(spec.read_text(), str(spec)), shards)


def test_the_example_spec_is_valid_for_shards():
    check_shardable(parse_spec((EXAMPLES / "mirror.yaml").read_text(), "mirror.yaml"), 4)
