"""Glob and annotation matching shared by manifest selection and layer selection."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence

from .errors import UsageError

AnnotationFilters = tuple[tuple[str, str | None], ...]


def parse_annotation_filters(items: Sequence[str]) -> AnnotationFilters:
    """`k=v` (glob on v) or `k` (present); keys are literal."""
    out: list[tuple[str, str | None]] = []
    for item in items:
        key, sep, value = item.partition("=")
        if not key:
            raise UsageError(f"invalid annotation filter {item!r}: expected KEY or KEY=VALUE")
        out.append((key, value if sep else None))
    return tuple(out)


def annotations_match(filters: Sequence[tuple[str, str | None]], annotations: Mapping[str, str]) -> bool:
    for key, pattern in filters:
        if key not in annotations:
            return False
        if pattern is not None and not fnmatch.fnmatchcase(annotations[key], pattern):
            return False
    return True


def glob_match(pattern: str | None, value: str | None) -> bool:
    if pattern is None:
        return True
    return value is not None and fnmatch.fnmatchcase(value, pattern)
