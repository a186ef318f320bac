"""The Cargo driver: one image x target compiled by cargo inside the builder.

Two phases, both in builder containers that share the ``factory-cache`` volume:

1. fetch (network on, only when the vendor directory for this Cargo.lock is missing):
   ``cargo vendor --sync <std's library/Cargo.toml>`` vendors the workspace's crates and the
   standard library's own dependencies into ``/cache/vendor/<key>`` and writes the source
   replacement beside it (``/cache/vendor/<key>.toml``, written last: its presence means done);
2. build (network off): ``cargo build -Zbuild-std=std,panic_abort`` under ``RUSTC_BOOTSTRAP=1``
   against that directory, one target directory per workspace x builder x target x profile
   under ``/cache/target`` so a warm rebuild only relinks what changed. A new one starts warm
   from the builder's std seed and another target's host units (factory.build.warm_start).
   Each build's own output (cargo's JSON messages and stderr) is kept in dist/logs/.

The workspace is mounted read-only; the binary is copied out by this process, so it belongs to
the invoking user (and to SUDO_UID/SUDO_GID when run through sudo).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass

from factory.build import cargo_config, cross, vendor, warm_start
from factory.build.binary import Binary
from factory.build.cargo_invocation import (
    CargoJob,
    Workspace,
    build_command,
    build_environment,
    cargo_build,
    host_half,
    rustflags,
    siblings,
    target_dir,
)
from factory.build.cargo_messages import Units, executable_from_messages
from factory.build.diagnose import diagnose
from factory.build.job import (
    CARGO_CACHE,
    SRC,
    Job,
    Request,
    deliver,
    give_away,
    owner,
    source_mount,
)
from factory.engine.docker_engine import CommandError, Container, ContainerSpec, Mount, container
from factory.errors import BuildError
from factory.util import console, fsutil


def _fail(work: CargoJob, err: CommandError) -> BuildError:
    job = work.job
    found = diagnose(err.stderr)
    what = f"the build script of {found.crate}" if found.crate else "cargo"
    return BuildError(
        f"Compiling {job.image} ({work.package}/{job.binary}) for {job.target.name} "
        f"({job.target.triple}, {' '.join(rustflags(job.target))}) failed in {what}:\n"
        f"{found.output}",
        hint=found.hint,
    )


def _warm_start(
    box: Container,
    work: CargoJob,
    workspace: Workspace,
    builder_id: str,
    key: str,
    environment: Mapping[str, str],
    request: Request,
) -> warm_start.Start:
    """Start a target directory that does not exist yet from the std seed (built first when
    missing) and a sibling level's host units (factory.build.warm_start)."""
    job = work.job
    directory = environment["CARGO_TARGET_DIR"]
    if box.run(["test", "-d", directory], check=False).exit_code == 0:
        return warm_start.Start(seed=False, sibling=None)
    seed = warm_start.seed_dir(builder_id, job.target.triple, environment)
    token = f"{box.name}-{job.target.name}"
    if box.run(["test", "-d", seed], check=False).exit_code != 0:
        request.progress(f"build: std for {job.target.name} ({job.profile}), once per builder")
        try:
            box.run(
                warm_start.seed_command(seed, token, cargo_build(job.target, job.profile, key)),
                environment={**environment, **warm_start.SEED_ENVIRONMENT},
                on_output=lambda line: None if line.startswith("{") else request.detail(line),
            )
        except CommandError as err:
            raise _fail(work, err) from err
    command = warm_start.prepare_command(
        directory,
        seed,
        host_half(job.profile),
        token,
        siblings(workspace.path, builder_id, job.target, job.profile),
    )
    return warm_start.Start.parse(box.run(command).stdout)


def _keep_log(request: Request, job: Job, stdout: str, stderr: str) -> None:
    """cargo's JSON messages and its stderr, in dist/logs/<image>/<target>.log."""
    log = request.dist.log(job.image, job.target.name)
    fsutil.atomic_write(log, (stdout + stderr).encode())
    give_away(log, request.dist.root, owner())


def _compile(
    box: Container,
    work: CargoJob,
    workspace: Workspace,
    key: str,
    request: Request,
) -> tuple[str, Units]:
    job = work.job
    directory = target_dir(workspace.path, request.builder.id, job.target, job.profile)
    environment = build_environment(
        job.target,
        job.profile,
        directory,
        epoch=work.epoch,
        config=workspace.config,
        environ=os.environ,
    )
    start = _warm_start(box, work, workspace, request.builder.id, key, environment, request)
    if start.seed or start.sibling:
        sibling = start.sibling.split("/")[-2] if start.sibling else None
        request.detail(
            f"{job.target.name}: a new target directory, from "
            + " and ".join(
                (["the std seed"] if start.seed else [])
                + ([f"{sibling}'s host units"] if sibling else [])
            )
        )
    try:
        result = box.run(
            build_command(work, key),
            environment=environment,
            on_output=lambda line: None if line.startswith("{") else request.detail(line),
        )
    except CommandError as err:
        _keep_log(request, job, err.stdout, err.stderr)
        raise _fail(work, err) from err
    _keep_log(request, job, result.stdout, result.stderr)
    inside = executable_from_messages(result.stdout, job.binary) or (
        f"{directory}/{job.target.triple}/{host_half(job.profile)}/{job.binary}"
    )
    return inside, Units.from_messages(result.stdout, job.target.triple)


def _build_one(
    box: Container,
    work: CargoJob,
    workspace: Workspace,
    key: str,
    request: Request,
) -> Binary:
    job = work.job
    request.progress(f"build: {job.image} {job.target.name} ({job.profile}) ...")
    for linker in cargo_config.overridden_linkers(workspace.config, job.target):
        console.warn(
            f"{workspace.config.path} sets linker = {linker!r} for {job.target.triple}; factory "
            f"links with its own ({cross.tool(job.target, 'link')}), which overrides it."
        )
    started = time.monotonic()
    inside, units = _compile(box, work, workspace, key, request)
    built = deliver(box, inside, job, request.dist)
    request.progress(
        f"build: {job.image} {job.target.name} done in {time.monotonic() - started:.1f} s "
        f"({built.size / 1024:.0f} KiB; {units.total} units, {units.fresh} fresh, "
        f"host units {units.host_fresh} of {units.host_total} fresh)"
    )
    return built


@dataclass(frozen=True, kw_only=True)
class CargoDriver:
    """The Cargo driver (a factory.build.driver.Driver)."""

    volume: str = CARGO_CACHE.volume
    """The cache volume, mounted at CARGO_CACHE.path (the benchmarks pass one of their own)."""

    def _mounts(self, workspace: Workspace) -> tuple[Mount, ...]:
        return (Mount(source=self.volume, target=CARGO_CACHE.path), source_mount(workspace.path))

    def build(self, request: Request) -> list[Binary]:
        """Compile every image x target; the binaries land in dist/bin/<image>/<target>/."""
        workspace = Workspace.load(request.workspace)
        key = vendor.vendor_key(workspace.lockfile, request.builder.id)
        spec = ContainerSpec(
            image=request.builder.tag,
            purpose="build",
            mounts=self._mounts(workspace),
            network=False,
            workdir=SRC,
        )
        binaries: list[Binary] = []
        with container(request.engine, spec, keep=request.keep) as box:
            if box.run(["test", "-f", vendor.vendor_config(key)], check=False).exit_code != 0:
                self.fetch(request, workspace, key)
            for image, job in request.jobs():
                work = CargoJob(
                    job=job,
                    package=image.cargo_package,
                    features=image.features,
                    default_features=image.default_features,
                )
                binaries.append(_build_one(box, work, workspace, key, request))
        return binaries

    def fetch(self, request: Request, workspace: Workspace, key: str) -> None:
        """Phase 1 (network on): vendor the workspace's and std's crates into the cache."""
        mounts = self._mounts(workspace)
        ca = vendor.host_ca_bundle()
        if ca is not None:
            mounts += (
                Mount(source=str(ca), target=vendor.HOST_CA_TARGET, read_only=True, bind=True),
            )
        spec = ContainerSpec(
            image=request.builder.tag,
            purpose="fetch",
            mounts=mounts,
            network=True,
            environment=vendor.fetch_environment(),
            workdir=SRC,
        )
        request.progress(f"fetch: vendoring crates of {workspace.path.name} and std (network on)")
        started = time.monotonic()
        with container(request.engine, spec, keep=request.keep) as box:
            sysroot = box.run(["rustc", "--print", "sysroot"]).stdout.strip()
            try:
                box.run(
                    vendor.fetch_command(f"{sysroot}/{vendor.STD_LIBRARY}", key, box.name),
                    on_output=request.detail,
                )
            except CommandError as err:
                raise BuildError(
                    f"Fetching the crates of {workspace.path} failed:\n"
                    f"{err.stderr.strip()[-4000:]}",
                    hint="Check that containers reach the crate registry (a proxy's variables "
                    "HTTPS_PROXY/NO_PROXY and CA bundle SSL_CERT_FILE are passed through), and "
                    "that Cargo.lock is current (`cargo update -w`).",
                ) from err
        request.progress(f"fetch: done in {time.monotonic() - started:.1f} s")
