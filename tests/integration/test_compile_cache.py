"""sccache as the compile cache ([cache] in images.toml), against real parts:

- Redis: Debian's redis-server in a container with no network but its loopback, the compile
  container joined to that network namespace (``network = "container:NAME"``), a password from
  the environment, and a builder derived from factory's own whose sccache has Redis (Debian's
  unstable sccache: trixie's has the local disk only). A fresh runner (its cache volume gone)
  gets sccache hits, is faster, and makes the same binary as a build without any cache; the
  password shows in no container's `docker inspect` and in no log;
- the local disk with factory's own builder (trixie's sccache 0.10), and its refusal of Redis.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from factory.build import cargo
from factory.build.binary import Binary
from factory.build.job import Request
from factory.engine import docker_engine as engine
from factory.engine.builder import BuilderImage, ensure_builder
from factory.errors import UsageError
from factory.model import targets
from factory.model.cache_config import CacheConfig
from factory.model.config import DEFAULT_BASE, ImageConfig
from factory.model.dist import Dist
from tests import testtools
from tests.conftest import ROOT, copy_example

PASSWORD = f"redis-canary-{uuid.uuid4().hex}"
PASSWORD_ENV = "FACTORY_TEST_REDIS_PASSWORD"
TARGET = "amd64"
_STATS = re.compile(r"sccache (\d+) hits, (\d+) misses")

SCCACHE_WITH_REDIS = ROOT / "examples" / "builders" / "sccache-redis.Dockerfile"


@dataclass(frozen=True, kw_only=True)
class Build:
    binary: Binary
    seconds: float
    hits: int
    misses: int
    workspace: Path
    output: str
    """Every progress and detail line (what -v shows)."""


@pytest.fixture()
def volumes(client: docker.DockerClient) -> Iterator[list[str]]:
    """Cache volumes made by a test (factory.engine creates them on first use); removed."""
    made: list[str] = []
    yield made
    for name in made:
        for user in client.containers.list(all=True, filters={"volume": name}):
            user.remove(force=True)  # a container --debug kept when the test failed
        for volume in client.volumes.list(filters={"name": name}):
            volume.remove(force=True)


def _new_volume(volumes: list[str]) -> str:
    name = f"factory-test-sccache-{uuid.uuid4().hex[:8]}"
    volumes.append(name)
    return name


@pytest.fixture(scope="module")
def redis_builder(client: docker.DockerClient) -> BuilderImage:
    """examples/builders/sccache-redis.Dockerfile: factory's builder (FACTORY_BUILDER) with
    Debian's unstable sccache, which has Redis."""
    return ensure_builder(client, dockerfile=SCCACHE_WITH_REDIS, base=DEFAULT_BASE)


@pytest.fixture()
def redis(client: docker.DockerClient) -> Iterator[str]:
    """redis-server with a password, on its container's loopback only; yields the name."""
    name = f"factory-test-redis-{uuid.uuid4().hex[:8]}"
    box = client.containers.run(
        testtools.ensure_image(client),
        ["redis-server", "--port", "6379", "--requirepass", PASSWORD, "--save", ""],
        name=name,
        network_mode="none",
        labels=engine.labels(purpose="test-redis"),
        detach=True,
    )
    try:
        deadline = time.monotonic() + 30
        ping = ["redis-cli", "--no-auth-warning", "-a", PASSWORD, "ping"]
        while box.exec_run(ping).output.strip() != b"PONG":
            assert time.monotonic() < deadline, box.logs().decode()
            time.sleep(0.2)
        yield name
    finally:
        box.remove(force=True)


def _build(
    client: docker.DockerClient,
    builder: BuilderImage,
    volume: str,
    workspace: Path,
    cache: CacheConfig,
    *,
    keep: bool = False,
) -> Build:
    lines: list[str] = []
    dist = Dist(root=workspace.parent / "dist")
    started = time.monotonic()
    (built,) = cargo.CargoDriver(volume=volume).build(
        Request(
            engine=client,
            builder=builder,
            workspace=workspace,
            images=(ImageConfig(name="hello", binary="hello_world", package="hello_world"),),
            targets_of=lambda _: (targets.get(TARGET),),
            profile="opt",
            dist=dist,
            progress=lines.append,
            detail=lines.append,
            cache=cache,
            keep=keep,
        )
    )
    seconds = time.monotonic() - started
    found = [m for m in map(_STATS.search, lines) if m]
    hits, misses = (int(found[-1][1]), int(found[-1][2])) if found else (0, 0)
    assert cache.backend == "none" or found, lines
    return Build(
        binary=built,
        seconds=seconds,
        hits=hits,
        misses=misses,
        workspace=workspace,
        output="\n".join(lines),
    )


def test_a_fresh_runner_gets_hits_from_redis_and_the_same_binary(
    client: docker.DockerClient,
    redis_builder: BuilderImage,
    redis: str,
    volumes: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    cache = CacheConfig(
        backend="redis",
        endpoint="redis://127.0.0.1:6379",
        password_env=PASSWORD_ENV,
        network=f"container:{redis}",
    )
    workspace = copy_example(tmp_path / "runner")
    cold = _build(client, redis_builder, _new_volume(volumes), workspace, cache, keep=True)
    kept = client.containers.list(all=True, filters={"label": "org.factory.purpose=build"})
    kept = [c for c in kept if c.name.startswith(f"factory-build-{engine.SESSION_ID}")]
    try:
        assert kept, "--debug keeps the build container"
        for box in kept:
            assert PASSWORD not in json.dumps(box.attrs), "the password shows in docker inspect"
            joined = box.attrs["HostConfig"]["NetworkMode"]  # the engine names it by id
            assert joined == f"container:{client.containers.get(redis).id}"
    finally:
        for box in kept:
            box.remove(force=True)
    assert cold.misses > 0 and cold.hits == 0, (cold.hits, cold.misses)
    assert PASSWORD not in cold.output

    # A fresh runner: the same checkout path, no cache volume, the remote cache warm.
    fresh = _build(client, redis_builder, _new_volume(volumes), workspace, cache)
    assert fresh.hits >= cold.misses * 0.9, (fresh.hits, fresh.misses, cold.misses)
    assert fresh.seconds < cold.seconds, (fresh.seconds, cold.seconds)
    assert fresh.binary.sha256 == cold.binary.sha256

    plain = _build(client, redis_builder, _new_volume(volumes), workspace, CacheConfig())
    assert plain.binary.sha256 == cold.binary.sha256, "sccache changed the binary"
    for log in (workspace.parent / "dist").rglob("*"):
        if log.is_file():
            assert PASSWORD.encode() not in log.read_bytes(), log


def test_the_local_disk_backend_and_no_redis_in_trixies_sccache(
    client: docker.DockerClient,
    factory_builder: BuilderImage,
    volumes: list[str],
    tmp_path: Path,
) -> None:
    workspace = copy_example(tmp_path / "disk")
    redis = CacheConfig(backend="redis", endpoint="redis://127.0.0.1:6379")
    with pytest.raises(UsageError, match=r"built without redis.*sccache 0\.10"):
        _build(client, factory_builder, _new_volume(volumes), workspace, redis)

    disk = CacheConfig(backend="disk", volume=_new_volume(volumes))
    cold = _build(client, factory_builder, _new_volume(volumes), workspace, disk)
    assert cold.misses > 0
    warm = _build(client, factory_builder, _new_volume(volumes), workspace, disk)
    assert warm.hits >= cold.misses * 0.9, (warm.hits, warm.misses, cold.misses)
    assert warm.binary.sha256 == cold.binary.sha256
