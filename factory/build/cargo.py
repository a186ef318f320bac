"""The Cargo driver: one image x target compiled by cargo inside the builder.

Two phases, both in builder containers that share the ``factory-cache`` volume:

1. fetch (network on, only when this Cargo.lock and builder were not vendored yet):
   ``cargo vendor --sync <std's library/Cargo.toml>`` vendors the workspace's crates and the
   standard library's own dependencies into the one shared ``/cache/vendor/crates`` and writes
   the source replacement beside it (``/cache/vendor/lock-<key>.toml``, written last: its
   presence means done; factory.build.vendor);
2. build (network off): ``cargo build -Zbuild-std=std,panic_abort`` under ``RUSTC_BOOTSTRAP=1``
   against that directory, one target directory per workspace x builder x target x profile
   under ``/cache/target`` so a warm rebuild only relinks what changed. A new one starts warm
   from the builder's std seed and another target's host units (factory.build.warm_start).
   Each build's own output (cargo's JSON messages and stderr) is kept in dist/logs/.

The workspace is mounted read-only (uploaded into a volume when the engine is remote:
factory.engine.transfer); the binary is copied out by this process, so it belongs to the
invoking user (and to SUDO_UID/SUDO_GID when run through sudo).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field

from factory.build import cargo_config, compile_cache, cross, parallel, vendor, warm_start
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
from factory.build.cargo_messages import UnitCounter, Units, executable_from_messages, unit_total
from factory.build.compile_cache import CompileCache, Stats
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
from factory.util.meter import Meter, PlainMeter


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


@dataclass(frozen=True, kw_only=True)
class _Shared:
    """What every job of one driver run shares."""

    request: Request
    workspace: Workspace
    key: str
    plan: parallel.Plan
    meter: Meter
    warm: bool = True
    """Start new target directories from the std seed and a sibling (factory.build.warm_start)."""
    cache: CompileCache | None = None
    """sccache, when [cache] configures it (factory.build.compile_cache)."""


@dataclass(frozen=True, kw_only=True)
class _Output:
    """One job's tool output (shown with -v): streamed when one job runs at a time, else kept
    and shown as one block when the job ends, so that no two targets' lines interleave."""

    title: str
    shared: _Shared
    kept: list[str] = field(default_factory=list)

    def __call__(self, line: str) -> None:
        if line.startswith("{"):
            return
        if self.shared.plan.jobs == 1:
            self.shared.request.detail(line)
        else:
            self.kept.append(line)

    def flush(self) -> None:
        if self.kept:
            self.shared.request.detail("\n".join([f"--- {self.title} ---", *self.kept]))
            self.kept.clear()


def _warm_start(
    box: Container,
    work: CargoJob,
    shared: _Shared,
    directory: str,
    environment: Mapping[str, str],
    out: _Output,
) -> warm_start.Start:
    """Start the target directory ``directory``, if it does not exist yet, from the std seed
    (built first when missing) and another target's host units (factory.build.warm_start)."""
    job, builder_id = work.job, shared.request.builder.id
    if box.run(["test", "-d", directory], check=False).exit_code == 0:
        return warm_start.Start(seed=False, sibling=None)
    seed = warm_start.seed_dir(builder_id, job.target.triple, environment)
    token = f"{box.name}-{job.target.name}"
    if box.run(["test", "-d", seed], check=False).exit_code != 0:
        shared.request.progress(
            f"build: std for {job.target.name} ({job.profile}), once per builder"
        )
        command = cargo_build(job.target, job.profile, shared.key, shared.plan.cargo_jobs)
        try:
            box.run(
                warm_start.seed_command(seed, token, command),
                environment={**environment, **warm_start.SEED_ENVIRONMENT},
                on_output=out,
            )
        except CommandError as err:
            raise _fail(work, err) from err
    others = siblings(shared.workspace.path, builder_id, job.target, job.profile)
    command = warm_start.prepare_command(directory, seed, host_half(job.profile), token, others)
    start = warm_start.Start.parse(box.run(command).stdout)
    parts = (["the std seed"] if start.seed else []) + (
        [f"{start.sibling.split('/')[-2]}'s host units"] if start.sibling else []
    )
    if parts:
        out(f"{job.target.name}: a new target directory, from {' and '.join(parts)}")
    return start


def _keep_log(request: Request, job: Job, stdout: str, stderr: str) -> None:
    """cargo's JSON messages and its stderr, in dist/logs/<image>/<target>.log."""
    log = request.dist.log(job.image, job.target.name)
    fsutil.atomic_write(log, (stdout + stderr).encode())
    give_away(log, request.dist.root, owner())


def _total(box: Container, command: list[str], environment: Mapping[str, str]) -> int | None:
    """The number of units cargo will go through (its unit graph), for the progress display."""
    graph = [*command, "--unit-graph", "-Zunstable-options"]
    result = box.run(graph, environment=environment, check=False)
    return unit_total(result.stdout) if result.exit_code == 0 else None


def _compile(
    box: Container, work: CargoJob, shared: _Shared, out: _Output
) -> tuple[str, Units, Stats | None]:
    job, request = work.job, shared.request
    directory = target_dir(shared.workspace.path, request.builder.id, job.target, job.profile)
    environment = build_environment(
        job.target,
        job.profile,
        epoch=work.epoch,
        config=shared.workspace.config,
        environ=os.environ,
    )
    if shared.cache is not None:
        environment |= shared.cache.environment()
    if shared.warm:
        _warm_start(box, work, shared, directory, environment, out)
    command = build_command(work, shared.key, directory, shared.plan.cargo_jobs)
    part = f"{job.image} {job.target.name}"
    shared.meter.start(part, _total(box, command, environment))
    counter = UnitCounter(shared.meter, part)

    def each(line: str) -> None:
        counter(line)
        out(line)

    before = shared.cache.stats(box) if shared.cache is not None else None
    try:
        result = box.run(command, environment=environment, on_output=each)
    except CommandError as err:
        _keep_log(request, job, err.stdout, err.stderr)
        raise _fail(work, err) from err
    _keep_log(request, job, result.stdout, result.stderr)
    cached = (
        shared.cache.stats(box).since(before)
        if shared.cache is not None and before is not None
        else None
    )
    inside = executable_from_messages(result.stdout, job.binary) or (
        f"{directory}/{job.target.triple}/{host_half(job.profile)}/{job.binary}"
    )
    return inside, Units.from_messages(result.stdout, job.target.triple), cached


def _build_one(box: Container, work: CargoJob, shared: _Shared) -> Binary:
    job, request = work.job, shared.request
    request.progress(f"build: {job.image} {job.target.name} ({job.profile}) ...")
    for linker in cargo_config.overridden_linkers(shared.workspace.config, job.target):
        console.warn(
            f"{shared.workspace.config.path} sets linker = {linker!r} for {job.target.triple}; "
            f"factory links with its own ({cross.tool(job.target, 'link')}), which overrides it."
        )
    started = time.monotonic()
    out = _Output(title=f"{job.image} {job.target.name}", shared=shared)
    try:
        inside, units, cached = _compile(box, work, shared, out)
    finally:
        out.flush()
    built = deliver(box, inside, job, request.dist)
    shared.meter.finish(
        f"{job.image} {job.target.name}",
        f"build: {job.image} {job.target.name} done in {time.monotonic() - started:.1f} s "
        f"({built.size / 1024:.0f} KiB; {units.total} units, {units.fresh} fresh, "
        f"host units {units.host_fresh} of {units.host_total} fresh"
        f"{f'; {cached.describe()}' if cached is not None else ''})",
    )
    return built


@contextmanager
def _worker(
    request: Request, spec: ContainerSpec, cache: CompileCache | None
) -> Iterator[Container]:
    """A build container; with a compile cache, its sccache server started and checked."""
    with container(request.engine, spec, keep=request.keep) as box:
        if cache is not None:
            stats = cache.start(box)
            request.detail(f"build: sccache in {box.name} stores in {stats.location}")
        yield box


def side_by_side(works: Sequence[CargoJob]) -> list[CargoJob]:
    """The order in which jobs start when several run at once: the first target of each
    architecture first, so that the other levels find their host units built."""
    first: list[CargoJob] = []
    rest: list[CargoJob] = []
    for work in works:
        seen = any(w.job.target.triple == work.job.target.triple for w in first)
        (rest if seen else first).append(work)
    return first + rest


@dataclass(frozen=True, kw_only=True)
class CargoDriver:
    """The Cargo driver (a factory.build.driver.Driver)."""

    volume: str | None = None
    """The cache volume, mounted at CARGO_CACHE.path (the benchmarks pass one of their own);
    None: CARGO_CACHE.volume (FACTORY_CACHE_VOLUME, else factory-cache)."""
    warm_start: bool = True
    """False: a new target directory starts empty, as before warm starts (the benchmarks
    measure both)."""

    def _mounts(self, source: Mount) -> tuple[Mount, ...]:
        return (Mount(source=self.volume or CARGO_CACHE.volume, target=CARGO_CACHE.path), source)

    def _source(self, request: Request, workspace: Workspace) -> AbstractContextManager[Mount]:
        return source_mount(
            request.engine,
            request.builder.tag,
            workspace.path,
            progress=request.progress,
            keep=request.keep,
        )

    def build(self, request: Request) -> list[Binary]:
        """Compile every image x target, ``request.parallel`` at once (each in a builder
        container of its own); the binaries land in dist/bin/<image>/<target>/."""
        workspace = Workspace.load(request.workspace)
        with self._source(request, workspace) as source:
            return self._build(request, workspace, source)

    def _build(self, request: Request, workspace: Workspace, source: Mount) -> list[Binary]:
        key = vendor.vendor_key(workspace.lockfile, request.builder.id)
        cache = CompileCache.from_config(request.cache, os.environ)
        spec = ContainerSpec(
            image=request.builder.tag,
            purpose="build",
            mounts=self._mounts(source) + (cache.mounts() if cache else ()),
            network=cache is not None and cache.network,
            network_mode=request.cache.network,
            tmpfs=compile_cache.TMPFS if cache else {},
            workdir=SRC,
        )
        works = [
            CargoJob(
                job=job,
                package=image.cargo_package,
                features=image.features,
                default_features=image.default_features,
            )
            for image, job in request.jobs()
        ]
        plan = parallel.plan(
            len(works),
            request.parallel,
            cores=int(request.engine.info().get("NCPU") or os.cpu_count() or 1),
            available=parallel.available_memory(),
        )
        request.detail(f"build: {plan.describe()}")
        meter = request.meter or PlainMeter(request.progress)
        shared = _Shared(
            request=request,
            workspace=workspace,
            key=key,
            plan=plan,
            meter=meter,
            warm=self.warm_start,
            cache=cache,
        )
        vendoring = threading.Lock()

        def work(box: Container, item: CargoJob) -> Binary:
            with vendoring:  # the first job vendors; the others wait for it
                if box.run(["test", "-f", vendor.vendor_config(key)], check=False).exit_code:
                    self.fetch(request, workspace, key)
            return _build_one(box, item, shared)

        order = side_by_side(works) if plan.jobs > 1 else works
        built = parallel.run_all(
            order,
            plan.jobs,
            open_worker=lambda: _worker(request, spec, cache),
            work=work,
            cancel=Container.kill,
        )
        by_job = {item.job: binary for item, binary in zip(order, built, strict=True)}
        return [by_job[item.job] for item in works]

    def fetch(self, request: Request, workspace: Workspace, key: str) -> None:
        """Phase 1 (network on): vendor the workspace's and std's crates into the cache."""
        request.progress(f"fetch: vendoring crates of {workspace.path.name} and std (network on)")
        started = time.monotonic()
        with self._source(request, workspace) as source:
            spec = ContainerSpec(
                image=request.builder.tag,
                purpose="fetch",
                mounts=self._mounts(source),
                network=True,
                environment=vendor.fetch_environment(),
                workdir=SRC,
            )
            with container(request.engine, spec, keep=request.keep) as box:
                vendor.copy_ca_bundle(box)
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
                        hint="Check that containers reach the crate registry (a proxy's "
                        "variables HTTPS_PROXY/NO_PROXY and CA bundle SSL_CERT_FILE are passed "
                        "through), and that Cargo.lock is current (`cargo update -w`).",
                    ) from err
        request.progress(f"fetch: done in {time.monotonic() - started:.1f} s")
