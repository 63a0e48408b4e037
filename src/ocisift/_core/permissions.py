"""The modes files and directories get: what a user expects under their umask, as skopeo writes them.

Temporary files and staging directories are private while they are filled
(mkstemp and mkdtemp make them 0600 and 0700); what they become is given the
user's modes before it is published.
"""

from __future__ import annotations

import os
import threading

_FALLBACK_LOCK = threading.Lock()


def umask() -> int:
    """The process's umask, read without changing it where the system allows (Linux: /proc/self/status)."""
    try:
        with open("/proc/self/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _FALLBACK_LOCK:  # elsewhere it can only be read by setting it
        current = os.umask(0o022)
        os.umask(current)
    return current


def file_mode() -> int:
    """0644 under umask 022."""
    return 0o666 & ~umask()


def dir_mode() -> int:
    """0755 under umask 022."""
    return 0o777 & ~umask()
