"""Which built binaries may be packed: the build's output, checked against the validation report.

`dist/bin/<image>/<target>/<binary>` is what `factory build` leaves; `dist/report.json`
(factory.report/v1) is what `factory validate` concluded. A binary may go into an image only
when the report lists its exact sha256, for that image and target, as passed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from factory.build.binary import Binary
from factory.errors import UsageError, ValidationError
from factory.model import config as cfg
from factory.model.dist import Dist
from factory.model.targets import Target
from factory.validate.report import SCHEMA as REPORT_SCHEMA

_BUILD_FIRST = "run `factory build` and `factory validate` first"


def find_binaries(
    dist: Dist, image: cfg.ImageConfig, targets: Sequence[Target], profile: cfg.Profile
) -> list[Binary]:
    """The built binary of every target; a missing one is an error naming the fix."""
    found: list[Binary] = []
    missing: list[str] = []
    for target in targets:
        path = dist.binary(image.name, target.name, image.binary)
        if not path.is_file():
            missing.append(target.name)
            continue
        found.append(Binary.from_disk(path, image=image.name, target=target.name, profile=profile))
    if missing:
        where = dist.binary(image.name, "<target>", image.binary)
        selection = " ".join(f"-t {name}" for name in missing)
        raise UsageError(
            f"Image {image.name!r}: no built binary for {', '.join(missing)} (looked for "
            f"{where}). Nothing to assemble: {_BUILD_FIRST} "
            f"(`factory build {selection}` then `factory validate {selection}`)."
        )
    return found


def passed_binaries(report_path: Path) -> dict[tuple[str, str], set[str]]:
    """(image, target) -> the sha256 of every binary report.json says passed validation."""
    try:
        document = json.loads(report_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValidationError(
            f"{report_path} does not exist: no binary has been validated. {_BUILD_FIRST}."
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValidationError(
            f"{report_path} cannot be read ({err}). Run `factory validate` again to rewrite it."
        ) from None
    if not isinstance(document, dict) or document.get("schema") != REPORT_SCHEMA:
        raise ValidationError(
            f"{report_path} is not a {REPORT_SCHEMA} report. Run `factory validate` again."
        )
    passed: dict[tuple[str, str], set[str]] = {}
    for entry in document.get("results", []):
        if isinstance(entry, dict) and entry.get("passed") is True:
            key = (str(entry.get("image")), str(entry.get("target")))
            passed.setdefault(key, set()).add(str(entry.get("sha256", "")).removeprefix("sha256:"))
    return passed


def check_validated(binaries: Sequence[Binary], report_path: Path) -> None:
    """Refuse any binary whose exact bytes did not pass validation."""
    passed = passed_binaries(report_path)
    refused = [b for b in binaries if b.sha256 not in passed.get((b.image, b.target), set())]
    if not refused:
        return
    lines = []
    for b in refused:
        why = (
            "a different binary passed: it was rebuilt since"
            if passed.get((b.image, b.target))
            else "it has not passed validation"
        )
        lines.append(f"{b.image}/{b.target} ({b.path}, sha256 {b.sha256[:12]}): {why}")
    selection = " ".join(f"-t {b.target}" for b in refused)
    raise ValidationError(
        f"Refusing to pack binaries that {report_path} does not list as passed: "
        f"{'; '.join(lines)}. Run `factory validate {selection}` and fix what it reports."
    )
