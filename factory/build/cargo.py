"""The Cargo driver: one image x target compiled by cargo inside the builder.

Two phases, both in builder containers that share the ``factory-cache`` volume:

1. fetch (network on, only when the vendor directory for this Cargo.lock is missing):
   ``cargo vendor --sync <std's library/Cargo.toml>`` vendors the workspace's crates and the
   standard library's own dependencies into ``/cache/vendor/<key>`` and writes the source
   replacement beside it (``/cache/vendor/<key>.toml``, written last: its presence means done);
2. build (network off): ``cargo build -Zbuild-std=std,panic_abort`` under ``RUSTC_BOOTSTRAP=1``
   against that directory, one target directory per workspace x target x profile under
   ``/cache/target`` so a warm rebuild only relinks what changed.

The workspace is mounted read-only; the binary is copied out by this process, so it belongs to
the invoking user (and to SUDO_UID/SUDO_GID when run through sudo).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from factory.build import cargo_config, cross
from factory.build.binary import Binary
from factory.build.cargo_config import CargoConfig
from factory.build.diagnose import diagnose
from factory.build.job import (
    CARGO_CACHE,
    SRC,
    Job,
    Request,
    deliver,
    proxy_environment,
    source_mount,
)
from factory.engine.docker_engine import CommandError, Container, ContainerSpec, Mount, container
from factory.errors import BuildError, UsageError
from factory.model.config import Profile
from factory.model.targets import Target
from factory.util import console
from factory.util.console import Progress

STD_LIBRARY: Final = "lib/rustlib/src/rust/library/Cargo.toml"
"""std's workspace manifest, relative to `rustc --print sysroot`."""
BUILD_STD: Final = "-Zbuild-std=std,panic_abort"
LINK_SELF_CONTAINED: Final = "-Clink-self-contained=no"
HOST_CA_TARGET: Final = "/etc/factory/host-ca.crt"
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


def _short_hash(*parts: bytes | str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def vendor_key(lockfile: bytes, builder_id: str) -> str:
    """The vendor directory's key: the workspace's Cargo.lock and the builder (std's lock)."""
    return _short_hash(lockfile, builder_id)


def vendor_dir(key: str) -> str:
    return f"{CARGO_CACHE.path}/vendor/{key}"


def vendor_config(key: str) -> str:
    """The source-replacement config cargo vendor printed; present only once vendoring is done."""
    return f"{CARGO_CACHE.path}/vendor/{key}.toml"


def target_dir(workspace: Path, target: Target, profile: Profile) -> str:
    return f"{CARGO_CACHE.path}/target/{_short_hash(str(workspace))}/{target.name}/{profile}"


# $1 std's manifest, $2 the vendor directory, $3 its config, $4 a token unique to this fetch.
# Vendors into a private directory, then moves it into place and writes the config last, so
# concurrent fetches of the same Cargo.lock cannot mix their files and a half-done one is redone.
_FETCH_SCRIPT: Final = """set -eu
tmp="$2.tmp-$4"
mkdir -p "$(dirname "$2")"
rm -rf "$tmp"
cargo vendor --locked --versioned-dirs --sync "$1" "$tmp" > "$tmp.toml"
if [ -f "$3" ]; then rm -rf "$tmp" "$tmp.toml"; exit 0; fi
rm -rf "$2"
mv -T "$tmp" "$2"
sed "s|$tmp|$2|g" "$tmp.toml" > "$3.partial-$4"
rm -f "$tmp.toml"
mv "$3.partial-$4" "$3"
"""


def fetch_command(std_manifest: str, key: str, token: str) -> list[str]:
    """Vendor the workspace's and std's crates; the config appears last (atomically)."""
    return [
        "sh",
        "-c",
        _FETCH_SCRIPT,
        "fetch",
        std_manifest,
        vendor_dir(key),
        vendor_config(key),
        token,
    ]


def rustflags(target: Target) -> tuple[str, ...]:
    """factory's rustflags for a target: the table's flags (with +crt-static), no self-contained
    link. They go after the workspace's own (see factory.build.cargo_config)."""
    return (*target.rustflags, LINK_SELF_CONTAINED)


def build_environment(
    target: Target,
    profile: Profile,
    directory: str,
    *,
    epoch: int = 0,
    config: CargoConfig = NO_CONFIG,
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of `cargo build` for one target.

    `epoch` becomes SOURCE_DATE_EPOCH: C code's __DATE__/__TIME__ (mimalloc has them) come
    from it instead of the clock, so the binary is reproducible. `config` is the workspace's
    .cargo/config.toml and `environ` factory's own environment: the rustflags cargo would have
    taken from them come first, factory's after (factory.build.cargo_config).
    """
    flags = cargo_config.merged_rustflags(config, target, rustflags(target), environ or {})
    return {
        "RUSTC_BOOTSTRAP": "1",
        "SOURCE_DATE_EPOCH": str(epoch),
        "CARGO_TERM_COLOR": "never",
        "CARGO_TARGET_DIR": directory,
        "CARGO_ENCODED_RUSTFLAGS": flags.encoded(),
        f"CARGO_TARGET_{cross.env_suffix(target).upper()}_LINKER": cross.tool(target, "link"),
        **cross.compile_environment(target, workspace_env=config.env),
        **PROFILE_ENV[profile],
    }


def build_command(work: CargoJob, key: str) -> list[str]:
    """`cargo build` for one job, offline against the vendor directory."""
    job = work.job
    argv = [
        "cargo",
        "build",
        "--locked",
        "--offline",
        "--target",
        job.target.triple,
        BUILD_STD,
        "--config",
        vendor_config(key),
        "--package",
        work.package,
        "--bin",
        job.binary,
        "--message-format=json-render-diagnostics",
    ]
    if work.features:
        argv += ["--features", ",".join(work.features)]
    if not work.default_features:
        argv.append("--no-default-features")
    if job.profile == "opt":
        argv.append("--release")
    return argv


def executable_from_messages(stdout: str, binary: str) -> str | None:
    """The binary's path from cargo's JSON messages (the last compiler-artifact naming it)."""
    found: str | None = None
    for line in stdout.splitlines():
        if not line.startswith("{"):
            continue
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            continue
        target = message.get("target") or {}
        if (
            message.get("reason") == "compiler-artifact"
            and target.get("name") == binary
            and "bin" in target.get("kind", [])
            and message.get("executable")
        ):
            found = str(message["executable"])
    return found


def host_ca_bundle(environ: Mapping[str, str] = os.environ) -> Path | None:
    """The host's CA bundle, for crate downloads through a TLS-inspecting proxy."""
    for candidate in (environ.get("SSL_CERT_FILE"), "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            return Path(candidate).resolve()
    return None


def fetch_environment(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    env = proxy_environment(environ)
    if host_ca_bundle(environ) is not None:
        env["CARGO_HTTP_CAINFO"] = HOST_CA_TARGET
    return env


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


def _compile(
    box: Container, work: CargoJob, workspace: Workspace, key: str, detail: Progress
) -> str:
    job = work.job
    directory = target_dir(workspace.path, job.target, job.profile)
    environment = build_environment(
        job.target,
        job.profile,
        directory,
        epoch=work.epoch,
        config=workspace.config,
        environ=os.environ,
    )
    try:
        result = box.run(
            build_command(work, key),
            environment=environment,
            on_output=lambda line: None if line.startswith("{") else detail(line),
        )
    except CommandError as err:
        found = diagnose(err.stderr)
        what = f"the build script of {found.crate}" if found.crate else "cargo"
        raise BuildError(
            f"Compiling {job.image} ({work.package}/{job.binary}) for {job.target.name} "
            f"({job.target.triple}, {' '.join(rustflags(job.target))}) failed in {what}:\n"
            f"{found.output}",
            hint=found.hint,
        ) from err
    profile_dir = "release" if job.profile == "opt" else "debug"
    return executable_from_messages(result.stdout, job.binary) or (
        f"{directory}/{job.target.triple}/{profile_dir}/{job.binary}"
    )


def _build_one(
    box: Container, work: CargoJob, workspace: Workspace, key: str, request: Request
) -> Binary:
    job = work.job
    request.progress(f"build: {job.image} {job.target.name} ({job.profile}) ...")
    for linker in cargo_config.overridden_linkers(workspace.config, job.target):
        console.warn(
            f"{workspace.config.path} sets linker = {linker!r} for {job.target.triple}; factory "
            f"links with its own ({cross.tool(job.target, 'link')}), which overrides it."
        )
    started = time.monotonic()
    inside = _compile(box, work, workspace, key, request.detail)
    built = deliver(box, inside, job, request.dist)
    request.progress(
        f"build: {job.image} {job.target.name} done in {time.monotonic() - started:.1f} s "
        f"({built.size / 1024:.0f} KiB)"
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
        key = vendor_key(workspace.lockfile, request.builder.id)
        spec = ContainerSpec(
            image=request.builder.tag,
            purpose="build",
            mounts=self._mounts(workspace),
            network=False,
            workdir=SRC,
        )
        binaries: list[Binary] = []
        with container(request.engine, spec, keep=request.keep) as box:
            if box.run(["test", "-f", vendor_config(key)], check=False).exit_code != 0:
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
        ca = host_ca_bundle()
        if ca is not None:
            mounts += (Mount(source=str(ca), target=HOST_CA_TARGET, read_only=True, bind=True),)
        spec = ContainerSpec(
            image=request.builder.tag,
            purpose="fetch",
            mounts=mounts,
            network=True,
            environment=fetch_environment(),
            workdir=SRC,
        )
        request.progress(f"fetch: vendoring crates of {workspace.path.name} and std (network on)")
        started = time.monotonic()
        with container(request.engine, spec, keep=request.keep) as box:
            sysroot = box.run(["rustc", "--print", "sysroot"]).stdout.strip()
            try:
                box.run(
                    fetch_command(f"{sysroot}/{STD_LIBRARY}", key, box.name),
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
