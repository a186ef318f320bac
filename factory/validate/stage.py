"""The validation stage, used by `factory validate` and by `factory image`'s pipeline: the ELF
audit, the instruction-set audit and the smoke runs of built binaries, merged into one report.

Input: ``dist/bin/<image>/<target>/<binary>`` (what ``factory build`` wrote) and images.toml's
smoke expectations. Output: this run's ``report.Report``, merged into ``dist/report.json``
(read and written by ``report.ReportFile``, the one reader of that file).

Which binaries are validated: every selected one, unless the caller passes a ``Reuse`` (the
pipeline passes its build stamps); then a binary is skipped when report.json lists its exact
sha256 as passed and the ``Reuse`` trusts the expectations it was judged by. A report.json that
exists but cannot be used (unreadable, another schema) vouches for nothing; the stage says so
and rewrites it with this run's results.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from factory.build.binary import Binary
from factory.engine import builder, pagesize_image
from factory.engine import docker_engine as engine
from factory.errors import ValidationError
from factory.model import config as cfg
from factory.model.dist import Dist
from factory.model.targets import Target
from factory.util import console
from factory.util.console import Progress
from factory.validate import pagesize, runner, smoke
from factory.validate.gate import built_binary
from factory.validate.pagesize import Guest
from factory.validate.report import Report, ReportFile, TargetResult, failure_message
from factory.validate.smoke import LowerLevelResult, Runner, RunResult, SmokeResult

if TYPE_CHECKING:  # the audits load pyelftools and capstone: imported where they run
    from factory.validate.elf import ElfReport
    from factory.validate.isa import IsaReport


@dataclass(frozen=True, kw_only=True)
class Subject:
    """One binary to validate, with its target and its image's smoke expectations."""

    binary: Binary
    target: Target
    smoke: cfg.SmokeConfig

    @property
    def key(self) -> tuple[str, str]:
        return (self.binary.image, self.target.name)


class Reuse(Protocol):
    """What lets a result of an earlier run stand, besides report.json vouching for the bytes."""

    def trusts(self, subject: Subject) -> bool:
        """Whether the subject was judged by the same expectations and validator as now."""
        ...

    def record(self, subject: Subject, result: TargetResult) -> None:
        """Remember a result of this run, so that a later run may reuse it."""
        ...


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What one run of the stage did."""

    report: Report
    """This run's results (none when every subject was reused)."""
    document: dict[str, Any]
    """report.json as it now is: earlier runs' results of other images and targets included."""
    path: Path
    validated: tuple[tuple[str, str], ...]
    reused: tuple[tuple[str, str], ...]

    def require_passed(self) -> None:
        """Raise the one-paragraph ValidationError naming each target that failed in this run."""
        if not self.report.passed:
            raise ValidationError(failure_message(self.report.failing, self.path))


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
            binary = built_binary(dist, image, target.name, profile or config.workspace.profile)
            if binary is None:
                path = dist.binary(image.name, target.name, image.binary)
                missing.append((f"{image.name}/{target.name} ({path})", target.name))
                continue
            subjects.append(Subject(binary=binary, target=target, smoke=image.smoke))
    if missing:
        selection = " ".join(f"-t {name}" for name in dict.fromkeys(t for _, t in missing))
        raise ValidationError(
            f"Nothing to validate for {', '.join(m for m, _ in missing)}: no built binary there. "
            f"Run `factory build {selection}` first, or select built targets with -t."
        )
    return subjects


def audit_isa(path: Path, report: ElfReport) -> IsaReport | None:
    """The instruction counts, when the file is an ELF of a machine capstone knows."""
    if report.facts is None or report.facts.machine not in ("EM_X86_64", "EM_AARCH64"):
        return None
    from factory.validate import isa

    try:
        return isa.audit(path)
    except Exception:  # pyelftools and construct raise many kinds on a corrupt file, which
        # the ELF audit already reports; the counts are only informative
        return None


NO_GUEST = "no page-size guest was given to this validation"


def validate_one(
    subject: Subject, runner: Runner, flags: frozenset[str], guest: Guest | None = None
) -> TargetResult:
    """Audit one binary and run its smoke tests: the normal run, the run on the level below and,
    with ``guest``, the runs under [image.smoke] page_sizes."""
    from factory.validate import elf as elfcheck

    started = time.monotonic()
    binary, target = subject.binary, subject.target
    elf = elfcheck.check(binary.path, target, profile=binary.profile)
    if elf.passed:
        inside = runner.path_of(binary.path)
        ran = smoke.smoke(runner, target, inside, subject.smoke, flags)
        lower = smoke.lower_level(runner, target, inside, subject.smoke)
        pages = (
            pagesize.page_sizes(guest, target, binary.path, subject.smoke)
            if guest is not None
            else pagesize.not_run(subject.smoke, NO_GUEST)
        )
    else:
        codes = ", ".join(sorted({f.code for f in elf.findings if f.severity == "error"}))
        why = f"the ELF audit failed ({codes})"
        ran = SmokeResult(status="not run", reason=why, cpu=None)
        lower = LowerLevelResult(status="not run", reason=why)
        pages = pagesize.not_run(subject.smoke, why)
    return TargetResult(
        binary=binary,
        elf=elf,
        isa=audit_isa(binary.path, elf),
        smoke=ran,
        lower_level=lower,
        page_sizes=pages,
        seconds=time.monotonic() - started,
    )


def open_runner(
    config: cfg.Config, qemu_image: str | None, bin_dir: Path
) -> AbstractContextManager[Runner]:
    """A container of the builder image (or ``qemu_image``) with ``bin_dir`` mounted."""
    client = engine.client()
    image = qemu_image or (
        builder.ensure_builder(
            client, dockerfile=config.dockerfile_path, base=config.builder.base
        ).tag
    )
    return runner.container_runner(client, image, bin_dir)


@contextmanager
def open_guest(config: cfg.Config, progress: Progress) -> Iterator[Guest]:
    """The page-size guest: a container of the page-size image (built on the builder's base
    when missing) with a fresh host folder for the initramfs files."""
    client = engine.client()
    image = pagesize_image.ensure_image(client, base=config.builder.base, log=progress)
    with (
        tempfile.TemporaryDirectory(prefix="factory-guest-") as folder,
        runner.container_runner(client, image, Path(folder)) as running,
    ):
        yield pagesize.QemuGuest(running, Path(folder))


class GuestOnDemand:
    """A ``Guest`` started the first time a binary needs one: an image whose [image.smoke]
    page_sizes asks for none, or with only amd64 targets, never builds or starts it."""

    def __init__(self, start: Callable[[], Guest]) -> None:
        self._start = start
        self._guest: Guest | None = None

    def _started(self) -> Guest:
        if self._guest is None:
            self._guest = self._start()
        return self._guest

    def init(self) -> bytes:
        return self._started().init()

    def boot(self, page_size: int, initramfs: bytes, *, timeout: float) -> RunResult:
        return self._started().boot(page_size, initramfs, timeout=timeout)


def run(
    config: cfg.Config,
    images: Sequence[cfg.ImageConfig],
    targets: Sequence[Target] | None,
    *,
    profile: cfg.Profile | None = None,
    qemu_image: str | None = None,
    reuse: Reuse | None = None,
    progress: Progress = console.info,
) -> Outcome:
    """Validate what the build left (all of it, or what ``reuse`` does not let stand) and merge
    the results into dist/report.json; the caller decides what a failure means.

    ``profile``: the compilation mode the binaries were built with (default: images.toml's).
    """
    dist = Dist.of(config)
    subjects = find_subjects(config, dist, images, targets, profile=profile)
    previous = ReportFile.read(dist.report)
    if previous.status in ("unreadable", "foreign"):
        progress(f"validate: {previous.reason} This run rewrites it; it vouches for nothing.")
    pending = [
        s
        for s in subjects
        if reuse is None or not (previous.vouches_for(s.binary) and reuse.trusts(s))
    ]
    reused = tuple(s.key for s in subjects if s not in pending)
    if reused:
        progress(f"validate: {len(reused)} binary(ies) already validated")
    if not pending:
        document = previous.merged(())
        return Outcome(
            report=Report(results=()),
            document=document,
            path=dist.report,
            validated=(),
            reused=reused,
        )
    with ExitStack() as stack:
        running = stack.enter_context(open_runner(config, qemu_image, dist.bin))
        guest = GuestOnDemand(lambda: stack.enter_context(open_guest(config, progress)))
        report = validate(pending, running, guest=guest, progress=progress)
    document = previous.write_merged(report.results)
    progress(f"validate: wrote {dist.report} ({len(document['results'])} results)")
    if reuse is not None:
        by_key = {s.key: s for s in pending}
        for result in report.results:
            reuse.record(by_key[(result.image, result.target)], result)
    validated = tuple(s.key for s in pending)
    return Outcome(
        report=report, document=document, path=dist.report, validated=validated, reused=reused
    )


def validate(
    subjects: Sequence[Subject],
    runner: Runner,
    *,
    guest: Guest | None = None,
    progress: Progress,
) -> Report:
    """Validate every subject in order; each result is reported through ``progress``."""
    flags = smoke.host_flags(runner)
    results: list[TargetResult] = []
    for subject in subjects:
        progress(f"validate: {subject.binary.image}/{subject.target.name} ...")
        result = validate_one(subject, runner, flags, guest)
        verdict = "passed" if result.passed else "FAILED: " + "; ".join(result.problems)
        progress(f"validate: {result.image}/{result.target} {verdict} ({result.seconds:.1f} s)")
        results.append(result)
    return Report(results=tuple(results))
