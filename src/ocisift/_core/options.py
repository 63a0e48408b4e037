"""How to reach registries: the options every registry-facing call shares."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RegistryOptions:
    """`plain_http` None means: plain HTTP for loopback and localhost, HTTPS elsewhere."""

    plain_http: bool | None = None
    insecure: bool = False
    ca_file: str | None = None
    certs_dirs: tuple[str, ...] | None = None  # certs.d roots searched for HOST:PORT/; None: the environment's
    username: str | None = None
    password: str | None = None
    timeout: float = 30.0
    retries: int = 4
    max_retry_wait: float = 60.0  # the longest Retry-After honoured; a server asking for more is an error
    chunk_size: int | None = None  # upload blobs larger than this in PATCH chunks
