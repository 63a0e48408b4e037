"""Hostile inputs, run through the CLI in a child process so that every bound is measured, not hoped for.

A hang is a kill after `timeout` seconds (and a failure: "hung"), memory is the child's peak RSS, disk is
the peak growth of what is allocated below the output's parent while it ran (sampled), and a file that
grows past FILE_LIMIT kills the child
(RLIMIT_FSIZE, default SIGXFSZ) instead of filling the disk. Every case then checks the same promises:
the documented exit code, within TIME_LIMIT and RSS_LIMIT_MIB, nothing written outside the output
directory (a sentinel directory beside it, and everything else under tmp_path, is unchanged), and no
staging directory left behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ocisift._unpack.staging import remove_tree_quietly

TIME_LIMIT = 30.0
RSS_LIMIT_MIB = 200.0
DISK_LIMIT_MIB = 256.0  # peak growth below the output's parent; the largest case here allocates ~80 MiB
FILE_LIMIT = 256 << 20  # RLIMIT_FSIZE of the child: no hostile case may grow one file past this

# The child: the real entry point, its peak RSS on the last line of stderr whatever happens.
_CHILD = """
import resource, signal, sys
limit = int(sys.argv[1])
if limit:
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)  # Python ignores it; a file past the limit is a kill
argv = sys.argv[2:]
code = 70
try:
    import ocisift._cli.main
    code = ocisift._cli.main.run(argv)
finally:
    sys.stdout.flush()
    sys.stderr.write("\\nRSS-KIB=%d\\n" % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    sys.stderr.flush()
sys.exit(code)
"""


@dataclass
class Bounded:
    """One child run: what it said and what it cost."""

    args: list[str]
    code: int
    out: str
    err: str
    rss_mib: float
    seconds: float
    disk_mib: float = 0.0

    def json(self) -> dict:
        return json.loads(self.out)

    @property
    def message(self) -> str:
        """The error message, from --format json output (or stderr when there is none)."""
        try:
            return str(self.json()["error"]["message"])
        except (ValueError, KeyError, TypeError):
            return self.err

    def describe(self) -> str:
        return (f"exit {self.code} in {self.seconds:.2f}s, peak RSS {self.rss_mib:.1f} MiB, disk +{self.disk_mib:.1f} MiB"
                f"\nstdout: {self.out[-2000:]}\nstderr: {self.err[-2000:]}")


def allocated(path: str) -> int:
    """Bytes allocated below `path` (st_blocks: holes do not count, written zeros do), read while a child may
    be creating and removing entries: what vanishes meanwhile is skipped."""
    total = 0
    pending = [path]
    while pending:
        try:
            with os.scandir(pending.pop()) as it:
                for e in it:
                    try:
                        total += e.stat(follow_symlinks=False).st_blocks * 512
                        if e.is_dir(follow_symlinks=False):
                            pending.append(e.path)
                    except OSError:
                        pass
        except OSError:
            pass
    return total


def run_bounded(args: list[str], *, timeout: float = TIME_LIMIT, file_limit: int = FILE_LIMIT,
                watch: str | None = None, stdin: str | None = None) -> Bounded:
    """Run `ocisift ARGS` in a child; kill it (and fail: "hung") after `timeout` seconds.

    `stdin`: a file the child reads as standard input (/dev/zero, a FIFO); else it inherits pytest's.

    `watch` is a directory whose peak growth (bytes allocated below it) is sampled while the child runs,
    as often as walking it allows (a fifth of the time at most).
    """
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[2] / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    env.pop("OCISIFT_DEBUG", None)  # an internal error must show as one, not as a traceback
    base = allocated(watch) if watch else 0
    peak = [0]
    done = threading.Event()

    def poll() -> None:
        assert watch is not None
        pause = 0.01
        while not done.wait(pause):
            began = time.monotonic()
            peak[0] = max(peak[0], allocated(watch) - base)
            pause = max(0.01, 4 * (time.monotonic() - began))

    poller = threading.Thread(target=poll, daemon=True) if watch else None
    started = time.monotonic()
    # Through a shell that forks it: Linux carries ru_maxrss across execve, so a child exec'd straight from
    # pytest would report pytest's own peak (hundreds of MiB late in a run) as its own.
    child = [sys.executable, "-c", _CHILD, str(file_limit), *args]
    source = open(stdin, "rb") if stdin is not None else None  # noqa: SIM115 - closed below, however it ends
    try:
        proc = subprocess.Popen(["/bin/sh", "-c", '"$@"; exit $?', "sh", *child], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env, start_new_session=True, stdin=source)
    finally:
        if source is not None:
            source.close()
    if poller is not None:
        poller.start()
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # its own session: the child and nothing else
        out, err = proc.communicate()
        pytest.fail(f"hung: ocisift {' '.join(args)} still running after {timeout:g}s\nstderr: {err[-2000:]}")
    finally:
        done.set()
        if poller is not None:
            poller.join()
    seconds = time.monotonic() - started
    if watch:
        peak[0] = max(peak[0], allocated(watch) - base)
    head, sep, tail = err.rpartition("RSS-KIB=")
    if not sep:
        code = proc.returncode
        if code > 128:  # the shell's report of a signal
            name = signal.Signals(code - 128).name
            why = f" (a file grew past {file_limit} bytes)" if name == "SIGXFSZ" else ""
            pytest.fail(f"killed by {name}{why}: ocisift {' '.join(args)}\nstderr: {err[-2000:]}")
        pytest.fail(f"the child died without reporting its RSS (exit {code}): {err[-2000:]}")
    rss_kib = int(tail.split()[0])
    return Bounded(args, proc.returncode, out, head.rstrip("\n"), rss_kib / 1024, seconds, max(peak[0], 0) / (1 << 20))


def _tree_state(root: Path, skip: Path) -> dict[str, tuple]:
    """Everything below `root` but `skip`: kind, size, mtime, content digest, link target (a loop, not
    recursion: a test may build deep trees)."""
    state: dict[str, tuple] = {}
    pending = [root]
    while pending:
        current = pending.pop()
        with os.scandir(current) as it:
            for e in it:
                path = Path(e.path)
                if path == skip:
                    continue
                st = e.stat(follow_symlinks=False)
                rel = str(path.relative_to(root))
                if e.is_symlink():
                    state[rel] = ("link", os.readlink(path))
                elif e.is_dir(follow_symlinks=False):
                    state[rel] = ("dir", st.st_mode)
                    pending.append(path)
                else:
                    with open(path, "rb") as fh:
                        digest = hashlib.file_digest(fh, "sha256").hexdigest()
                    state[rel] = ("file", st.st_size, st.st_mtime_ns, st.st_mode, digest)
    return state


def staging_left(parent: Path) -> list[str]:
    """`.ocisift-staging-*` anywhere below `parent`."""
    found: list[str] = []
    pending = [str(parent)]
    while pending:
        with os.scandir(pending.pop()) as it:
            for e in it:
                if e.name.startswith(".ocisift-staging-"):
                    found.append(e.path)
                if e.is_dir(follow_symlinks=False):
                    pending.append(e.path)
    return found


@dataclass
class Arena:
    """An output directory that does not exist yet, a sentinel directory beside it, and a picture of
    everything under tmp_path but the output, taken before the run."""

    tmp: Path
    parent: Path
    out: Path
    sentinel: Path
    before: dict[str, tuple] = field(default_factory=dict)
    log: Callable[[str, Bounded], None] | None = None

    def snapshot(self) -> None:
        """Take the picture again (after a test prepared more, such as a layout or an existing output)."""
        self.before = _tree_state(self.tmp, self.out)

    def allocated(self) -> int:
        """Bytes allocated below the output's parent now (the sentinel, and the output if there is one)."""
        return allocated(str(self.parent))

    def run(self, args: list[str], **kw: object) -> Bounded:
        self.snapshot()
        result = run_bounded(args, watch=str(self.parent), **kw)  # type: ignore[arg-type]
        if self.log is not None:
            self.log(" ".join(args[:2]), result)
        return result

    def pull(self, ref: str, mode: str = "extract", *extra: str, out: Path | None = None, **kw: object) -> Bounded:
        return self.run(["pull", ref, "--mode", mode, "-o", str(out or self.out), "--format", "json", *extra], **kw)

    def check(self, result: Bounded, code: int) -> Bounded:
        """The promises every hostile case keeps."""
        assert result.code == code, result.describe()
        assert "internal error" not in result.out + result.err, result.describe()
        assert result.seconds <= TIME_LIMIT, result.describe()
        assert result.rss_mib <= RSS_LIMIT_MIB, result.describe()
        assert result.disk_mib <= DISK_LIMIT_MIB, result.describe()
        self.check_untouched()
        return result

    def check_untouched(self) -> None:
        """Nothing outside the output changed since the last snapshot, and no staging is left."""
        after = _tree_state(self.tmp, self.out)
        changed = sorted(k for k in set(self.before) | set(after) if self.before.get(k) != after.get(k))
        assert changed == [], f"written outside the output directory: {changed[:20]}"
        assert staging_left(self.parent) == []


@pytest.fixture
def arena(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Arena]:
    parent = tmp_path / "arena"
    sentinel = parent / "sentinel"
    (sentinel / "sub").mkdir(parents=True)
    (sentinel / "keep.txt").write_bytes(b"the user's file\n")
    (sentinel / "sub" / "deeper.bin").write_bytes(os.urandom(1024))
    os.symlink("keep.txt", sentinel / "link")

    def log(what: str, result: Bounded) -> None:
        """Measurements, to stdout (pytest -rP shows them) and to $OCISIFT_HOSTILE_LOG when set."""
        line = {"test": request.node.nodeid, "what": what, "code": result.code, "seconds": round(result.seconds, 3),
                "rss_mib": round(result.rss_mib, 1), "disk_mib": round(result.disk_mib, 1)}
        print("HOSTILE", json.dumps(line))
        path = os.environ.get("OCISIFT_HOSTILE_LOG")
        if path:
            with open(path, "a") as fh:
                fh.write(json.dumps(line) + "\n")

    yield Arena(tmp_path, parent, parent / "out", sentinel, log=log)
    # pytest's clean-up of old tmp_path directories is shutil.rmtree, whose recursion a 1,100-deep tree
    # defeats (RecursionError at exit, and the tree stays); ocisift's own removal is a loop.
    remove_tree_quietly(str(parent))


@pytest.fixture
def bounded() -> Callable[..., Bounded]:
    """run_bounded, for test modules: they cannot import it (see pytest_collectstart)."""
    return run_bounded


def pytest_collectstart(collector: pytest.Collector) -> None:
    """Give `conftest` back to tests/conftest.py.

    Neither tests/ nor tests/hostile/ is a package, so pytest imports both conftest files as the module
    `conftest`, dropping the first from sys.modules when it loads this one; every later `from conftest
    import artifact` (here and in tests/*.py, collected after this directory) would then find this file.
    This hook runs as soon as this directory starts being collected, before any test module is imported.
    """
    root = Path(__file__).resolve().parent.parent / "conftest.py"
    if getattr(sys.modules.get("conftest"), "__file__", None) == str(root):
        return
    for plugin in collector.config.pluginmanager.get_plugins():
        if getattr(plugin, "__file__", None) == str(root):
            sys.modules["conftest"] = plugin
            return
