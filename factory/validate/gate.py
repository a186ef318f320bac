"""Which built binaries may be packed: the build's output, checked against the validation report.

`dist/bin/<image>/<target>/<binary>` is what `factory build` leaves; `dist/report.json`
(factory.report/v1) is what `factory validate` concluded. A binary may go into an image only
when the report lists its exact sha256, for that image and target, as passed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from factory.build.binary import Binary
from factory.errors import UsageError, ValidationError
from factory.model import config as cfg
from factory.model.dist import Dist
from factory.model.targets import Target
from factory.validate.report import ReportFile


def built_binary(
    dist: Dist, image: cfg.ImageConfig, target: str, profile: cfg.Profile
) -> Binary | None:
    """The binary the build left for image and target, digested now; None when there is none."""
    path = dist.binary(image.name, target, image.binary)
    if not path.is_file():
        return None
    return Binary.from_disk(path, image=image.name, target=target, profile=profile)


def find_binaries(
    dist: Dist, image: cfg.ImageConfig, targets: Sequence[Target], profile: cfg.Profile
) -> list[Binary]:
    """The built binary of every target; a missing one is an error naming the fix."""
    found: list[Binary] = []
    missing: list[str] = []
    for target in targets:
        binary = built_binary(dist, image, target.name, profile)
        if binary is None:
            missing.append(target.name)
        else:
            found.append(binary)
    if missing:
        where = dist.binary(image.name, "<target>", image.binary)
        selection = " ".join(f"-t {name}" for name in missing)
        raise UsageError(
            f"Image {image.name!r}: no built binary for {', '.join(missing)} (looked for "
            f"{where}). Nothing to assemble: run `factory build` and `factory validate` first "
            f"(`factory build {selection}` then `factory validate {selection}`)."
        )
    return found


def check_validated(binaries: Sequence[Binary], report_path: Path) -> None:
    """Refuse any binary whose exact bytes did not pass validation.

    A report.json that is missing, unreadable or of another schema refuses everything, with
    the fix (``ReportFile.require``): the gate never packs what no report vouches for.
    """
    report = ReportFile.read(report_path).require()
    refused = [b for b in binaries if not report.vouches_for(b)]
    if not refused:
        return
    lines = []
    for b in refused:
        why = (
            "a different binary passed: it was rebuilt since"
            if report.passed_sha256(b.image, b.target) is not None
            else "it has not passed validation"
        )
        lines.append(f"{b.image}/{b.target} ({b.path}, sha256 {b.sha256[:12]}): {why}")
    selection = " ".join(f"-t {b.target}" for b in refused)
    raise ValidationError(
        f"Refusing to pack binaries that {report_path} does not list as passed: "
        f"{'; '.join(lines)}. Run `factory validate {selection}` and fix what it reports."
    )
