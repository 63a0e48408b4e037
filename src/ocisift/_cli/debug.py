"""`--debug`: the `ocisift.http` trace, shown on stderr for one command.

The trace's secrets are redacted where it is made (the registry transport);
here it is only shown, with what a hostile server put in a header escaped
like every other text from outside.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from .text import printable_lines

LOGGER_NAME = "ocisift.http"


class _StderrTrace(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.started = time.monotonic()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = printable_lines(record.getMessage())
            sys.stderr.write(f"debug +{time.monotonic() - self.started:.3f}s {line}\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass  # stderr gone: the trace is a help, never a reason to fail


@contextmanager
def http_trace() -> Iterator[None]:
    logger = logging.getLogger(LOGGER_NAME)
    handler = _StderrTrace()
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
