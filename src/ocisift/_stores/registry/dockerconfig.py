"""Docker's config.json: found, read within bounds, and rewritten without losing what ocisift does not own.

Reading. `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. A file
that is not there means no credentials. Anything else that cannot be read
whole as one JSON object is an AuthError (exit 6) naming the file: a
directory, a FIFO or device (opened without blocking, and refused before
anything is read from it), a file that cannot be opened, one over
MAX_CONFIG_BYTES, text that is not UTF-8 or not JSON. An empty file and
`null` are an empty config, as Docker reads them. Within the object, only
what a lookup for one registry reads is checked (see credentials.py); keys
for other tools and other registries' entries are not looked at.

Writing (login, logout). Under a lock on the file's directory, the file is
read again, changed, written to a temporary file beside it (mode 0600,
fsynced, the owner kept when root writes another user's file) and renamed
over it; a symlinked config.json is written where it points, as Docker does.
Every key and entry the change does not touch keeps its value. A file that
cannot be read whole, or that holds NaN or Infinity (which JSON cannot write
back), is never rewritten: the change is refused and the file stays as it was.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import math
import os
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

from ..._core import cancel, jsontext
from ..._core.errors import AuthError
from ..._core.options import json_kind

MAX_CONFIG_BYTES = 4 << 20  # a config.json of a thousand registries is a few hundred KiB
LOCK_WAIT = 10.0  # seconds a login waits for another one writing the same directory


class ConfigError(AuthError):
    """Docker's config.json cannot be used: what is wrong, and which file (exit 6)."""


def docker_config_path() -> str:
    base = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    return os.path.join(base, "config.json")


def quoted(key: str) -> str:
    """A key from the file, for a message: JSON-quoted (control characters escaped), shortened."""
    text = json.dumps(key)
    return text if len(text) <= 80 else text[:76] + '…"'


def read_config(path: str) -> dict[str, Any] | None:
    """The parsed object, or None when there is no file; ConfigError for anything else that is wrong."""
    raw = _read_bounded(path)
    return None if raw is None else _parse(raw, path)


def _read_bounded(path: str, shown: str | None = None) -> bytes | None:
    """The file's bytes (None if there is none); messages name it as `shown` (the user's own path)."""
    target, path = path, shown or path
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused below, unread).
        fd = os.open(target, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise ConfigError(f"{path} is a directory, not Docker's config file")
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{path} is not a regular file (a FIFO, socket or device); not reading it")
        if info.st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path} is {info.st_size:,} bytes, over the {MAX_CONFIG_BYTES >> 20} MiB "
                              "ocisift reads of a config file")
        chunks: list[bytes] = []
        total = 0
        while chunk := os.read(fd, 1 << 20):
            total += len(chunk)
            if total > MAX_CONFIG_BYTES:  # it grew while being read
                raise ConfigError(f"{path} is over the {MAX_CONFIG_BYTES >> 20} MiB ocisift reads of a config file")
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def _parse(raw: bytes, path: str) -> dict[str, Any]:
    """The object; an empty file and `null` are an empty config (Docker reads both so)."""
    try:
        text = raw.decode("utf-8-sig")  # strictly UTF-8 (a byte-order mark, as editors on Windows write, is let be)
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text") from None
    if not text.strip():
        return {}
    try:
        config = jsontext.loads(text)
    except jsontext.TooManyValues as exc:
        raise ConfigError(f"{path} {exc}") from None
    except ValueError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from None
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise ConfigError(f"{path} holds {json_kind(config)}, where Docker's config file is a JSON object")
    return config


def section(config: dict[str, Any], key: str, path: str) -> dict[str, Any]:
    """`auths` or `credHelpers`: an object; absent or null is an empty one (as Docker reads null)."""
    value = config.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: {key} is {json_kind(value)}, where Docker's config has an object")
    return value


def text_field(value: object, where: str, path: str) -> str | None:
    """A string field: absent, null or empty is None (Docker's zero value); any other type is an error."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{path}: {where} is {json_kind(value)}, where Docker's config has a string")
    if not is_text(value):
        raise ConfigError(f"{path}: {where} holds a lone surrogate escape (\\ud800-\\udfff), which is no text")
    return value


def is_text(value: str) -> bool:
    """Whether a string parsed from JSON is text: a `\\udc80` escape alone parses into a lone surrogate,
    which Docker reads as U+FFFD and which has no bytes of its own."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# -- writing -------------------------------------------------------------------------------------------------


def update_config(path: str, change: Callable[[dict[str, Any]], None], *, create: bool) -> str:
    """Read config.json again under the directory's lock, apply `change`, replace the file atomically.

    `change` raises to refuse (nothing is written then). With `create`, a missing file (and its
    directory, mode 0700) is started empty; without, a missing file is handed to `change` as {}, and
    written only if `change` returns normally. Returns `path`.
    """
    target = os.path.realpath(path)  # a symlinked config.json (dotfiles) stays a symlink
    directory = os.path.dirname(target) or "."
    if create:
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create {directory} for {path}: {exc.strerror or exc}") from None
    elif not os.path.isdir(directory):
        change({})  # nothing to read: the change decides (logout says "not logged in")
        return path
    with _directory_locked(directory, path):
        existing = _stat(target)
        config = _read_for_rewrite(target, path)
        change(config)
        _replace(target, config, existing)
    return path


def check_rewritable(path: str) -> None:
    """Fail now, before anything is sent anywhere, if login could not rewrite this file afterwards."""
    _read_for_rewrite(os.path.realpath(path), path)


def _read_for_rewrite(target: str, path: str) -> dict[str, Any]:
    """The config to change, or ConfigError (saying the file stays as it is) if it cannot be written back
    with nothing lost."""
    try:
        shown = path if os.path.abspath(path) == target else f"{path} (a link to {target})"
        raw = _read_bounded(target, shown)
        config = {} if raw is None else _parse(raw, path)
        if _has_non_finite(config):
            raise ConfigError(f"{path} holds NaN or Infinity, which is not JSON and cannot be written back")
        auths = config.get("auths")
        if auths is not None and not isinstance(auths, dict):
            raise ConfigError(f"{path}: auths is {json_kind(auths)}, where Docker's config has an object")
    except ConfigError as exc:
        raise ConfigError(exc.message + "; ocisift does not rewrite a config file it cannot read whole "
                          "(it stays as it is)") from None
    return config


def _has_non_finite(value: Any) -> bool:
    """Whether any number in the parsed tree is NaN or infinite (Python's parser takes NaN, Infinity and
    1e999, Docker's does not, and json.dump would write them back as non-JSON)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return True
        if isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def _stat(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


def _replace(target: str, config: dict[str, Any], existing: os.stat_result | None) -> None:
    data = (json.dumps(config, indent="\t") + "\n").encode()  # Docker's own layout; ASCII, escapes kept
    directory = os.path.dirname(target) or "."
    try:
        fd, tmp = tempfile.mkstemp(prefix=".config.json.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise ConfigError(f"cannot write beside {target}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), 0o600)
            if existing is not None and os.geteuid() == 0 and (existing.st_uid, existing.st_gid) != (0, 0):
                os.fchown(out.fileno(), existing.st_uid, existing.st_gid)  # sudo ocisift login keeps it the user's
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        with cancel.shielded():  # the rename is the change: whole or not at all
            os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise ConfigError(f"cannot write {target}: {exc.strerror or exc}") from None
        raise
    with contextlib.suppress(OSError):  # the rename itself reaches the disk
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


@contextlib.contextmanager
def _directory_locked(directory: str, path: str) -> Iterator[None]:
    """flock on the directory itself: two logins at once each keep the other's entry, and no lock file
    is left in ~/.docker. Waits at most LOCK_WAIT seconds for another writer."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise ConfigError(f"cannot open {directory} to write {path}: {exc.strerror or exc}") from None
    try:
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    break  # a file system without flock: write unlocked, as Docker always does
                if time.monotonic() > deadline:
                    raise ConfigError(f"another process has been writing {path} for {LOCK_WAIT:g} s; "
                                      "try again") from None
                cancel.sleep(0.02)
        yield
    finally:
        os.close(fd)  # closing releases the lock
