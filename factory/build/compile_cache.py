"""sccache as the compile cache of Cargo builds ([cache] in images.toml).

cargo runs rustc through sccache (``RUSTC_WRAPPER``), and cc-rs, seeing sccache there, runs the
C and C++ compilers of build scripts through it too. Each build container starts its own sccache
server on a Unix socket inside the container, so parallel targets never share a server (nor a
port, when they share another container's network namespace).

The server reads its configuration from a file on a tmpfs mount, written by a command that gets
it in its own environment: a Redis password never lands on a disk, in the container's
environment (`docker inspect`) or in the environment of the compile (whose build scripts could
print it). The backend the server reports is checked against the one configured, since an
sccache built without Redis falls back to its local disk without a word, and Debian's trixie
sccache (0.10) is built with the local disk only (``sccache --help`` lists its features).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from factory.engine.docker_engine import CommandError, Container, Mount
from factory.errors import BuildError, UsageError
from factory.model.cache_config import CacheConfig

SCCACHE: Final = "sccache"
CONFIG_DIR: Final = "/run/factory-sccache"
CONFIG_FILE: Final = f"{CONFIG_DIR}/config.toml"
SOCKET: Final = "/tmp/factory-sccache.sock"
DISK_DIR: Final = "/sccache"
TMPFS: Final = {CONFIG_DIR: "size=64k,mode=0700"}
_CONFIG_VARIABLE: Final = "FACTORY_SCCACHE_CONFIG"
_WRITE_CONFIG: Final = f'umask 077; printf "%s" "${_CONFIG_VARIABLE}" > {CONFIG_FILE}'
_ENDPOINT_DB: Final = re.compile(r"(?P<base>rediss?://[^/]+)(?:/(?P<db>[0-9]+))?")
_FEATURE_LINE: Final = re.compile(r"^\s*([A-Za-z0-9]+):\s*(true|false)\s*$", re.MULTILINE)
_LOCATION_PREFIX: Final = {"disk": "local disk", "redis": "redis"}
"""How `sccache --show-stats` names each backend's location (0.10: "Local disk: ...", "Redis:
...", 0.17: "redis, name: redis://..."), lowercased."""


def _toml_string(value: str) -> str:
    return json.dumps(value)  # a TOML basic string is a JSON string for these characters


@dataclass(frozen=True, kw_only=True)
class Stats:
    """What one sccache server counted: compile requests it answered from the cache or not."""

    hits: int
    misses: int
    location: str

    @staticmethod
    def parse(text: str) -> Stats:
        data = json.loads(text)
        stats = data.get("stats", {})

        def total(key: str) -> int:
            return sum(int(n) for n in stats.get(key, {}).get("counts", {}).values())

        return Stats(
            hits=total("cache_hits"),
            misses=total("cache_misses"),
            location=str(data.get("cache_location", "")),
        )

    def since(self, earlier: Stats) -> Stats:
        return Stats(
            hits=self.hits - earlier.hits,
            misses=self.misses - earlier.misses,
            location=self.location,
        )

    def describe(self) -> str:
        return f"sccache {self.hits} hits, {self.misses} misses"


def features(help_text: str) -> dict[str, bool]:
    """The storage backends an sccache binary was built with, from the end of its --help."""
    return {name.lower(): value == "true" for name, value in _FEATURE_LINE.findall(help_text)}


@dataclass(frozen=True, kw_only=True)
class CompileCache:
    """A configured compile cache and the secret it needs, resolved from the environment."""

    config: CacheConfig
    password: str | None = None

    @staticmethod
    def from_config(config: CacheConfig, environ: Mapping[str, str]) -> CompileCache | None:
        """The cache for ``config`` (None for backend = "none"); the password is read from the
        variable that password_env names, which must then be set."""
        if config.backend == "none":
            return None
        password = None
        if config.password_env is not None:
            password = environ.get(config.password_env)
            if not password:
                raise UsageError(
                    f"[cache] password_env names {config.password_env}, which is not set (or "
                    "empty) in factory's environment.",
                    hint=f"Export {config.password_env} with the Redis password (in CI, from "
                    "the secret store), or remove password_env for a Redis without one.",
                )
        return CompileCache(config=config, password=password)

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.password,) if self.password else ()

    def mounts(self) -> tuple[Mount, ...]:
        if self.config.backend == "disk":
            return (Mount(source=self.config.volume, target=DISK_DIR),)
        return ()

    @property
    def network(self) -> bool:
        """A remote cache needs the compile container's network (docs/builder-and-build.md)."""
        return self.config.backend == "redis"

    def server_config(self) -> str:
        """sccache's configuration file (TOML); it holds the password, so it goes to tmpfs."""
        if self.config.backend == "disk":
            return f"[cache.disk]\ndir = {_toml_string(DISK_DIR)}\n"
        found = _ENDPOINT_DB.fullmatch(self.config.endpoint or "")
        if found is None:  # the config's check lets only such URLs through
            raise UsageError(f"[cache] endpoint {self.config.endpoint!r} is not a Redis URL.")
        lines = ["[cache.redis]", f"endpoint = {_toml_string(found['base'])}"]
        if found["db"]:
            lines.append(f"db = {int(found['db'])}")
        if self.password:
            lines.append(f"password = {_toml_string(self.password)}")
        return "\n".join(lines) + "\n"

    def environment(self) -> dict[str, str]:
        """What the compile's environment gains: the wrapper and where its server listens."""
        return {
            "RUSTC_WRAPPER": SCCACHE,
            "SCCACHE_CONF": CONFIG_FILE,
            "SCCACHE_SERVER_UDS": SOCKET,
            "SCCACHE_IDLE_TIMEOUT": "0",
        }

    def start(self, box: Container) -> Stats:
        """Write the configuration, start the server and check that it uses the configured
        backend; returns its (zero) statistics."""
        backend = self.config.backend
        found = features(box.run([SCCACHE, "--help"], check=False).stdout)
        if backend != "disk" and not found.get(backend, False):
            version = box.run([SCCACHE, "--version"], check=False).stdout.strip()
            built = ", ".join(name for name, on in found.items() if on) or "the local disk only"
            raise UsageError(
                f"[cache] backend = {backend!r}, but the builder's {version or 'sccache'} was "
                f"built without {backend} (it has: {built}). Debian's sccache 0.10 (trixie) "
                "stores on the local disk only.",
                hint='Use backend = "disk", or a builder of your own ([builder] dockerfile) '
                "whose sccache has Redis: docs/builder-and-build.md shows one.",
            )
        box.run(["sh", "-c", _WRITE_CONFIG], environment={_CONFIG_VARIABLE: self.server_config()})
        try:
            box.run([SCCACHE, "--start-server"], environment=self.environment())
        except CommandError as err:
            said = err.stderr.strip() or err.stdout.strip()
            for secret in self.secrets:
                said = said.replace(secret, "***")
            raise BuildError(
                f"sccache could not start with [cache] backend = {backend!r}"
                f"{f' at {self.config.endpoint}' if self.config.endpoint else ''}: {said}",
                hint="Check that the compile container reaches the endpoint ([cache] network) "
                "and that the password is right; `factory build -v` shows sccache's output.",
            ) from err
        stats = self.stats(box)
        expected = _LOCATION_PREFIX[backend]
        if not stats.location.lower().startswith(expected):
            raise UsageError(
                f"[cache] backend = {backend!r}, but sccache in the builder uses "
                f"{stats.location or 'an unknown location'}.",
                hint="Use a builder whose sccache has this backend (docs/builder-and-build.md).",
            )
        return stats

    def stats(self, box: Container) -> Stats:
        command = [SCCACHE, "--show-stats", "--stats-format=json"]
        return Stats.parse(box.run(command, environment=self.environment()).stdout)
