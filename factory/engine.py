"""The Docker engine, through docker-py: one place that knows how to reach it."""

from __future__ import annotations

import docker
import docker.errors

from factory.errors import EngineError

LABEL = "org.factory.managed"
"""Every image, container and volume factory creates carries this label (value "true")."""

MIN_API_VERSION = (1, 41)


def client() -> docker.DockerClient:
    """A client for the engine that DOCKER_HOST (or the default socket) names."""
    try:
        engine = docker.from_env(timeout=600)
        engine.ping()
    except docker.errors.DockerException as err:
        raise EngineError(
            f"The Docker engine does not answer ({err}).",
            hint="Start it (e.g. `sudo systemctl start docker`), or point DOCKER_HOST at a "
            "running engine, and check that this user may use its socket.",
        ) from None
    return engine


def api_version(engine: docker.DockerClient) -> tuple[int, int]:
    raw = str(engine.version().get("ApiVersion", "0.0"))
    major, _, minor = raw.partition(".")
    return int(major), int(minor or 0)
