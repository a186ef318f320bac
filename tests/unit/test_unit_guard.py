"""The autouse guard of tests/conftest.py: a unit test reaches neither the engine nor the tools
that only the test-tools image provides."""

from __future__ import annotations

import subprocess

import docker
import pytest

from tests.conftest import EngineAccessError


def test_the_engine_is_refused() -> None:
    with pytest.raises(EngineAccessError, match="may not reach the Docker engine"):
        docker.from_env()
    with pytest.raises(EngineAccessError, match="may not run 'docker'"):
        subprocess.run(["docker", "info"], check=False)


@pytest.mark.parametrize("tool", ["skopeo", "umoci", "oci-image-tool", "gcc", "musl-gcc"])
def test_the_image_tools_are_refused_on_the_host(tool: str) -> None:
    with pytest.raises(EngineAccessError, match="test-tools image"):
        subprocess.run([tool, "--version"], check=False)
