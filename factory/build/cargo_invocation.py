"""How cargo is run for one target: the command, its environment (profile, rustflags after the
workspace's own, the cross compilers), the target directory and the workspace it builds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from factory.build import cargo_config, cross, vendor, warm_start
from factory.build.cargo_config import CargoConfig
from factory.build.job import Job
from factory.errors import UsageError
from factory.model import targets as target_table
from factory.model.config import Profile
from factory.model.targets import Target

BUILD_STD: Final = "-Zbuild-std=std,panic_abort"
LINK_SELF_CONTAINED: Final = "-Clink-self-contained=no"
NO_CONFIG: Final = CargoConfig(path=None)
LTO: Final = "thin"
"""Rust's own LTO; linker-plugin LTO is impossible here (rustc's LLVM 22 vs clang/lld 21)."""

# Cargo profile settings per factory profile (they override the workspace's own).
PROFILE_ENV: Final[Mapping[Profile, Mapping[str, str]]] = {
    "opt": {
        "CARGO_PROFILE_RELEASE_OPT_LEVEL": "3",
        "CARGO_PROFILE_RELEASE_CODEGEN_UNITS": "1",
        "CARGO_PROFILE_RELEASE_LTO": LTO,
        "CARGO_PROFILE_RELEASE_PANIC": "abort",
        "CARGO_PROFILE_RELEASE_STRIP": "symbols",
        "CARGO_PROFILE_RELEASE_DEBUG": "false",
    },
    "dbg": {
        "CARGO_PROFILE_DEV_OPT_LEVEL": "0",
        "CARGO_PROFILE_DEV_DEBUG": "true",
        "CARGO_PROFILE_DEV_PANIC": "abort",
        "CARGO_PROFILE_DEV_STRIP": "none",
    },
    "fastbuild": {
        "CARGO_PROFILE_DEV_OPT_LEVEL": "0",
        "CARGO_PROFILE_DEV_DEBUG": "false",
        "CARGO_PROFILE_DEV_PANIC": "abort",
        "CARGO_PROFILE_DEV_STRIP": "none",
    },
}


@dataclass(frozen=True, kw_only=True)
class CargoJob:
    """A Job and the Cargo package that holds its binary."""

    job: Job
    package: str
    features: tuple[str, ...] = ()
    default_features: bool = True
    epoch: int = 0
    """SOURCE_DATE_EPOCH for the compile (see build_environment). Always 0 by default: Cargo
    does not track it, so a warm build would keep an old __TIME__ that a clean build would not;
    a fixed value makes a binary depend only on its sources."""


def target_dir(workspace: Path, builder_id: str, target: Target, profile: Profile) -> str:
    """One target directory per workspace x builder x target x profile (see
    factory.build.warm_start for how a new one starts)."""
    return (
        f"{warm_start.TARGETS}/{vendor.short_hash(str(workspace))}/"
        f"{warm_start.builder_key(builder_id)}/{target.name}/{profile}"
    )


def host_half(profile: Profile) -> str:
    """The part of a target directory that holds host units (build scripts, proc-macros)."""
    return "release" if profile == "opt" else "debug"


def siblings(workspace: Path, builder_id: str, target: Target, profile: Profile) -> list[str]:
    """The target directories of the workspace's other targets, the other levels of
    ``target``'s architecture first (baseline first): their host units are this one's, as
    build scripts and proc-macros are compiled for the host whatever the target."""
    others = [t for t in target_table.TARGETS if t.name != target.name]
    others.sort(key=lambda other: other.triple != target.triple)
    return [target_dir(workspace, builder_id, other, profile) for other in others]


def rustflags(target: Target) -> tuple[str, ...]:
    """factory's rustflags for a target: the table's flags (with +crt-static), no self-contained
    link. They go after the workspace's own (see factory.build.cargo_config)."""
    return (*target.rustflags, LINK_SELF_CONTAINED)


def build_environment(
    target: Target,
    profile: Profile,
    *,
    epoch: int = 0,
    config: CargoConfig = NO_CONFIG,
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of `cargo build` for one target.

    `epoch` becomes SOURCE_DATE_EPOCH: C code's __DATE__/__TIME__ (mimalloc has them) come
    from it instead of the clock, so the binary is reproducible; also FACTORY_SOURCE_DATE_EPOCH,
    from which the builder's C wrappers restore it where sccache drops it. `config` is the
    workspace's .cargo/config.toml and `environ` factory's own environment: the rustflags cargo
    would have taken from them come first, factory's after (factory.build.cargo_config). The
    target directory and the job count are arguments, not variables: a compile cache (sccache)
    hashes every CARGO_* variable, and neither changes what is compiled.
    """
    flags = cargo_config.merged_rustflags(config, target, rustflags(target), environ or {})
    return {
        "RUSTC_BOOTSTRAP": "1",
        "SOURCE_DATE_EPOCH": str(epoch),
        "FACTORY_SOURCE_DATE_EPOCH": str(epoch),
        "CARGO_TERM_COLOR": "never",
        "CARGO_ENCODED_RUSTFLAGS": flags.encoded(),
        f"CARGO_TARGET_{cross.env_suffix(target).upper()}_LINKER": cross.tool(target, "link"),
        **cross.compile_environment(target, workspace_env=config.env),
        **PROFILE_ENV[profile],
    }


def cargo_build(target: Target, profile: Profile, key: str, jobs: int | None = None) -> list[str]:
    """`cargo build` of std and the current directory's crate, offline against the vendor
    directory, with ``jobs`` parallel units (None: cargo's default); the seed of
    factory.build.warm_start is built with exactly this (and a target directory of its own)."""
    argv = [
        "cargo",
        "build",
        "--offline",
        "--target",
        target.triple,
        BUILD_STD,
        "--config",
        vendor.vendor_config(key),
        "--message-format=json-render-diagnostics",
    ]
    if profile == "opt":
        argv.append("--release")
    if jobs is not None:
        argv += ["--jobs", str(jobs)]
    return argv


def build_command(work: CargoJob, key: str, directory: str, jobs: int | None = None) -> list[str]:
    """`cargo build` for one job into the target directory ``directory``: its package and
    binary, --locked."""
    job = work.job
    argv = [
        *cargo_build(job.target, job.profile, key, jobs),
        "--target-dir",
        directory,
        "--locked",
        "--package",
        work.package,
        "--bin",
        job.binary,
    ]
    if work.features:
        argv += ["--features", ",".join(work.features)]
    if not work.default_features:
        argv.append("--no-default-features")
    return argv


@dataclass(frozen=True, kw_only=True)
class Workspace:
    path: Path
    lockfile: bytes
    config: CargoConfig = NO_CONFIG
    """Its .cargo/config.toml (rustflags, linkers, [env]), merged with factory's settings."""

    @staticmethod
    def load(path: Path) -> Workspace:
        if not (path / "Cargo.toml").is_file():
            raise UsageError(
                f"{path} is not a Cargo workspace (no Cargo.toml).",
                hint="Set [workspace] path in images.toml to the directory with Cargo.toml.",
            )
        lock = path / "Cargo.lock"
        if not lock.is_file():
            raise UsageError(
                f"{path} has no Cargo.lock; factory builds with --locked so that every build "
                "uses the same crates.",
                hint=f"Run `cargo generate-lockfile` in {path} and commit Cargo.lock.",
            )
        return Workspace(
            path=path.resolve(), lockfile=lock.read_bytes(), config=cargo_config.load(path)
        )
