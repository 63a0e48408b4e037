"""Tag patterns in Go's regular expression language, matched in linear time.

Flux's `semverFilter` is a Go regexp, and Go's regexp is RE2: so is this, through
Google's RE2 binding. A pattern comes from a user or a spec, but the tags it
meets come from a registry; Python's backtracking `re` can spend hours on one
tag with a pattern like `^(\\d+\\.?)+$`, RE2 never more than linear time.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from .errors import UsageError


@cache
def _re2() -> tuple[Any, Any]:
    """RE2 and its options, imported when a pattern is first compiled (a pull without one pays nothing)."""
    import re2  # type: ignore[import-untyped]

    options = re2.Options()
    options.log_errors = False  # RE2 would print its own copy of the error on standard error
    return re2, options


class TagPattern:
    """A compiled pattern; `found(tag)` is Go's MatchString: a match anywhere in the tag."""

    def __init__(self, pattern: str) -> None:
        re2, options = _re2()
        try:
            self._compiled: Any = re2.compile(pattern, options)
        except re2.error as exc:
            why = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
            raise UsageError(f"tag regex {pattern!r} is not a valid regular expression: {why}") from None
        except (TypeError, ValueError) as exc:
            raise UsageError(f"tag regex {pattern!r} is not a valid regular expression: {exc}") from None
        self.pattern = pattern

    def found(self, tag: str) -> bool:
        return self._compiled.search(tag) is not None
