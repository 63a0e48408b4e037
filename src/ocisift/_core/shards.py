"""Shards: one sync spec run on N machines at once, each taking a stable share of the (image, tag) work.

No coordination is needed: every shard lists the same tags and keeps those
whose key (the source repository and the tag) it wins by rendezvous hashing,
where each shard scores a key by a hash of the key and the shard's number and
the highest score takes it. Every key goes to exactly one shard; adding images
moves no other key, and changing N moves only the keys the new shards win (a
fraction 1/N of them), not nearly all of them as a hash modulo N would.

`--shard auto` takes the shard's number from the environment: Kubernetes sets
JOB_COMPLETION_INDEX in each pod of an Indexed Job, and a CI matrix can set it
from its index; the count comes from `--shards N` or OCISIFT_SHARDS.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import UsageError

INDEX_VARIABLE = "JOB_COMPLETION_INDEX"  # Kubernetes' Indexed Job: 0 … completions-1 in each pod
COUNT_VARIABLE = "OCISIFT_SHARDS"
MAX_SHARDS = 10_000
_MAX_DIGITS = 6  # a shard number or count as written: at most MAX_SHARDS


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard `index` of `count` (0-based, as Kubernetes numbers completions)."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, repository: str, tag: str) -> bool:
        """Whether this shard takes the tag of that source repository (every shard agrees on the answer)."""
        return self.count == 1 or owner(repository, tag, self.count) == self.index


def owner(repository: str, tag: str, count: int) -> int:
    """The shard that takes (repository, tag) among `count`: the highest rendezvous score."""
    key = f"{repository}\n{tag}".encode()
    scores = [int.from_bytes(hashlib.sha256(b"%d\n%s" % (n, key)).digest()[:8], "big") for n in range(count)]
    return max(range(count), key=scores.__getitem__)


def parse_shard(text: str, shards: int | None, environ: Mapping[str, str]) -> Shard:
    """`I/N`, or `auto` with I from JOB_COMPLETION_INDEX and N from `shards` or OCISIFT_SHARDS."""
    if text == "auto":
        index_text = environ.get(INDEX_VARIABLE)
        if index_text is None:
            raise UsageError(f"--shard auto reads the shard's number from {INDEX_VARIABLE}, which is not set "
                             "(a Kubernetes Indexed Job sets it; in a CI matrix, set it from the matrix index)")
        count_text = str(shards) if shards is not None else environ.get(COUNT_VARIABLE)
        if count_text is None:
            raise UsageError(f"--shard auto needs the number of shards: --shards N, or {COUNT_VARIABLE} "
                             "(the Job's completions, the matrix's size)")
        index = _number(index_text, INDEX_VARIABLE)
        count = _number(count_text, "--shards" if shards is not None else COUNT_VARIABLE)
    else:
        if shards is not None:
            raise UsageError(f"--shards goes with --shard auto; --shard {text} names the count itself")
        index_text, slash, count_text = text.partition("/")
        if not slash:
            raise UsageError(f"--shard takes I/N (shard I of N, counted from 0) or auto, not {text!r}")
        index, count = _number(index_text, "--shard's I"), _number(count_text, "--shard's N")
    if not 1 <= count <= MAX_SHARDS:
        raise UsageError(f"the number of shards must be between 1 and {MAX_SHARDS}, not {count}")
    if index >= count:
        raise UsageError(f"shard {index} of {count} does not exist: shards are numbered 0 to {count - 1}")
    return Shard(index, count)


def _number(text: str, what: str) -> int:
    value = text.strip()
    if not value or len(value) > _MAX_DIGITS or not all("0" <= c <= "9" for c in value):
        raise UsageError(f"{what} must be a whole number, not {text[:40]!r}")
    return int(value)
