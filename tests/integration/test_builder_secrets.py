"""Registry and signing secrets in factory's own environment do not reach the containers the
Cargo driver starts (fetch: network on; build: network off): checked in the real containers,
through the engine's view (Config.Env) and from inside (PID 1's environment, `env` in an exec).

The driver's containers are started for real and stopped right after the check (the check
wraps `engine.container`), so no crate is fetched or compiled; the bootstrapped Debian base
stands in for the builder image, whose ENV holds no secret either way.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from factory.build import cargo
from factory.build.cargo_invocation import Workspace
from factory.build.job import Request
from factory.engine import docker_engine as engine
from factory.engine.bootstrap import resolve_base
from factory.engine.builder import BuilderImage
from factory.engine.docker_engine import Container, ContainerSpec
from factory.model.dist import Dist
from tests.conftest import ROOT

CANARY = "canary-builder-7d2c91"


class Checked(Exception):
    """Raised once a container's environment has been read: ends the driver's work there."""


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FACTORY_REGISTRY_USERNAME", "ci")
    monkeypatch.setenv("FACTORY_REGISTRY_PASSWORD", CANARY)
    monkeypatch.setenv("COSIGN_PASSWORD", CANARY)
    monkeypatch.setenv("GITHUB_TOKEN", CANARY)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / CANARY))


def test_driver_containers_do_not_see_registry_secrets(
    secrets: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    client = engine.client()
    base = resolve_base(client, "debian:trixie-slim", log=lambda _: None)
    stand_in = BuilderImage(tag=base, id=str(client.images.get(base).id), labels={})
    seen: dict[str, str] = {}
    real_container = engine.container

    @contextmanager
    def checking(
        engine_client: object, spec: ContainerSpec, *, keep: bool = False
    ) -> Iterator[Container]:
        with real_container(client, spec, keep=keep) as box:
            configured = client.containers.get(box.name).attrs["Config"]["Env"] or []
            inside = box.run(["cat", "/proc/1/environ"]).stdout + box.run(["env"]).stdout
            seen[spec.purpose] = "\n".join(configured) + inside
            raise Checked

    monkeypatch.setattr(cargo, "container", checking)
    workspace = Workspace.load(ROOT / "examples" / "hello_world")
    request = Request(
        engine=client,
        builder=stand_in,
        workspace=workspace.path,
        images=(),
        targets_of=lambda image: (),
        profile="opt",
        dist=Dist(root=tmp_path / "dist"),
        progress=lambda _: None,
        detail=lambda _: None,
    )
    driver = cargo.CargoDriver()
    with pytest.raises(Checked):
        driver.fetch(request, workspace, "secret-test")
    with pytest.raises(Checked):
        driver.build(request)
    assert set(seen) == {"fetch", "build"}
    for purpose, environment in seen.items():
        assert "PATH=" in environment, purpose  # the environment was really read
        assert CANARY not in environment, f"the {purpose} container sees a secret"
        assert "FACTORY_REGISTRY" not in environment, purpose
