"""Why a signature did not count: one exception every check raises, with the reason in words."""

from __future__ import annotations


class Refused(Exception):
    """This signature does not vouch for the digest; `reason` says why (shown to the user as it is)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
