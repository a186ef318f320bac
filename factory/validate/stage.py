"""Validation of built binaries: ELF audit, instruction-set audit, smoke runs, one report.

Input: ``dist/bin/<image>/<target>/<binary>`` (what ``factory build`` wrote) and images.toml's
smoke expectations. Output: a ``report.Report``; the command writes it to ``dist/report.json``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from factory.build.binary import Binary
from factory.engine import builder
from factory.engine import docker_engine as engine
from factory.errors import ValidationError
from factory.model import config as cfg
from factory.model.dist import Dist
from factory.model.targets import Target
from factory.util import console
from factory.validate import elf as elfcheck
from factory.validate import isa, runner
from factory.validate import smoke as emulate
from factory.validate.report import Report, TargetResult
from factory.validate.smoke import LowerLevelResult, Runner, SmokeResult

Progress = Callable[[str], None]


@dataclass(frozen=True, kw_only=True)
class Subject:
    """One binary to validate, with its target and its image's smoke expectations."""

    binary: Binary
    target: Target
    smoke: cfg.SmokeConfig


class ArtifactRunner(Runner, Protocol):
    """A runner that can also say where it sees a host file."""

    def path_of(self, host_path: Path) -> str: ...


def find_subjects(
    config: cfg.Config,
    dist: Dist,
    images: Sequence[cfg.ImageConfig],
    targets: Sequence[Target] | None,
    *,
    profile: cfg.Profile | None = None,
) -> list[Subject]:
    """The built binary of each selected image and target; missing ones are an error."""
    subjects: list[Subject] = []
    missing: list[tuple[str, str]] = []
    for image in images:
        for target in targets if targets is not None else image.resolved_targets:
            path = dist.binary(image.name, target.name, image.binary)
            if not path.is_file():
                missing.append((f"{image.name}/{target.name} ({path})", target.name))
                continue
            binary = Binary.from_disk(
                path,
                image=image.name,
                target=target.name,
                profile=profile or config.workspace.profile,
            )
            subjects.append(Subject(binary=binary, target=target, smoke=image.smoke))
    if missing:
        selection = " ".join(f"-t {name}" for name in dict.fromkeys(t for _, t in missing))
        raise ValidationError(
            f"Nothing to validate for {', '.join(m for m, _ in missing)}: no built binary there. "
            f"Run `factory build {selection}` first, or select built targets with -t."
        )
    return subjects


def audit_isa(path: Path, report: elfcheck.ElfReport) -> isa.IsaReport | None:
    """The instruction counts, when the file is an ELF of a machine capstone knows."""
    if report.facts is None or report.facts.machine not in ("EM_X86_64", "EM_AARCH64"):
        return None
    try:
        return isa.audit(path)
    except Exception:  # pyelftools and construct raise many kinds on a corrupt file, which
        # the ELF audit already reports; the counts are only informative
        return None


def validate_one(subject: Subject, runner: ArtifactRunner, flags: frozenset[str]) -> TargetResult:
    started = time.monotonic()
    binary, target = subject.binary, subject.target
    elf = elfcheck.check(binary.path, target, profile=binary.profile)
    if elf.passed:
        inside = runner.path_of(binary.path)
        smoke = emulate.smoke(runner, target, inside, subject.smoke, flags)
        lower = emulate.lower_level(runner, target, inside, subject.smoke)
    else:
        codes = ", ".join(sorted({f.code for f in elf.findings if f.severity == "error"}))
        why = f"the ELF audit failed ({codes})"
        smoke = SmokeResult(status="not run", reason=why, cpu=None)
        lower = LowerLevelResult(status="not run", reason=why)
    return TargetResult(
        binary=binary,
        elf=elf,
        isa=audit_isa(binary.path, elf),
        smoke=smoke,
        lower_level=lower,
        seconds=time.monotonic() - started,
    )


def open_runner(
    config: cfg.Config, qemu_image: str | None, bin_dir: Path
) -> AbstractContextManager[ArtifactRunner]:
    """A container of the builder image (or ``qemu_image``) with ``bin_dir`` mounted."""
    client = engine.client()
    image = qemu_image or (
        builder.ensure_builder(
            client, dockerfile=config.dockerfile_path, base=config.builder.base
        ).tag
    )
    return runner.container_runner(client, image, bin_dir)


def run(
    config: cfg.Config,
    images: Sequence[cfg.ImageConfig],
    targets: Sequence[Target] | None,
    *,
    profile: cfg.Profile | None = None,
    qemu_image: str | None = None,
    progress: Progress = console.info,
) -> tuple[Report, dict[str, Any], Path]:
    """The validation stage: validate what the build left, merge it into dist/report.json.

    ``profile``: the compilation mode the binaries were built with (default: images.toml's).

    Returns this run's report, the document now on disk (earlier runs' results of other images
    and targets included) and its path; the caller decides what a failure means.
    """
    dist = Dist.of(config)
    subjects = find_subjects(config, dist, images, targets, profile=profile)
    with open_runner(config, qemu_image, dist.bin) as running:
        report = validate(subjects, running, progress=progress)
    path = dist.report
    document = report.write_merged(path)
    progress(f"validate: wrote {path} ({len(document['results'])} results)")
    return report, document, path


def validate(subjects: Sequence[Subject], runner: ArtifactRunner, *, progress: Progress) -> Report:
    """Validate every subject in order; each result is reported through ``progress``."""
    flags = emulate.host_flags(runner)
    results: list[TargetResult] = []
    for subject in subjects:
        progress(f"validate: {subject.binary.image}/{subject.target.name} ...")
        result = validate_one(subject, runner, flags)
        verdict = "passed" if result.passed else "FAILED: " + "; ".join(result.problems)
        progress(f"validate: {result.image}/{result.target} {verdict} ({result.seconds:.1f} s)")
        results.append(result)
    return Report(results=tuple(results))
