"""Pushes through a fault-injecting proxy in front of a real registry (Debian's docker-registry).

After every scenario, either the push completed and the registry serves exactly what was pushed,
or the index tag still names the previous, complete index; a re-run then uploads only what the
registry lacks.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from factory.distribution import plan as push_plan
from factory.distribution import push as registry_module
from factory.distribution.push import push_layout
from factory.distribution.results import PushResult
from factory.distribution.retry import RetryPolicy
from factory.distribution.transport import Transport
from factory.errors import RegistryError
from tests.faultproxy import Fault, FaultProxy, running
from tests.imagekit import factory_json
from tests.integration.registry_kit import Registry, index_digest, layout, local

FAST = RetryPolicy(attempts=5, base_delay=0.05, max_delay=0.5)
CHUNK = 256 << 10
BLOB_PUT = r"/blobs/uploads/.+digest=sha256"
PATCH = r"/blobs/uploads/."


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    with local() as started:
        yield started


@pytest.fixture(autouse=True)
def _forget_mount_sources() -> None:
    registry_module._KNOWN_BLOBS.clear()


@pytest.fixture
def repository() -> str:
    return f"faults/greeter-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def layouts(tmp_path: Path) -> tuple[Path, Path]:
    """Two versions of one image: the first is pushed cleanly, the second through faults."""
    return layout(tmp_path / "v1"), layout(tmp_path / "v2")


def push(
    proxy_or_registry: FaultProxy | Registry,
    repository: str,
    layout_dir: Path,
    *,
    chunk_size: int = CHUNK,
    timeout: float = 30.0,
) -> PushResult:
    host = (
        proxy_or_registry.host
        if isinstance(proxy_or_registry, FaultProxy)
        else proxy_or_registry.address
    )
    with Transport(host, policy=FAST, timeout=timeout) as transport:
        return push_layout(
            layout_dir, f"{host}/{repository}", transport=transport, chunk_size=chunk_size
        )


def pushed_once(registry: Registry, repository: str, v1: Path) -> str:
    push(registry, repository, v1)
    before = registry.tag_digest(repository, "latest")
    assert before == index_digest(v1)
    return before


def assert_completed(registry: Registry, repository: str, v2: Path, result: PushResult) -> None:
    assert result.indexes[0].digest == index_digest(v2)
    assert registry.tag_digest(repository, "latest") == index_digest(v2)
    registry.assert_complete(repository, "latest")
    assert registry.missing_bytes(repository, v2) == 0


@pytest.mark.parametrize(
    ("name", "faults", "chunk_size"),
    [
        (
            "503 and 500 on blob uploads and manifests",
            [
                Fault(action="status", method="PUT", path=BLOB_PUT, status=503, times=2),
                Fault(action="status", method="PUT", path="/manifests/", status=500),
                Fault(action="status", method="HEAD", path="/blobs/", status=502),
            ],
            16 << 20,
        ),
        (
            "connection dropped in the middle of a monolithic blob upload",
            [Fault(action="drop_body", method="PUT", path=BLOB_PUT, times=2)],
            16 << 20,
        ),
        (
            "connection dropped in the middle of a chunk",
            [Fault(action="drop_body", method="PATCH", path=PATCH, times=2)],
            CHUNK,
        ),
        (
            "reply lost after the registry committed a blob",
            [Fault(action="drop_reply", method="PUT", path=BLOB_PUT)],
            16 << 20,
        ),
        (
            "reply lost after the registry took a chunk",
            [Fault(action="drop_reply", method="PATCH", path=PATCH)],
            CHUNK,
        ),
        (
            "reply lost after an upload was started and after the index tag was written",
            [
                Fault(action="drop_reply", method="POST", path=r"/blobs/uploads/$"),
                Fault(action="drop_reply", method="PUT", path="/manifests/latest$"),
            ],
            16 << 20,
        ),
        (
            "slow registry: every answer late",
            [Fault(action="delay", seconds=0.15, times=10_000)],
            CHUNK,
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_transient_faults_end_in_a_complete_verified_push(
    registry: Registry,
    repository: str,
    layouts: tuple[Path, Path],
    name: str,
    faults: list[Fault],
    chunk_size: int,
) -> None:
    v1, v2 = layouts
    pushed_once(registry, repository, v1)
    proxy = FaultProxy(upstream=("127.0.0.1", registry.port), faults=faults)
    with running(proxy):
        result = push(proxy, repository, v2, chunk_size=chunk_size)
    assert all(f.hits == f.times for f in faults if f.action != "delay"), name
    assert_completed(registry, repository, v2, result)
    assert result.bytes_uploaded == sum(b.size for b in _blobs(v2))


def test_an_answer_slower_than_the_timeout_is_retried(
    registry: Registry, repository: str, layouts: tuple[Path, Path]
) -> None:
    v1, v2 = layouts
    pushed_once(registry, repository, v1)
    stall = Fault(action="delay", method="HEAD", path="/blobs/", seconds=3.0)
    proxy = FaultProxy(upstream=("127.0.0.1", registry.port), faults=[stall])
    with running(proxy):
        result = push(proxy, repository, v2, timeout=1.0)
    assert stall.hits == 1
    assert_completed(registry, repository, v2, result)


def test_429_waits_as_long_as_retry_after_says(
    registry: Registry, repository: str, tmp_path: Path
) -> None:
    """Through the CLI with its default retry policy: the index tag is refused once with 429."""
    v1 = layout(tmp_path / "v1")
    limited = Fault(
        action="status",
        method="PUT",
        path="/manifests/latest$",
        status=429,
        headers={"Retry-After": "2"},
    )
    proxy = FaultProxy(upstream=("127.0.0.1", registry.port), faults=[limited])
    with running(proxy):
        config = str(v1.parent.parent / "images.toml")
        document, _ = factory_json(
            "image",
            "--no-build",
            "-C",
            config,
            "--push",
            "--registry",
            f"{proxy.host}/{repository.replace('/', '-')}",
            "--image",
            "greeter",
        )
    pushed = proxy.seen("PUT", "/manifests/latest$")
    assert [s.status for s in pushed] == [429, 201]
    assert pushed[1].at - pushed[0].at >= 2.0
    assert document["pushed"][0]["indexes"][0]["tag"] == "latest"


def test_the_cli_reports_a_broken_registry_in_one_paragraph_with_exit_6(
    registry: Registry, repository: str, tmp_path: Path
) -> None:
    v1 = layout(tmp_path / "v1")
    broken = Fault(action="status", method="PUT", path="/manifests/", status=503, times=1000)
    proxy = FaultProxy(upstream=("127.0.0.1", registry.port), faults=[broken])
    config = str(v1.parent.parent / "images.toml")
    argv = [sys.executable, "-m", "factory", "image", "--no-build", "-C", config, "--push"]
    with running(proxy):
        prefix = f"{proxy.host}/{repository.replace('/', '-')}"
        proc = subprocess.run(
            [*argv, "--registry", prefix], capture_output=True, text=True, timeout=300
        )
    assert proc.returncode == 6, proc.stderr
    [message] = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert "HTTP 503" in message and "injected fault" in message
    assert "Traceback" not in proc.stderr
    assert broken.hits == 5  # the default policy: 5 tries
    assert registry.tag_digest(f"{repository.replace('/', '-')}/greeter", "latest") is None


def test_a_registry_that_stays_broken_leaves_the_tag_alone(
    registry: Registry, repository: str, layouts: tuple[Path, Path]
) -> None:
    v1, v2 = layouts
    before = pushed_once(registry, repository, v1)
    broken = Fault(action="status", method="PUT", path="/manifests/", status=503, times=1000)
    proxy = FaultProxy(upstream=("127.0.0.1", registry.port), faults=[broken])
    with running(proxy), pytest.raises(RegistryError, match="HTTP 503"):
        push(proxy, repository, v2)
    assert broken.hits == FAST.attempts
    assert registry.tag_digest(repository, "latest") == before
    registry.assert_complete(repository, "latest")
    rerun = push(registry, repository, v2)
    assert rerun.bytes_uploaded == 0
    assert_completed(registry, repository, v2, rerun)


@pytest.mark.parametrize(
    "where",
    ["second blob upload", "first manifest", "index tag"],
)
def test_registry_killed_mid_push(repository: str, layouts: tuple[Path, Path], where: str) -> None:
    """The registry dies; afterwards the old tag is whole, and a re-run after a restart
    uploads exactly the bytes the registry lacks."""
    v1, v2 = layouts
    fault = {
        "second blob upload": Fault(action="kill", method="POST", path="/blobs/uploads/$"),
        "first manifest": Fault(action="kill", method="PUT", path="/manifests/sha256:"),
        "index tag": Fault(action="kill", method="PUT", path="/manifests/latest$"),
    }[where]
    with local() as own:
        before = pushed_once(own, repository, v1)
        proxy = FaultProxy(upstream=("127.0.0.1", own.port), faults=[fault], on_kill=own.kill)
        if where == "second blob upload":
            proxy.faults = [Fault(action="delay", method="POST", path="/blobs/uploads/$"), fault]
        with running(proxy), pytest.raises(RegistryError, match=r"reach|refused"):
            push(proxy, repository, v2)
        own.restart()
        assert own.tag_digest(repository, "latest") == before
        own.assert_complete(repository, "latest")
        missing = own.missing_bytes(repository, v2)
        assert 0 <= missing < sum(b.size for b in _blobs(v2))
        rerun = push(own, repository, v2)
        assert rerun.bytes_uploaded == missing
        assert_completed(own, repository, v2, rerun)


def _blobs(layout_dir: Path) -> list[push_plan.BlobRef]:
    return list(push_plan.read(layout_dir).blobs)
