"""The Bazel driver: every image x target compiled by Bazel inside the builder's Bazel stage.

The stage (dockerfiles/bazel.Dockerfile, built only for this driver) is the builder plus
bazelisk, which runs the Bazel of the workspace's .bazelversion (9.0.0 for the example). One
container, network on (Bazel fetches modules, the Rust toolchain and crates itself, or reads them
from a remote cache), runs:

1. ``bazel --version``: is Bazel there at all (else EngineError: it could not be obtained);
2. ``bazel build -c <mode> <label>_<target>...`` for every selected image x target at once;
3. per label ``bazel cquery --output=files <label>``: the output file, relative to the
   execution root (``bazel info execution_root``), resolved and copied to
   dist/bin/<image>/<target>/<binary>.

The output base, the install base and the repository cache live in the ``factory-bazel-cache``
volume (labelled org.factory.managed=true), so a second build reuses the analysis cache and
every download. Remote cache and executor flags come from images.toml's [bazel] table.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from factory.build.bazel_stage import ensure_bazel_stage
from factory.build.binary import Binary
from factory.build.job import (
    BAZEL_CACHE,
    SRC,
    Box,
    Job,
    Request,
    deliver,
    proxy_environment,
    source_mount,
)
from factory.engine.docker_engine import CommandError, ContainerSpec, ExecResult, container
from factory.errors import BuildError, EngineError, UsageError
from factory.model.config import BazelConfig, ImageConfig, Profile
from factory.model.dist import Dist
from factory.model.targets import Target
from factory.util.console import Progress

REPOSITORY_CACHE: Final = f"{BAZEL_CACHE.path}/repository_cache"
OUTPUT_USER_ROOT: Final = f"{BAZEL_CACHE.path}/user_root"


@dataclass(frozen=True, kw_only=True)
class Labelled:
    """A Job and the Bazel label that builds it."""

    job: Job
    label: str


def label_of(image: ImageConfig, target: Target) -> str:
    """`<bazel_label>_<target>`; bazel_label defaults to //rust/<binary>:<binary>_static."""
    prefix = image.bazel_label or f"//rust/{image.binary}:{image.binary}_static"
    return f"{prefix}_{target.name}"


def output_base(workspace: Path) -> str:
    """One output base per workspace (its analysis cache survives between builds)."""
    return (
        f"{BAZEL_CACHE.path}/output_base/{hashlib.sha256(str(workspace).encode()).hexdigest()[:16]}"
    )


def startup_options(workspace: Path) -> list[str]:
    return [f"--output_user_root={OUTPUT_USER_ROOT}", f"--output_base={output_base(workspace)}"]


def remote_flags(config: BazelConfig) -> list[str]:
    """--remote_cache, --remote_executor and --remote_header from images.toml's [bazel]."""
    flags = []
    if config.remote_cache:
        flags.append(f"--remote_cache={config.remote_cache}")
    if config.remote_executor:
        flags.append(f"--remote_executor={config.remote_executor}")
    flags += [f"--remote_header={header}" for header in config.remote_header]
    return flags


def build_options(config: BazelConfig, profile: Profile) -> list[str]:
    """The options of `bazel build` and of the `cquery` that must see the same configuration."""
    return [
        "-c",
        profile,
        f"--repository_cache={REPOSITORY_CACHE}",
        # The workspace is mounted read-only: no bazel-* convenience symlinks in it.
        "--symlink_prefix=/",
        "--color=no",
        "--curses=no",
        *remote_flags(config),
        *config.flags,
    ]


def build_command(
    workspace: Path, config: BazelConfig, profile: Profile, labels: Sequence[str]
) -> list[str]:
    return [
        "bazel",
        *startup_options(workspace),
        "build",
        *build_options(config, profile),
        "--",
        *labels,
    ]


def cquery_command(workspace: Path, config: BazelConfig, profile: Profile, label: str) -> list[str]:
    return [
        "bazel",
        *startup_options(workspace),
        "cquery",
        *build_options(config, profile),
        "--output=files",
        "--",
        label,
    ]


def info_command(workspace: Path, config: BazelConfig, profile: Profile) -> list[str]:
    return [
        "bazel",
        *startup_options(workspace),
        "info",
        *build_options(config, profile),
        "execution_root",
    ]


def output_file(stdout: str, label: str) -> str:
    """The one file `cquery --output=files` printed for a static binary's label."""
    files = [line.strip() for line in stdout.splitlines() if line.strip()]
    if len(files) != 1:
        listed = ", ".join(files) or "none"
        raise BuildError(
            f"`bazel cquery --output=files {label}` listed {len(files)} files ({listed}); "
            "factory expects exactly one, the static binary.",
            hint="Point [[image]] bazel_label at a rule whose default output is the binary "
            "alone (the example's static_binary rule in transitions.bzl is one).",
        )
    return files[0]


def check_workspace(path: Path) -> None:
    if not (path / "MODULE.bazel").is_file():
        raise UsageError(
            f"{path} is not a Bazel workspace (no MODULE.bazel), but images.toml sets "
            'driver = "bazel".',
            hint="Point [workspace] path at the folder holding MODULE.bazel, or set "
            'driver = "cargo".',
        )


def bazel_version(workspace: Path) -> str:
    """The workspace's .bazelversion (what bazelisk will run)."""
    pin = workspace / ".bazelversion"
    if not pin.is_file():
        raise UsageError(
            f"{workspace} has no .bazelversion, so the Bazel version is not pinned.",
            hint="Write the version (e.g. 9.0.0) into .bazelversion and commit it.",
        )
    return pin.read_text(encoding="utf-8").strip()


def ensure_bazel(box: Box, image_tag: str, version: str) -> None:
    """Fail with an EngineError that says why when Bazel cannot run in the stage."""
    result = box.run(["bazel", "--version"], workdir=SRC, check=False)
    if result.exit_code != 0 or result.stdout.strip() != f"bazel {version}":
        why = (result.stderr or result.stdout).strip()[-2000:] or f"exit code {result.exit_code}"
        raise EngineError(
            f"Bazel {version} could not be obtained in {image_tag}: `bazel --version` "
            f"answered: {why}",
            hint="bazelisk downloads the Bazel of .bazelversion on first use: let containers "
            "reach the Bazel release server, or set BAZELISK_BASE_URL to a mirror and rebuild "
            "the stage (see docs/bazel.md).",
        )


def build_in(
    box: Box,
    *,
    workspace: Path,
    jobs: Sequence[Labelled],
    config: BazelConfig,
    profile: Profile,
    dist: Dist,
    progress: Progress,
    detail: Progress,
) -> list[Binary]:
    """Steps 2 and 3 in a running container (the unit tests drive this with a fake box)."""
    if not jobs:
        return []
    labels = [job.label for job in jobs]
    progress(f"bazel: building {len(labels)} target(s) ({profile})")
    started = time.monotonic()
    try:
        box.run(
            build_command(workspace, config, profile, labels),
            workdir=SRC,
            on_output=detail,
            what="bazel build",
        )
    except CommandError as err:
        raise BuildError(
            f"`bazel build -c {profile}` of {', '.join(labels)} failed:\n"
            f"{(err.stderr or err.stdout).strip()[-6000:]}",
            hint="Fix the error above (the workspace, its MODULE.bazel or the remote cache "
            "settings in [bazel]) and run `factory build --driver bazel` again.",
        ) from err
    progress(f"bazel: built in {time.monotonic() - started:.1f} s")
    root = _query(box, info_command(workspace, config, profile), "bazel info execution_root")
    execution_root = root.stdout.strip().splitlines()[-1]
    built = []
    for job in jobs:
        binary = _collect(box, job, workspace, config, profile, dist, execution_root)
        progress(
            f"bazel: {binary.image} {binary.target} -> {binary.path} ({binary.size / 1024:.0f} KiB)"
        )
        built.append(binary)
    return built


def _collect(
    box: Box,
    job: Labelled,
    workspace: Path,
    config: BazelConfig,
    profile: Profile,
    dist: Dist,
    execution_root: str,
) -> Binary:
    query = _query(
        box, cquery_command(workspace, config, profile, job.label), f"bazel cquery {job.label}"
    )
    relative = output_file(query.stdout, job.label)
    # The rule's output may be a symlink to rustc's output: copy the file it points at.
    where = f"{execution_root}/{relative}"
    inside = _query(box, ["readlink", "-e", "--", where], f"resolving {where}").stdout.strip()
    return deliver(box, inside, job.job, dist)


def _query(box: Box, argv: Sequence[str], what: str) -> ExecResult:
    """Run a command after the build; its failure is a build failure that quotes it."""
    try:
        return box.run(argv, workdir=SRC, what=what)
    except CommandError as err:
        output = (err.stderr or err.stdout).strip()[-4000:]
        raise BuildError(
            f"{what} failed after a successful build:\n{output}",
            hint="Run the same `bazel build` by hand in the workspace to see why; the output "
            f"base is kept in the {BAZEL_CACHE.volume} volume.",
        ) from err


def jobs_for(request: Request) -> list[Labelled]:
    return [Labelled(job=job, label=label_of(image, job.target)) for image, job in request.jobs()]


@dataclass(frozen=True, kw_only=True)
class BazelDriver:
    """The Bazel driver (a factory.build.driver.Driver)."""

    def build(self, request: Request) -> list[Binary]:
        """Compile every image x target with Bazel; the binaries land in
        dist/bin/<image>/<target>/. The Bazel stage is built from request.bazel_dockerfile."""
        workspace = request.workspace.resolve()
        check_workspace(workspace)
        version = bazel_version(workspace)
        stage = ensure_bazel_stage(
            request.engine,
            request.builder,
            bazel_version=version,
            dockerfile=request.bazel_dockerfile,
            progress=request.progress,
            detail=request.detail,
        )
        with source_mount(
            request.engine, stage.tag, workspace, progress=request.progress, keep=request.keep
        ) as source:
            spec = ContainerSpec(
                image=stage.tag,
                purpose="bazel",
                mounts=(BAZEL_CACHE.mount(), source),
                network=True,
                environment=proxy_environment(),
                workdir=SRC,
            )
            return self._build_in(request, workspace, spec, stage.tag, version)

    def _build_in(
        self, request: Request, workspace: Path, spec: ContainerSpec, tag: str, version: str
    ) -> list[Binary]:
        with container(request.engine, spec, keep=request.keep) as box:
            ensure_bazel(box, tag, version)
            return build_in(
                box,
                workspace=workspace,
                jobs=jobs_for(request),
                config=request.bazel,
                profile=request.profile,
                dist=request.dist,
                progress=request.progress,
                detail=request.detail,
            )
