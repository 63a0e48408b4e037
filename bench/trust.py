#!/usr/bin/env python3
"""What verification costs: a pull with and without it, and a sync of signed images with and without it.

    python bench/trust.py [--images 200] [--rounds 3] [--pull-rounds 10] [--json out.json]

A source registry (CNCF distribution on loopback, plain HTTP) gets bench/mirror.py's images (an index of two
platforms and a referrer each), every index then signed by `ocisift sign --key` in cosign's legacy form (the
`sha256-<hex>.sig` tag), as a pipeline signs what it pushed.

- pull: `ocisift pull REPO:TAG --platform linux/amd64 -o DIR` against the same with `--verify-key cosign.pub`,
  in turns, each run's requests counted from the registry's access log (goal: at most 2 more requests), and
  the wall time difference of the medians (goal: at most 20 ms). The same difference is also measured in one
  process (the API, 50 pulls each way in turns), where the start-up cost of loading the key code is paid once.
- sync: `ocisift sync` of every image (referrers: true) into an empty registry with a `verify:` block against
  the same spec without one (goal: at most 1.2 times its time), in turns, each run into a fresh registry.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

import mirror  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402

import ocisift  # noqa: E402
from ocisift import Selector, VerifySpec  # noqa: E402
from ocisift._trust.cosignkey import encrypt_private_key  # noqa: E402
from ocisift._trust.keys import public_pem  # noqa: E402
from registry import run_registry  # noqa: E402

PULL_PLAIN = "pull, no verification: ocisift"
PULL_VERIFIED = "pull with --verify-key: ocisift"
SYNC_PLAIN = "sync {n} signed images, no verification: ocisift"
SYNC_VERIFIED = "sync {n} signed images, verify: keys: ocisift"
PULL_MS_GOAL, PULL_REQUESTS_GOAL, SYNC_GOAL = 20.0, 2, 1.2


def keys(work: Path) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    (work / "cosign.key").write_bytes(encrypt_private_key(key, b"bench"))
    (work / "cosign.pub").write_bytes(public_pem(key.public_key()))
    return str(work / "cosign.key"), str(work / "cosign.pub")


def sign_all(host: str, images: int, key: str) -> None:
    os.environ["COSIGN_PASSWORD"] = "bench"
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda n: ocisift.sign(f"{host}/bench/app{n:03d}:{mirror.TAG}", key), range(images)))


def spec(work: Path, source: str, destination: str, images: int, public: str | None) -> Path:
    defaults: dict[str, Any] = {"referrers": True}
    if public is not None:
        defaults["verify"] = {"provider": "cosign", "keys": [public]}
    body = {"defaults": defaults, "images": [
        {"source": f"{source}/bench/app{n:03d}", "tags": [mirror.TAG],
         "destination": f"{destination}/mirror/app{n:03d}"} for n in range(images)]}
    path = work / f"sync-{'verified' if public else 'plain'}-{destination.rsplit(':', 1)[1]}.yaml"
    path.write_text(json.dumps(body, indent=1))
    return path


def measure(work: Path, rounds: int = 3, images: int = 200, pull_rounds: int = 30,
            in_flight: int = 16) -> dict[str, Any]:
    sync_plain, sync_verified = SYNC_PLAIN.format(n=images), SYNC_VERIFIED.format(n=images)
    results: dict[str, list[mirror.Timing]] = {PULL_PLAIN: [], PULL_VERIFIED: [], sync_plain: [], sync_verified: []}
    requests: dict[str, dict[str, int]] = {}
    private, public = keys(work)
    with run_registry(work / "source") as source:
        print(f"pushing and signing {images} images ...", file=sys.stderr)
        started = time.perf_counter()
        mirror.push_images(work, source, images)
        sign_all(source.host, images, private)
        print(f"  in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        ref = f"{source.host}/bench/app000:{mirror.TAG}"
        base = [*mirror.OCISIFT, "pull", ref, "--platform", "linux/amd64", "--format", "json", "-o"]
        jobs = [(PULL_PLAIN, []), (PULL_VERIFIED, ["--verify-key", public])]
        for n in range(pull_rounds + 1):  # the first round warms the page cache, uncounted
            for name, extra in jobs[n % 2:] + jobs[: n % 2]:
                out = work / "pulled"
                shutil.rmtree(out, ignore_errors=True)
                start = mirror.log_size(source)
                timing = mirror.run([*base, str(out), *extra])
                marker = f"bench-trust-{n}-{'v' if extra else 'p'}"
                seen = mirror.requests_between(source, start, marker)
                requests[name] = dict(sorted(seen.items()))
                if n:
                    results[name].append(timing)
        in_process = _in_process(ref, public, 50)
        for n in range(rounds):
            order = [(sync_plain, None), (sync_verified, public)]
            for name, key in order[n % 2:] + order[: n % 2]:
                with run_registry(work / f"dst-{n}-{bool(key)}") as destination:
                    path = spec(work, source.host, destination.host, images, key)
                    timing = mirror.run([*mirror.OCISIFT, "sync", str(path), "--images", str(in_flight),
                                         "--format", "json"])
                    mirror.check_sync(timing.stdout, images, copied=images)
                    if key is not None:
                        verified = json.loads(timing.stdout)["images"][0]["verified"]
                        if not verified:
                            raise SystemExit("the verified sync reports no verification")
                    results[name].append(timing)
                shutil.rmtree(work / f"dst-{n}-{bool(key)}", ignore_errors=True)
    rows = {name: mirror.summarize(ts) for name, ts in results.items()}

    def median(name: str) -> float:
        return statistics.median([t.wall for t in results[name]])

    pull_delta_ms = round((median(PULL_VERIFIED) - median(PULL_PLAIN)) * 1000, 1)
    # The two pulls of a round run back to back: their difference does not carry the machine's drift
    # across the run (a VM's neighbours), which the difference of the two medians does.
    paired = [v.wall - p.wall for p, v in zip(results[PULL_PLAIN], results[PULL_VERIFIED], strict=True)]
    pull_paired_ms = round(statistics.median(paired) * 1000, 1)
    extra_requests = sum(requests[PULL_VERIFIED].values()) - sum(requests[PULL_PLAIN].values())
    sync_ratio = round(median(sync_verified) / median(sync_plain), 3)
    best_sync = round(min(t.wall for t in results[sync_verified]) / min(t.wall for t in results[sync_plain]), 3)
    return {"images": images, "rounds": rounds, "pull_rounds": pull_rounds, "cpus": os.cpu_count(),
            "load_average": round(os.getloadavg()[0], 2), "results": rows,
            "pull_requests": requests, "pull_extra_requests": extra_requests, "pull_extra_ms": pull_delta_ms,
            "pull_extra_ms_paired": pull_paired_ms,
            "pull_extra_ms_in_process": in_process, "sync_ratio": sync_ratio, "sync_best_ratio": best_sync,
            "goals": {"pull_extra_requests": PULL_REQUESTS_GOAL, "pull_extra_ms": PULL_MS_GOAL,
                      "sync_ratio": SYNC_GOAL}}


def _in_process(ref: str, public: str, count: int) -> float:
    """Median extra milliseconds of a verified pull over a plain one, in one process (imports paid once)."""
    trust = VerifySpec(keys=(public,))
    select = Selector.build("linux/amd64")
    times: dict[bool, list[float]] = {False: [], True: []}
    with tempfile.TemporaryDirectory(prefix="ocisift-bench-trust-") as tmp:
        for n in range(count + 2):
            for verified in (n % 2 == 0, n % 2 == 1):
                out = Path(tmp) / f"out-{n}-{verified}"
                started = time.perf_counter()
                ocisift.pull(ref, str(out), select, trust=trust if verified else None)
                if n >= 2:
                    times[verified].append(time.perf_counter() - started)
                shutil.rmtree(out)
    return round((statistics.median(times[True]) - statistics.median(times[False])) * 1000, 1)


def print_table(report: dict[str, Any]) -> None:
    print(f"\ntrust: a pull of one signed image ({report['pull_rounds']} rounds each way), and a sync of"
          f" {report['images']} signed images ({report['rounds']} rounds each way), medians;"
          f" {report['cpus']} CPUs, load average {report['load_average']:g}\n")
    mirror.print_rows(report["results"])
    goals = report["goals"]
    print(f"\nverified pull, extra requests: {report['pull_extra_requests']} (goal at most {goals['pull_extra_requests']});"
          f" by kind: {report['pull_requests'][PULL_VERIFIED]} against {report['pull_requests'][PULL_PLAIN]}")
    print(f"verified pull, extra time: {report['pull_extra_ms']:g} ms per process (difference of the medians;"
          f" {report['pull_extra_ms_paired']:g} ms, median of each round's difference), "
          f"{report['pull_extra_ms_in_process']:g} ms per image in one process (goal at most {goals['pull_extra_ms']:g})")
    print(f"verified sync / plain sync: {report['sync_ratio']} (medians), {report['sync_best_ratio']} (best runs);"
          f" goal at most {goals['sync_ratio']:g}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pull-rounds", type=int, default=30)
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args()
    compileall.compile_dir(os.path.dirname(ocisift.__file__), quiet=1)
    with tempfile.TemporaryDirectory(prefix="ocisift-trust-") as tmp:
        report = measure(Path(tmp), args.rounds, images=args.images, pull_rounds=args.pull_rounds)
    print_table(report)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
