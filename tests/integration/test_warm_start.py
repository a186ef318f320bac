"""Warm starts of new target directories (factory.build.warm_start), against the real builder:

- a second level of the same architecture finds every host unit (build scripts, proc-macros and
  their dependencies) fresh, from the first level's target directory;
- the same workspace at another path (a new clone) finds std, core, alloc and the rest of the
  standard library fresh, from the std seed, and its binary is bit-identical to the first's.

Each build reads cargo's own JSON messages from dist/logs/<image>/<target>.log.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from factory.build import cargo
from factory.build.binary import Binary
from factory.build.job import Request
from factory.engine import docker_engine as engine
from factory.engine.builder import BuilderImage
from factory.model import targets
from factory.model.config import ImageConfig
from factory.model.dist import Dist
from tests.conftest import ROOT, copy_example


@pytest.fixture()
def volume(client: docker.DockerClient) -> Iterator[str]:
    name = f"factory-test-warm-{uuid.uuid4().hex[:8]}"
    engine.ensure_volume(client, name)
    yield name
    client.volumes.get(name).remove(force=True)


def _build(
    client: docker.DockerClient,
    builder: BuilderImage,
    volume: str,
    workspace: Path,
    target: str,
    binary: str = "hello_world",
) -> tuple[Binary, list[dict[str, Any]]]:
    image = ImageConfig(name="hello", binary=binary, package=binary)
    dist = Dist(root=workspace.parent / "dist")
    (built,) = cargo.CargoDriver(volume=volume).build(
        Request(
            engine=client,
            builder=builder,
            workspace=workspace,
            images=(image,),
            targets_of=lambda _: (targets.get(target),),
            profile="opt",
            dist=dist,
            progress=lambda _: None,
            detail=lambda _: None,
        )
    )
    log = dist.log("hello", target).read_text()
    messages = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    return built, [m for m in messages if m["reason"] == "compiler-artifact"]


def _is_host(message: dict[str, Any], triple: str) -> bool:
    return not any(f"/{triple}/" in name for name in message["filenames"])


def _names(messages: list[dict[str, Any]], *, fresh: bool) -> set[str]:
    return {m["target"]["name"] for m in messages if m["fresh"] is fresh}


def test_levels_share_host_units_and_workspaces_share_std(
    client: docker.DockerClient,
    factory_builder: BuilderImage,
    volume: str,
    tmp_path: Path,
) -> None:
    triple = targets.get("amd64").triple
    first = copy_example(tmp_path / "a")
    baseline, cold = _build(client, factory_builder, volume, first, "amd64")
    # The std seed is built first, so what is fresh in the cold build is std and its crates.
    std = _names(cold, fresh=True)
    assert {"std", "core", "alloc", "compiler_builtins"} <= std
    assert {"hello_world", "tokio", "mimalloc"} <= _names(cold, fresh=False)

    _, second_level = _build(client, factory_builder, volume, first, "amd64_v2")
    host = [m for m in second_level if _is_host(m, triple)]
    assert {"custom-build", "proc-macro"} <= {k for m in host for k in m["target"]["kind"]}
    assert all(m["fresh"] for m in host), [m["package_id"] for m in host if not m["fresh"]]
    assert "hello_world" in _names(second_level, fresh=False), "each level compiles its own"

    clone = copy_example(tmp_path / "b")
    again, moved = _build(client, factory_builder, volume, clone, "amd64")
    assert std <= _names(moved, fresh=True), std - _names(moved, fresh=True)
    assert "hello_world" in _names(moved, fresh=False), "a new path has a new target directory"
    assert again.sha256 == baseline.sha256, "the same sources give the same binary"

    # Another workspace, with its own Cargo.lock: std's crates have the same paths (one shared
    # vendor directory), so std is the same unit and fresh there too.
    probe = tmp_path / "probe" / "build_probe"
    shutil.copytree(ROOT / "tests" / "workloads" / "build_probe", probe)
    _, other = _build(client, factory_builder, volume, probe, "amd64", "build_probe")
    assert {"std", "core", "alloc"} <= _names(other, fresh=True), _names(other, fresh=False)
