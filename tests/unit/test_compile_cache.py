"""[cache] in images.toml and factory.build.compile_cache: the checks, sccache's configuration
file, its statistics and feature list (the texts of sccache 0.10's own output)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from factory.build import compile_cache
from factory.build.compile_cache import CompileCache, Stats
from factory.errors import ConfigError, UsageError
from factory.model import config as cfg
from factory.model.cache_config import CacheConfig

IMAGE = '[[image]]\nname = "a"\nbinary = "a"\n'

# `sccache --help` of Debian's trixie package (0.10.0-4), its last lines.
TRIXIE_HELP = """
Enabled features:
    S3:        false
    Redis:     false
    Memcached: false
    GCS:       false
    GHA:       false
    Azure:     false
    WebDAV:    false
    OSS:       false
"""

# `sccache --show-stats --stats-format=json` of Debian's unstable sccache (0.17) on Redis, after
# two hits and four misses (trimmed).
STATS = (
    '{"stats":{"compile_requests":5,"cache_hits":{"counts":{"Rust":2},"adv_counts":{}},'
    '"cache_misses":{"counts":{"C/C++":1,"Rust":3},"adv_counts":{}}},'
    '"cache_location":"redis, name: redis://127.0.0.1:6379, prefix: /","version":"0.17.0"}'
)


def _load(tmp_path: Path, cache: str) -> cfg.Config:
    path = tmp_path / "images.toml"
    path.write_text(f"[cache]\n{cache}\n{IMAGE}")
    return cfg.load(path)


def test_no_cache_by_default(tmp_path: Path) -> None:
    assert _load(tmp_path, "").cache == CacheConfig()
    assert CompileCache.from_config(CacheConfig(), {}) is None


@pytest.mark.parametrize(
    ("cache", "words"),
    [
        ('backend = "s3"', ["cache.backend", "none", "disk", "redis"]),
        ('backend = "redis"', ["cache.endpoint", "needs an endpoint"]),
        ('backend = "redis"\nendpoint = "http://x"', ["not a Redis URL"]),
        (
            'backend = "redis"\nendpoint = "redis://:hunter2@cache:6379"',
            ["holds credentials", "password_env"],
        ),
        ('backend = "redis"\nendpoint = "redis://c"\npassword_env = "a b"', ["not the name"]),
        ('backend = "redis"\nendpoint = "redis://c"\nnetwork = "a b"', ["not a Docker network"]),
        ('backend = "disk"\nendpoint = "redis://c"', ["endpoint is for backend"]),
    ],
)
def test_cache_mistakes_are_one_clear_message(tmp_path: Path, cache: str, words: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, cache)
    message = str(err.value)
    assert "\n" not in message
    assert "hunter2" not in message
    for word in words:
        assert word in message, message


def test_the_password_comes_from_the_named_variable_and_only_into_the_config_file(
    tmp_path: Path,
) -> None:
    config = _load(
        tmp_path,
        'backend = "redis"\nendpoint = "redis://cache:6379/2"\npassword_env = "PW"\n'
        'network = "container:redis"',
    ).cache
    with pytest.raises(UsageError, match="PW, which is not set"):
        CompileCache.from_config(config, {})
    cache = CompileCache.from_config(config, {"PW": 'se"cret'})
    assert cache is not None
    server = tomllib.loads(cache.server_config())
    assert server == {
        "cache": {"redis": {"endpoint": "redis://cache:6379", "db": 2, "password": 'se"cret'}}
    }
    assert 'se"cret' not in repr(cache.environment())
    assert cache.network and cache.mounts() == ()
    assert cache.secrets == ('se"cret',)


def test_disk_uses_a_volume_and_no_network() -> None:
    cache = CompileCache.from_config(CacheConfig(backend="disk", volume="v"), {})
    assert cache is not None
    assert not cache.network
    (mount,) = cache.mounts()
    assert (mount.source, mount.target, mount.bind) == ("v", compile_cache.DISK_DIR, False)
    assert tomllib.loads(cache.server_config()) == {"cache": {"disk": {"dir": "/sccache"}}}
    env = cache.environment()
    assert env["RUSTC_WRAPPER"] == "sccache"
    assert env["SCCACHE_CONF"].startswith(next(iter(compile_cache.TMPFS)))


def test_features_and_stats_are_read_from_sccaches_output() -> None:
    assert compile_cache.features(TRIXIE_HELP)["redis"] is False
    assert compile_cache.features(TRIXIE_HELP.replace("Redis:     false", "Redis: true"))["redis"]
    stats = Stats.parse(STATS)
    assert (stats.hits, stats.misses) == (2, 4)
    assert stats.location.startswith("redis")
    later = Stats(hits=10, misses=5, location=stats.location)
    assert later.since(stats).describe() == "sccache 8 hits, 1 misses"
