"""When a push starts the local registry, and where it binds (no engine needed)."""

from __future__ import annotations

import socket

import docker
import pytest

from factory.engine import local_registry
from tests.fake_http import Reply, serve


def test_bind_addresses_of_loopback_hosts() -> None:
    assert local_registry.bind_address("127.0.0.1:5000") == ("127.0.0.1", 5000)
    assert local_registry.bind_address("localhost:5001") == ("127.0.0.1", 5001)
    assert local_registry.bind_address("[::1]:5002") == ("::1", 5002)
    assert local_registry.bind_address("127.0.0.2") == ("127.0.0.2", 80)
    assert local_registry.bind_address("registry.example:5000") is None


class Started(Exception):
    pass


def _engine() -> docker.DockerClient:
    raise Started


def test_a_remote_registry_is_never_started() -> None:
    assert not local_registry.ensure_local_registry(
        "registry.example:5000/factory", engine_factory=_engine
    )


def test_a_loopback_registry_that_answers_is_left_alone() -> None:
    with serve(lambda request: Reply(status=200, body=b"{}")) as server:
        assert not local_registry.ensure_local_registry(
            f"{server.address}/factory", engine_factory=_engine
        )


def test_a_silent_loopback_address_starts_the_registry_and_says_so() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    said: list[str] = []
    with pytest.raises(Started):
        local_registry.ensure_local_registry(
            f"127.0.0.1:{port}/factory", engine_factory=_engine, log=said.append
        )
    assert said == [
        f"registry: nothing answers at 127.0.0.1:{port}; starting factory's local registry there"
    ]
