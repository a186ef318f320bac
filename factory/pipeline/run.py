"""The whole job, stage after stage, each skipped when what it would make is up to date.

builder → build → validate → assemble → (load, push). Every stage reads the previous one's
output from disk, so the standalone commands and this pipeline agree. Up to date means:

- build: the binary exists, and its stamp (dist/bin/<image>/<target>/.factory-build.json,
  see ``stamps``) records the same fingerprint (builder image, driver, profile, target flags,
  workspace sources) and the binary's sha256;
- validate: the validation stage of `factory validate` (``validate.stage``), given the stamps as
  its ``Reuse``: dist/report.json lists that sha256 as passed for the image and target, and the
  stamp records the same smoke expectations.

One run at a time holds dist/.lock; a second run waits and says for whom.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from factory.build import driver as drivers
from factory.build.binary import Binary
from factory.build.job import Request
from factory.engine import builder as builder_image
from factory.engine import docker_engine as engine
from factory.image.assemble import LayoutResult, assemble
from factory.model import config as cfg
from factory.model.dist import Dist
from factory.model.targets import Target
from factory.pipeline.stamps import (
    SmokeStamps,
    build_fingerprint,
    read_stamp,
    tree_digest,
    write_stamp,
)
from factory.util import console, fsutil, meter
from factory.util.console import Progress
from factory.validate import stage as validation
from factory.validate.gate import built_binary


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


# --- the pipeline -------------------------------------------------------------------------


def units_of(images: Sequence[cfg.ImageConfig], targets: Sequence[Target] | None) -> list[Unit]:
    return [
        Unit(image=image, target=target)
        for image in images
        for target in (targets if targets is not None else image.resolved_targets)
    ]


def build_and_validate(
    config: cfg.Config,
    images: Sequence[cfg.ImageConfig],
    targets: Sequence[Target] | None,
    *,
    profile: cfg.Profile,
    rebuild: bool = False,
    times: StageTimes,
    progress: Progress = console.info,
    jobs: int | None = None,
) -> tuple[list[Unit], validation.Outcome]:
    """Stages 1-3. Returns the units compiled and what the validation stage did."""
    client = engine.client()
    started = time.monotonic()
    builder = builder_image.ensure_builder(
        client, dockerfile=config.dockerfile_path, base=config.builder.base, progress=progress
    )
    times.seconds["builder"] = time.monotonic() - started
    started = time.monotonic()
    units = units_of(images, targets)
    built = build_stage(
        config,
        client,
        builder,
        units,
        profile=profile,
        rebuild=rebuild,
        progress=progress,
        jobs=jobs,
    )
    times.seconds["build"] = time.monotonic() - started
    started = time.monotonic()
    validated = validate_stage(
        config, images, targets, profile=profile, runner_image=builder.tag, progress=progress
    )
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
    jobs: int | None = None,
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
            image=u.image,
            target=u.target,
            sources=sources,
        )
        for u in units
    }

    def fresh(unit: Unit) -> bool:
        stamp = read_stamp(dist, *unit.key)
        on_disk = built_binary(dist, unit.image, unit.target.name, profile)
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
    binaries = {
        (b.image, b.target): b
        for b in _compile(
            config, client, builder, stale, profile, driver, progress=progress, jobs=jobs
        )
    }
    for unit in stale:
        stamp = {"fingerprint": fingerprints[unit.key], "sha256": binaries[unit.key].sha256}
        write_stamp(dist, *unit.key, stamp)
    return stale


def validate_stage(
    config: cfg.Config,
    images: Sequence[cfg.ImageConfig],
    targets: Sequence[Target] | None,
    *,
    profile: cfg.Profile,
    runner_image: str | None = None,
    progress: Progress,
) -> validation.Outcome:
    """Stage 3, the validation stage with the build stamps as its ``Reuse``: what report.json
    and the stamps already vouch for is not validated again. A failure stops the pipeline.
    ``runner_image``: the builder the build stage resolved (else it is resolved again)."""
    reuse = SmokeStamps(dist=Dist.of(config), profile=profile)
    outcome = validation.run(
        config,
        images,
        targets,
        profile=profile,
        qemu_image=runner_image,
        reuse=reuse,
        progress=progress,
    )
    outcome.require_passed()
    return outcome


def _compile(
    config: cfg.Config,
    client: Any,
    builder: builder_image.BuilderImage,
    units: Sequence[Unit],
    profile: cfg.Profile,
    driver: cfg.Driver,
    *,
    progress: Progress,
    jobs: int | None,
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
        jobs=jobs,
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
    jobs: int | None = None,
) -> list[Binary]:
    """Compile with the driver of that name (factory.build.driver.DRIVERS); every driver
    returns the same Binary records. ``jobs``: targets at once (--jobs; None: the default)."""
    with meter.for_console(progress) as display:
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
            cache=config.cache,
            parallel=jobs,
            meter=display,
        )
        # Looked up when called: the benchmarks put a Cargo driver with its own volume there.
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
    jobs: int | None = None,
) -> Outcome:
    """Stages 1-4 under dist/.lock; loading and pushing are the caller's (they need no lock)."""
    times = StageTimes()
    units = units_of(images, targets)
    with fsutil.exclusive(Dist.of(config).lock, what="dist/", wait_message=progress):
        built: list[Unit] = []
        validated: tuple[tuple[str, str], ...] = ()
        trusted: tuple[tuple[str, str], ...] = ()
        if not skip_build:
            built, outcome = build_and_validate(
                config,
                images,
                targets,
                profile=profile,
                rebuild=rebuild,
                times=times,
                progress=progress,
                jobs=jobs,
            )
            validated, trusted = outcome.validated, outcome.reused
        started = time.monotonic()
        layouts = assemble(config, images, targets, out_dir, tags=tags, profile=profile)
        times.seconds["assemble"] = time.monotonic() - started
    skipped = "skipped (--no-build)"
    return Outcome(
        built=tuple(u.key for u in built),
        reused=tuple(u.key for u in units if u not in built and not skip_build),
        validated=validated,
        trusted=trusted,
        note=skipped if skip_build else "",
        layouts=tuple(layouts),
        times=times,
    )
