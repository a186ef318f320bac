"""images.toml's [cache]: sccache as the compile cache of Cargo builds, and its checks (the
driver's side is factory.build.compile_cache)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from factory.model.reader import KeyPath, Reader, doc

CacheBackend = Literal["none", "disk", "redis"]


@dataclass(frozen=True, kw_only=True)
class CacheConfig:
    backend: CacheBackend = field(
        default="none",
        metadata=doc(
            "sccache as the compile cache of Cargo builds: none, disk (a volume of the engine) "
            "or redis (a Redis server; needs a builder whose sccache has Redis: "
            "docs/builder-and-build.md)."
        ),
    )
    endpoint: str | None = field(
        default=None,
        metadata=doc(
            "redis: redis://HOST:PORT[/DB] or rediss://... as the compile container reaches it, "
            "without a password (see password_env)."
        ),
    )
    password_env: str | None = field(
        default=None,
        metadata=doc(
            "redis: the name of the environment variable that holds the password (never the "
            "password itself)."
        ),
    )
    network: str | None = field(
        default=None,
        metadata=doc(
            "redis: the compile container's network (a Docker network name, or container:NAME "
            "to share another container's). Absent: the engine's default bridge."
        ),
    )
    volume: str = field(
        default="factory-sccache", metadata=doc("disk: the engine volume that holds the cache.")
    )


REDIS_ENDPOINT_RE = re.compile(r"rediss?://(?P<userinfo>[^@/]*@)?[^/@\s]+(?:/[0-9]+)?")
ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
NETWORK_RE = re.compile(r"(?:container:)?[A-Za-z0-9][A-Za-z0-9_.-]*")


def check_cache(reader: Reader, cache: CacheConfig) -> None:
    path: KeyPath = ("cache",)
    remote = ("endpoint", "password_env", "network")
    if cache.backend != "redis":
        for key in remote:
            if getattr(cache, key) is not None:
                raise reader.fail(
                    (*path, key),
                    f'{key} is for backend = "redis", not {cache.backend!r}.',
                    'Remove it, or set backend = "redis".',
                )
        return
    if cache.endpoint is None:
        raise reader.fail(
            (*path, "endpoint"),
            'backend = "redis" needs an endpoint.',
            'Add endpoint = "redis://HOST:6379" (as the compile container reaches it).',
        )
    found = REDIS_ENDPOINT_RE.fullmatch(cache.endpoint)
    if found is None:
        raise reader.fail(
            (*path, "endpoint"),
            f"{cache.endpoint!r} is not a Redis URL.",
            'Write redis://HOST:PORT[/DB] or rediss://HOST:PORT[/DB], e.g. "redis://cache:6379".',
        )
    if found.group("userinfo"):
        raise reader.fail(
            (*path, "endpoint"),
            "the endpoint holds credentials; images.toml is committed, so a password in it is "
            "a leaked password.",
            "Remove them from the URL and name the environment variable that holds the "
            'password instead: password_env = "FACTORY_CACHE_PASSWORD".',
        )
    if cache.password_env is not None and not ENV_NAME_RE.fullmatch(cache.password_env):
        raise reader.fail(
            (*path, "password_env"),
            f"{cache.password_env!r} is not the name of an environment variable.",
            'Name the variable, not its value: e.g. "FACTORY_CACHE_PASSWORD".',
        )
    if cache.network is not None and not NETWORK_RE.fullmatch(cache.network):
        raise reader.fail(
            (*path, "network"),
            f"{cache.network!r} is not a Docker network.",
            'Name a network (e.g. "ci") or another container\'s: "container:redis".',
        )
