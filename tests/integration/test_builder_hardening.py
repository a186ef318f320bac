"""The Cargo driver's build container, as the engine and the container itself see it: the
source mounted read-only, no network, not privileged; and the outputs belong to the user who
ran factory (SUDO_UID/SUDO_GID under sudo).

The driver's real containers are started and stopped right after the check (as in
test_builder_secrets), so nothing is compiled; the bootstrapped Debian base stands in for the
builder image.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from factory.build import cargo, job
from factory.build.job import Request
from factory.engine import docker_engine as engine
from factory.engine.bootstrap import resolve_base
from factory.engine.builder import BuilderImage
from factory.engine.docker_engine import Container, ContainerSpec, ExecResult
from factory.model.dist import Dist
from tests.conftest import ROOT


class Checked(Exception):
    """Raised once the container has been examined."""


def test_the_build_container_is_read_only_offline_and_unprivileged(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    client = engine.client()
    base = resolve_base(client, "debian:trixie-slim", log=lambda _: None)
    stand_in = BuilderImage(tag=base, id=str(client.images.get(base).id), labels={})
    seen: dict[str, Any] = {}
    real_container = engine.container

    @contextmanager
    def examining(
        engine_client: object, spec: ContainerSpec, *, keep: bool = False
    ) -> Iterator[Container]:
        with real_container(client, spec, keep=keep) as box:
            attrs = client.containers.get(box.name).attrs
            seen["host"] = attrs["HostConfig"]
            seen["mounts"] = {m["Destination"]: m for m in attrs["Mounts"]}
            seen["write"] = box.run(["touch", "/src/factory-was-here"], check=False)
            seen["net"] = box.run(["ls", "/sys/class/net"], check=False)
            seen["root"] = box.run(["ls", "/src"], check=False)
            raise Checked

    monkeypatch.setattr(cargo, "container", examining)
    with pytest.raises(Checked):
        cargo.CargoDriver().build(
            Request(
                engine=client,
                builder=stand_in,
                workspace=ROOT / "examples" / "hello_world",
                images=(),
                targets_of=lambda image: (),
                profile="opt",
                dist=Dist(root=tmp_path / "dist"),
                progress=lambda _: None,
                detail=lambda _: None,
            )
        )
    assert seen["host"]["NetworkMode"] == "none"
    assert seen["host"]["Privileged"] is False
    assert seen["mounts"]["/src"]["RW"] is False
    assert "Cargo.toml" in seen["root"].stdout  # the workspace really is there
    write: ExecResult = seen["write"]
    assert write.exit_code != 0 and "Read-only file system" in write.stderr
    assert seen["net"].stdout.split() == ["lo"]
    assert not (ROOT / "examples" / "hello_world" / "factory-was-here").exists()


def test_outputs_belong_to_the_user_behind_sudo(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """What the driver copies out is chowned to SUDO_UID/SUDO_GID, up to dist/."""
    if os.geteuid() != 0:
        pytest.skip("only root can hand files to another user; as a user they are already yours")
    dist = tmp_path / "dist"
    binary = dist / "bin" / "img" / "amd64" / "hello"
    binary.parent.mkdir(parents=True)
    binary.write_bytes(b"\x7fELF")
    monkeypatch.setenv("SUDO_UID", "4321")
    monkeypatch.setenv("SUDO_GID", "4322")
    who = job.owner()
    assert who == (4321, 4322)
    job.give_away(binary, dist, who)
    for path in (binary, binary.parent, binary.parent.parent):
        assert (path.stat().st_uid, path.stat().st_gid) == (4321, 4322), path
