"""The whole job, stage after stage, each skipped when what it would make is up to date.

builder → build → validate → assemble → (load, push). Every stage reads the previous one's
output from disk, so the standalone commands and this pipeline agree. Up to date means:

- build: the binary exists, and its stamp (dist/bin/<image>/<target>/.factory-build.json)
  records the same fingerprint (builder image, driver, profile, target flags, workspace
  sources) and the binary's sha256;
- validate: dist/report.json lists that sha256 as passed for the image and target, and the stamp
  records the same smoke expectations.

One run at a time holds dist/.lock; a second run waits and says for whom.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from factory.build import driver as drivers
from factory.build.binary import Binary
from factory.build.job import Request
from factory.engine import builder as builder_image
from factory.engine import docker_engine as engine
from factory.errors import ValidationError
from factory.image.assemble import LayoutResult, assemble
from factory.model import config as cfg
from factory.model.dist import Dist
from factory.model.targets import Target
from factory.util import console, fsutil
from factory.validate.report import failure_message, read_entries

_SKIP_DIRS: Final = frozenset({"target", ".git", "dist", "node_modules", ".venv"})
# The code a build or a validation result depends on, by module or package name (a package
# counts with every module in it). A name that does not resolve fails loudly.
_DRIVER_CODE: Final = ("factory.build", "factory.model.targets")
_VALIDATOR_CODE: Final = ("factory.validate", "factory.model.targets")


@dataclass(frozen=True, kw_only=True)
class Unit:
    """One image x target."""

    image: cfg.ImageConfig
    target: Target

    @property
    def key(self) -> tuple[str, str]:
        return (self.image.name, self.target.name)


@dataclass(frozen=True, kw_only=True)
class StageTimes:
    seconds: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, float]:
        return {k: round(v, 3) for k, v in self.seconds.items()}


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What the build and validate stages did, for the summary."""

    built: tuple[tuple[str, str], ...]
    reused: tuple[tuple[str, str], ...]
    validated: tuple[tuple[str, str], ...]
    trusted: tuple[tuple[str, str], ...]
    layouts: tuple[LayoutResult, ...]
    times: StageTimes
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        def names(units: Sequence[tuple[str, str]]) -> list[str]:
            return [f"{i}/{t}" for i, t in units]

        return {
            "built": names(self.built),
            "up_to_date": names(self.reused),
            "validated": names(self.validated),
            "validation_reused": names(self.trusted),
            "seconds": self.times.to_json(),
            "note": self.note,
        }


# --- fingerprints -------------------------------------------------------------------------


def _walk(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("bazel-")
        )
        for name in sorted(filenames):
            yield Path(dirpath) / name


def tree_digest(root: Path) -> str:
    """A digest of a source tree's files (names, executable bits, contents)."""
    digest = hashlib.sha256()
    for path in _walk(root):
        if path.is_symlink() or not path.is_file():
            continue
        rel = path.relative_to(root).as_posix()
        executable = os.access(path, os.X_OK)
        digest.update(f"{rel}\0{int(executable)}\0".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _module_files(name: str) -> list[Path]:
    """The source files of a module, or of every module of a package, found without importing
    them (the validators load pyelftools and capstone)."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise RuntimeError(f"fingerprint: factory module {name} not found")
    origin = Path(spec.origin)
    if spec.submodule_search_locations is None:
        return [origin]
    return sorted(origin.parent.rglob("*.py"))


@functools.cache
def _code_digest(modules: tuple[str, ...]) -> str:
    """A digest of some of factory's own modules: a change to them invalidates stamps.
    Read once per process (every unit's fingerprint asks)."""
    digest = hashlib.sha256()
    for name in modules:
        for path in _module_files(name):
            digest.update(f"{name}:{path.name}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def build_fingerprint(
    *, builder_tag: str, driver: str, profile: str, unit: Unit, sources: str
) -> str:
    document = {
        "builder": builder_tag,
        "driver": driver,
        "driver_code": _code_digest(_DRIVER_CODE),
        "profile": profile,
        "target": unit.target.to_json(),
        "package": unit.image.cargo_package,
        "binary": unit.image.binary,
        "bazel_label": unit.image.bazel_label,
        "sources": sources,
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def smoke_fingerprint(smoke: cfg.SmokeConfig, profile: str) -> str:
    document = {
        "args": list(smoke.args),
        "stdout": smoke.stdout,
        "exit_code": smoke.exit_code,
        "timeout": smoke.timeout,
        "profile": profile,
        "validator": _code_digest(_VALIDATOR_CODE),
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


# --- stamps -------------------------------------------------------------------------------


def read_stamp(dist: Dist, unit: Unit) -> dict[str, Any]:
    try:
        document = json.loads(dist.stamp(*unit.key).read_text())
    except (OSError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}


def write_stamp(dist: Dist, unit: Unit, document: dict[str, Any]) -> None:
    fsutil.atomic_write_json(dist.stamp(*unit.key), document)


def binary_on_disk(dist: Dist, unit: Unit, profile: cfg.Profile) -> Binary | None:
    path = dist.binary(unit.image.name, unit.target.name, unit.image.binary)
    if not path.is_file():
        return None
    return Binary.from_disk(path, image=unit.image.name, target=unit.target.name, profile=profile)


# --- the pipeline -------------------------------------------------------------------------

Progress = Callable[[str], None]


def units_of(images: Sequence[cfg.ImageConfig], targets: Sequence[Target] | None) -> list[Unit]:
    return [
        Unit(image=image, target=target)
        for image in images
        for target in (targets if targets is not None else image.resolved_targets)
    ]


def build_and_validate(
    config: cfg.Config,
    units: Sequence[Unit],
    *,
    profile: cfg.Profile,
    rebuild: bool = False,
    times: StageTimes,
    progress: Progress = console.info,
) -> tuple[list[Unit], list[Unit]]:
    """Stages 1-3. Returns the units compiled and the units validated by this run."""
    client = engine.client()
    started = time.monotonic()
    builder = builder_image.ensure_builder(
        client, dockerfile=config.dockerfile_path, base=config.builder.base, progress=progress
    )
    times.seconds["builder"] = time.monotonic() - started
    started = time.monotonic()
    built = build_stage(
        config, client, builder, units, profile=profile, rebuild=rebuild, progress=progress
    )
    times.seconds["build"] = time.monotonic() - started
    started = time.monotonic()
    validated = validate_stage(config, units, profile=profile, progress=progress)
    times.seconds["validate"] = time.monotonic() - started
    return built, validated


def build_stage(
    config: cfg.Config,
    client: Any,
    builder: builder_image.BuilderImage,
    units: Sequence[Unit],
    *,
    profile: cfg.Profile,
    rebuild: bool,
    progress: Progress,
    driver: cfg.Driver | None = None,
) -> list[Unit]:
    """Compile the units whose binary is missing or whose stamp's fingerprint changed."""
    driver = driver or config.workspace.driver
    dist = Dist.of(config)
    sources = tree_digest(config.workspace_path)
    fingerprints = {
        u.key: build_fingerprint(
            builder_tag=builder.tag,
            driver=driver,
            profile=profile,
            unit=u,
            sources=sources,
        )
        for u in units
    }

    def fresh(unit: Unit) -> bool:
        stamp = read_stamp(dist, unit)
        on_disk = binary_on_disk(dist, unit, profile)
        return (
            not rebuild
            and on_disk is not None
            and stamp.get("fingerprint") == fingerprints[unit.key]
            and stamp.get("sha256") == on_disk.sha256
        )

    stale = [u for u in units if not fresh(u)]
    if len(stale) < len(units):
        progress(f"build: {len(units) - len(stale)} binary(ies) up to date, not rebuilt")
    if not stale:
        return []
    artifacts = {
        (a.image, a.target): a
        for a in _compile(config, client, builder, stale, profile, driver, progress=progress)
    }
    for unit in stale:
        stamp = {"fingerprint": fingerprints[unit.key], "sha256": artifacts[unit.key].sha256}
        write_stamp(dist, unit, stamp)
    return stale


def validate_stage(
    config: cfg.Config, units: Sequence[Unit], *, profile: cfg.Profile, progress: Progress
) -> list[Unit]:
    """Validate the units that report.json does not already vouch for; merge the report."""
    dist = Dist.of(config)
    report_path = dist.report
    previous = read_entries(report_path)

    def trusted(unit: Unit) -> bool:
        on_disk = binary_on_disk(dist, unit, profile)
        entry = previous.get(unit.key, {})
        return (
            on_disk is not None
            and entry.get("passed") is True
            and entry.get("sha256") == on_disk.sha256
            and read_stamp(dist, unit).get("smoke") == smoke_fingerprint(unit.image.smoke, profile)
        )

    pending = [u for u in units if not trusted(u)]
    if len(pending) < len(units):
        progress(f"validate: {len(units) - len(pending)} binary(ies) already validated")
    if not pending:
        return []
    from factory.validate import (
        stage as validate,  # loads pyelftools and capstone: only when there is work
    )

    subjects: list[validate.Subject] = []
    for unit in pending:
        subjects += validate.find_subjects(
            config, dist, [unit.image], [unit.target], profile=profile
        )
    with validate.open_runner(config, None, dist.bin) as running:
        report = validate.validate(subjects, running, progress=progress)
    report.write_merged(report_path)
    by_key = {u.key: u for u in pending}
    for result in report.results:
        unit = by_key[(result.image, result.target)]
        stamp = read_stamp(dist, unit)
        if result.passed and stamp.get("sha256") == result.binary.sha256:
            stamp["smoke"] = smoke_fingerprint(unit.image.smoke, profile)
            write_stamp(dist, unit, stamp)
    if not report.passed:
        raise ValidationError(failure_message(report.failing, report_path))
    return pending


def _compile(
    config: cfg.Config,
    client: Any,
    builder: builder_image.BuilderImage,
    units: Sequence[Unit],
    profile: cfg.Profile,
    driver: cfg.Driver,
    *,
    progress: Progress,
) -> list[Binary]:
    wanted: dict[str, list[Target]] = {}
    for unit in units:
        wanted.setdefault(unit.image.name, []).append(unit.target)
    images = list({u.image.name: u.image for u in units}.values())
    return compile_images(
        config,
        client,
        builder,
        images,
        lambda image: wanted[image.name],
        profile,
        driver,
        progress=progress,
    )


def compile_images(
    config: cfg.Config,
    client: Any,
    builder: builder_image.BuilderImage,
    images: Sequence[cfg.ImageConfig],
    targets_of: Callable[[cfg.ImageConfig], Sequence[Target]],
    profile: cfg.Profile,
    driver: cfg.Driver,
    *,
    progress: Progress,
) -> list[Binary]:
    """Compile with the driver of that name (factory.build.driver.DRIVERS); every driver
    returns the same Binary records."""
    request = Request(
        engine=client,
        builder=builder,
        workspace=config.workspace_path,
        images=images,
        targets_of=targets_of,
        profile=profile,
        dist=Dist.of(config),
        progress=progress,
        detail=console.detail,
        keep=console.options().debug,
        bazel=config.bazel,
        bazel_dockerfile=config.dockerfile_path.with_name("bazel.Dockerfile"),
    )
    # Looked up when called: the benchmarks put a Cargo driver with its own cache volume there.
    return drivers.DRIVERS[driver].build(request)


def run(
    config: cfg.Config,
    images: Sequence[cfg.ImageConfig],
    targets: Sequence[Target] | None,
    *,
    profile: cfg.Profile,
    out_dir: Path,
    tags: Sequence[str] | None,
    skip_build: bool = False,
    rebuild: bool = False,
    progress: Progress = console.info,
) -> Outcome:
    """Stages 1-4 under dist/.lock; loading and pushing are the caller's (they need no lock)."""
    times = StageTimes()
    units = units_of(images, targets)
    with fsutil.exclusive(Dist.of(config).lock, what="dist/", wait_message=progress):
        built: list[Unit] = []
        validated: list[Unit] = []
        if not skip_build:
            built, validated = build_and_validate(
                config, units, profile=profile, rebuild=rebuild, times=times, progress=progress
            )
        started = time.monotonic()
        layouts = assemble(config, images, targets, out_dir, tags=tags, profile=profile)
        times.seconds["assemble"] = time.monotonic() - started
    skipped = "skipped (--no-build)"
    return Outcome(
        built=tuple(u.key for u in built),
        reused=tuple(u.key for u in units if u not in built and not skip_build),
        validated=tuple(u.key for u in validated),
        trusted=tuple(u.key for u in units if u not in validated and not skip_build),
        note=skipped if skip_build else "",
        layouts=tuple(layouts),
        times=times,
    )
