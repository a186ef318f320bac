"""Shared fixtures. Unit tests cannot reach the Docker engine, nor run the test-tools image's
tools on the host, by accident."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker.api.client
import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "hello_world"


def copy_example(directory: Path) -> Path:
    """A copy of the example (without a target/) at ``directory``/hello_world: a new checkout."""
    copy = directory / "hello_world"
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns("target"))
    return copy


_ENGINE_TOOLS = ("docker", "mmdebstrap", "debootstrap")
_IMAGE_TOOLS = ("skopeo", "umoci", "oci-image-tool", "gcc", "musl-gcc", "cc", "openssl")
"""Tools no one here wrote: the tests run them in the test-tools image (tests/testtools.py)."""


class EngineAccessError(AssertionError):
    """A unit test tried to reach the Docker engine: move it to tests/integration."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.path):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True)
def _no_engine_in_unit_tests(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    if request.node.get_closest_marker("integration"):
        yield
        return

    def refuse_client(*args: Any, **kwargs: Any) -> None:
        raise EngineAccessError("unit tests may not reach the Docker engine")

    real_popen_init = subprocess.Popen.__init__

    def guarded_popen(self: subprocess.Popen[Any], args: Any, *rest: Any, **kw: Any) -> None:
        argv0 = args if isinstance(args, str) else str(next(iter(args)))
        name = Path(argv0.split()[0]).name
        if name in _ENGINE_TOOLS:
            raise EngineAccessError(f"unit tests may not run {argv0!r}")
        if name in _IMAGE_TOOLS:
            raise EngineAccessError(
                f"unit tests may not run {argv0!r}: it comes from the test-tools image, which "
                "only integration tests may use (the `tools` fixture)"
            )
        real_popen_init(self, args, *rest, **kw)

    monkeypatch.setattr(docker.api.client.APIClient, "__init__", refuse_client)
    monkeypatch.setattr(subprocess.Popen, "__init__", guarded_popen)
    yield
