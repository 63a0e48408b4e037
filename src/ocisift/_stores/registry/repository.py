"""One repository of one registry: the URLs and scopes every registry module builds requests from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import urllib3

from ..._core.options import RegistryOptions
from ..._core.reference import ImageName
from .session import Scope, Session, join_url, repository_scope, session_for


@dataclass(frozen=True, slots=True)
class Repository:
    session: Session
    base: str  # scheme://host[:port], no path
    image: ImageName

    @classmethod
    def open(cls, image: ImageName, options: RegistryOptions) -> Repository:
        session, base = session_for(image.host, options)
        return cls(session, base, image)

    @property
    def name(self) -> str:
        return self.image.repository

    @property
    def host(self) -> str:
        return self.image.host

    def url(self, path: str) -> str:
        return f"{self.base}/v2/{self.name}/{path}"

    def absolute(self, location: str) -> str:
        """A Location or Link target as an absolute URL (it may name another origin: no credential goes there)."""
        return join_url(self.base + "/", location)

    def scope(self, push: bool = False, *also_pull: str) -> Scope:
        return repository_scope(self.name, "pull,push" if push else "pull", *also_pull)

    def request(self, method: str, url: str, *, push: bool = False, scope: Scope | None = None,
                headers: Mapping[str, str] | None = None, body: Any = None) -> urllib3.BaseHTTPResponse:
        return self.session.request(method, url, scope=scope or self.scope(push), headers=headers, body=body)
