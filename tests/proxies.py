"""Real forward proxies on free loopback ports: Debian's squid and tinyproxy.

Tests of proxy support need the proxies clients meet in practice, not a stand-in: squid (which
can resolve a registry name only it knows, from its own hosts_file, and tunnels CONNECT to any
port) and tinyproxy (which can demand proxy credentials with BasicAuth). Each runs in the
foreground with a generated config, is waited for with a deadline, and is always stopped.
Each writes an access log the tests read to check that the proxy, not a direct connection,
carried the traffic.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from registry import free_port, stop_process

SQUID_USER = "proxy"  # Debian's squid is built --with-default-user=proxy


@dataclass
class Proxy:
    """A running proxy: where it listens and where it logs."""

    port: int
    access_log: Path  # squid: one line per finished transaction; tinyproxy: its whole log, requests included
    log: Path  # the daemon's own messages (squid's cache.log, tinyproxy's log), for failures
    credentials: tuple[str, str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url_with_credentials(self) -> str:
        """The proxy URL with user:password in it, as HTTPS_PROXY would carry proxy credentials."""
        if self.credentials is None:
            return self.url
        user, password = self.credentials
        return f"http://{user}:{password}@127.0.0.1:{self.port}"

    def access_log_text(self) -> str:
        try:
            return self.access_log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for_log(self, needle: str, timeout: float = 5.0) -> str:
        """The access log once it contains `needle`.

        Squid writes a line only when a transaction ends (for CONNECT, when the tunnel closes),
        so a test that just closed its connection may have to wait a moment for it.
        """
        deadline = time.monotonic() + timeout
        while True:
            text = self.access_log_text()
            if needle in text:
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} not in the proxy's access log within {timeout}s:\n{text[-4000:]}")
            time.sleep(0.05)


def _tail(path: Path, size: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-size:]
    except FileNotFoundError:
        return f"({path} was not written)"


def _forwards(port: int, headers: dict[str, str] | None = None) -> http.client.HTTPResponse | None:
    """The proxy's answer to a forward request for a closed loopback port, or None while it is not up.

    A closed port makes the proxy answer itself (squid 503, tinyproxy 500), so this checks that it
    accepts connections and handles proxy requests without needing any server behind it.
    """
    closed = free_port()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", f"http://127.0.0.1:{closed}/", headers=headers or {})
        response = conn.getresponse()
        response.read()
        return response
    except OSError:
        return None
    finally:
        conn.close()


def _wait_ready(proc: subprocess.Popen[bytes], name: str, port: int, timeout: float, logs: tuple[Path, ...],
                ready: Callable[[http.client.HTTPResponse], bool], headers: dict[str, str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited early (status {proc.returncode}):\n"
                               + "\n".join(_tail(log) for log in logs))
        response = _forwards(port, headers)
        if response is not None and ready(response):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not start within {timeout}s:\n" + "\n".join(_tail(log) for log in logs))
        time.sleep(0.1)


@contextlib.contextmanager
def run_squid(workdir: Path, hosts: dict[str, str] | None = None, timeout: float = 20.0) -> Iterator[Proxy]:
    """Squid on 127.0.0.1, memory only, allowing everything from localhost, CONNECT to any port.

    hosts: names squid resolves from its own hosts_file ({"registry.internal": "127.0.0.1"}), so a
    test can address a registry by a name only the proxy knows. Other names go to a DNS server on
    127.0.0.1 that is not there and fail after dns_timeout; nothing here needs the network.

    Started as root, squid drops to the `proxy` user (it refuses to serve as root), which cannot
    reach a pytest tmp_path under /tmp/pytest-of-root (mode 0700). Then squid's folder is a
    private one of its own under the system temp folder, owned by `proxy`, and its logs are
    copied into workdir when it stops; as any other user it runs in workdir/squid.
    """
    binary = shutil.which("squid") or ("/usr/sbin/squid" if Path("/usr/sbin/squid").exists() else None)
    if binary is None:
        raise RuntimeError("squid is not installed")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    # The service name namespaces squid's shared memory segments (/dev/shm/<name>-cf__*.shm), which
    # otherwise collide with any other squid on the machine, or one killed before it removed them.
    service = f"ocisift{os.getpid()}p{port}"
    as_root = os.geteuid() == 0
    if as_root:
        try:
            account = pwd.getpwnam(SQUID_USER)
        except KeyError:
            raise RuntimeError(f"squid started as root switches to the {SQUID_USER!r} user, which is missing") from None
        folder = Path(tempfile.mkdtemp(prefix="ocisift-squid-"))
    else:
        folder = workdir / "squid"
        folder.mkdir(parents=True, exist_ok=True)
    access_log, cache_log = folder / "access.log", folder / "cache.log"
    stderr = workdir / "squid.stderr"
    proxy = Proxy(port, access_log, cache_log)
    proc: subprocess.Popen[bytes] | None = None
    try:
        if as_root:
            os.chown(folder, account.pw_uid, account.pw_gid)
        hosts_file = folder / "hosts"
        hosts_file.write_text("".join(f"{address} {name}\n" for name, address in (hosts or {}).items()))
        config = folder / "squid.conf"
        config.write_text(_squid_config(port, folder, hosts_file, effective_user=SQUID_USER if as_root else None))
        for name in (hosts_file, config):
            name.chmod(0o644)  # squid reads them; as root, partly as the proxy user
        with open(stderr, "wb") as out:
            proc = subprocess.Popen([binary, "-N", "-d", "1", "-n", service, "-f", str(config)], cwd=folder,
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        _wait_ready(proc, "squid", port, timeout, (cache_log, stderr),
                    lambda response: response.headers.get("X-Squid-Error") is not None)
        yield proxy
    finally:
        if proc is not None:
            stop_process(proc)
        for segment in Path("/dev/shm").glob(f"{service}-*"):  # left behind only if squid was killed
            with contextlib.suppress(OSError):
                segment.unlink()
        if as_root:
            for kept in (access_log, cache_log, folder / "squid.conf"):
                if kept.exists():
                    shutil.copyfile(kept, workdir / f"squid-{kept.name}")
            proxy.access_log, proxy.log = workdir / "squid-access.log", workdir / "squid-cache.log"
            shutil.rmtree(folder, ignore_errors=True)


def _squid_config(port: int, folder: Path, hosts_file: Path, effective_user: str | None) -> str:
    """A minimal squid.conf: everything under `folder`, memory only, nothing cached, quick to stop."""
    return f"""# generated by tests/proxies.py
http_port 127.0.0.1:{port}
{f"cache_effective_user {effective_user}" if effective_user else "# not root: squid stays this user"}
pid_filename {folder / 'squid.pid'}
cache_log {folder / 'cache.log'}
access_log stdio:{folder / 'access.log'} squid
logfile_rotate 0
cache_store_log none
coredump_dir {folder}
netdb_filename none
pinger_enable off
# no cache_dir: memory only; and nothing is cached, so every request reaches the server
cache deny all
cache_mem 8 MB
# names come from hosts_file; the "nameserver" on 127.0.0.1 is not there, so other names fail in ~3 s
hosts_file {hosts_file}
dns_nameservers 127.0.0.1
dns_timeout 2 seconds
dns_retransmit_interval 1 seconds
# no SSL_ports/Safe_ports rules: CONNECT goes to any port, as tests use random high ones
http_access allow localhost
http_access deny all
# stop at once on SIGTERM instead of waiting 30 s for clients
shutdown_lifetime 0 seconds
"""


@contextlib.contextmanager
def run_tinyproxy(workdir: Path, basic_auth: tuple[str, str] | None = None, timeout: float = 20.0,
                  upstream: str | None = None) -> Iterator[Proxy]:
    """Tinyproxy on 127.0.0.1, for localhost only, CONNECT to any port; `upstream` (HOST:PORT), an HTTP proxy
    it forwards everything to (tinyproxy.conf(5) `Upstream http`), as a company proxy chain does.

    basic_auth: (user, password) it demands as proxy credentials (407 without them). It has no
    User line, so it stays the user it was started as and can write its log into workdir; no
    ConnectPort line means CONNECT may go to every port (tinyproxy.conf(5)).
    """
    binary = shutil.which("tinyproxy") or ("/usr/bin/tinyproxy" if Path("/usr/bin/tinyproxy").exists() else None)
    if binary is None:
        raise RuntimeError("tinyproxy is not installed")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = workdir / "tinyproxy.log"
    config = workdir / "tinyproxy.conf"
    auth_line = ""
    headers: dict[str, str] = {}
    if basic_auth is not None:
        user, password = basic_auth
        if any(c.isspace() or c == '"' for c in user + password):
            raise ValueError("tinyproxy's BasicAuth takes a user and password without spaces or quotes")
        auth_line = f"BasicAuth {user} {password}"
        headers["Proxy-Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    config.write_text(f"""# generated by tests/proxies.py
Port {port}
Listen 127.0.0.1
Timeout 30
LogFile "{log}"
LogLevel Info
MaxClients 64
Allow 127.0.0.1
DisableViaHeader Yes
{auth_line}
{f"Upstream http {upstream}" if upstream else ""}
""")
    stderr = workdir / "tinyproxy.stderr"
    with open(stderr, "wb") as out:
        proc = subprocess.Popen([binary, "-d", "-c", str(config)], cwd=workdir,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    try:
        # Up means it answers a proxy request itself: 500 "Unable to connect" to the closed port
        # (with the credentials; without them it would be 407, which tests check on their own).
        # Through an upstream, the upstream's own refusal comes back instead (squid: 502 or 503).
        _wait_ready(proc, "tinyproxy", port, timeout, (log, stderr),
                    lambda response: response.status == 500 or (upstream is not None and response.status != 407),
                    headers)
        yield Proxy(port, log, log, basic_auth)
    finally:
        stop_process(proc)
