"""The compile commands factory runs, run by the benchmarks themselves in a builder container.

The overhead benchmark times them without factory around them; the size and runtime benchmarks
use them for builds factory does not offer (a glibc-static variant, a Cargo feature). Commands
and environments come from factory's Cargo driver, so they stay what factory runs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import docker

from bench import common
from factory.build import cargo, cargo_messages, vendor
from factory.build.cargo_invocation import (
    CargoJob,
    Workspace,
    build_command,
    build_environment,
    target_dir,
)
from factory.build.job import CARGO_CACHE, SRC, Job, Request, source_mount
from factory.engine import docker_engine as engine
from factory.engine.builder import BuilderImage
from factory.model.dist import Dist
from factory.model.targets import Target

WORKSPACE: Final = (common.ROOT / "examples/hello_world").resolve()


@dataclass(frozen=True, kw_only=True)
class Box:
    """A running builder container (network off) with the cache volume and the workspace."""

    container: engine.Container
    key: str
    """The vendor key of the workspace's Cargo.lock in this volume."""
    builder_id: str


@contextmanager
def builder_box(client: docker.DockerClient, builder: BuilderImage, volume: str) -> Iterator[Box]:
    """A build container like factory's; the crates are vendored first if they are not yet."""
    common.ensure_volume(client, volume)
    workspace = Workspace.load(WORKSPACE)
    key = vendor.vendor_key(workspace.lockfile, builder.id)
    with source_mount(client, builder.tag, WORKSPACE, progress=print) as source:
        spec = engine.ContainerSpec(
            image=builder.tag,
            purpose="bench",
            mounts=(engine.Mount(source=volume, target=CARGO_CACHE.path), source),
            network=False,
            workdir=SRC,
        )
        with engine.container(client, spec) as box:
            if box.run(["test", "-f", vendor.vendor_config(key)], check=False).exit_code != 0:
                fetching = Request(
                    engine=client,
                    builder=builder,
                    workspace=WORKSPACE,
                    images=(),
                    targets_of=lambda image: (),
                    profile="opt",
                    dist=Dist(root=common.WORK / "dist"),
                    progress=print,
                    detail=lambda _: None,
                )
                cargo.CargoDriver(volume=volume).fetch(fetching, workspace, key)
            yield Box(container=box, key=key, builder_id=builder.id)


@dataclass(frozen=True, kw_only=True)
class Built:
    seconds: float
    """Wall time of the `cargo build` command alone."""
    path: Path


def compile_binary(
    box: Box,
    target: Target,
    destination: Path,
    *,
    package: str = "hello_world",
    binary: str = "hello_world",
    features: Sequence[str] = (),
    triple: str | None = None,
    environment: Mapping[str, str] | None = None,
    directory: str | None = None,
) -> Built:
    """factory's `cargo build` for one target (opt), optionally with Cargo features, another
    triple or extra environment; the binary is copied to `destination`."""
    job = Job(image="bench", binary=binary, target=target, profile="opt")
    directory = directory or target_dir(WORKSPACE, box.builder_id, target, "opt")
    argv = build_command(CargoJob(job=job, package=package), box.key, directory)
    if triple is not None:
        argv[argv.index(target.triple)] = triple
    if features:
        argv += ["--features", ",".join(features)]
    env = {**build_environment(target, "opt"), **(environment or {})}
    started = time.monotonic()
    result = box.container.run(argv, environment=env)
    seconds = time.monotonic() - started
    inside = cargo_messages.executable_from_messages(result.stdout, binary)
    if inside is None:
        raise RuntimeError(f"cargo reported no executable for {binary} ({target.name})")
    destination.parent.mkdir(parents=True, exist_ok=True)
    box.container.copy_out(inside, destination)
    return Built(seconds=seconds, path=destination)
