"""Validation results: one record per binary, shown as a table or a versioned JSON document.

``dist/report.json`` (schema ``factory.report/v1``) is what the image stage trusts: it packs a
binary only when the document lists that binary's sha256 with ``"passed": true``. Its keys are
locked by a unit test; change them only with a new schema version.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from factory.errors import ValidationError
from factory.model.targets import TARGETS
from factory.util.fsutil import atomic_write_json

if TYPE_CHECKING:  # the audits' modules load pyelftools and capstone: only for types here
    from factory.build.binary import Binary
    from factory.validate.elf import ElfReport
    from factory.validate.isa import IsaReport
    from factory.validate.pagesize import PageSizeResult
    from factory.validate.smoke import LowerLevelResult, SmokeResult

SCHEMA: Final = "factory.report/v1"
COLUMNS: Final = [
    "image",
    "target",
    "result",
    "static",
    "machine",
    "libc",
    "stripped",
    "isa",
    "smoke",
    "level below",
    "pages",
    "time",
]
_MACHINES: Final = {"EM_X86_64": "x86-64", "EM_AARCH64": "AArch64"}


@dataclass(frozen=True, kw_only=True)
class TargetResult:
    """Everything validation found out about one binary."""

    binary: Binary
    elf: ElfReport
    isa: IsaReport | None
    smoke: SmokeResult
    lower_level: LowerLevelResult
    seconds: float
    page_sizes: tuple[PageSizeResult, ...] = ()
    """The smoke runs under kernels of other page sizes ([image.smoke] page_sizes)."""

    @property
    def image(self) -> str:
        return self.binary.image

    @property
    def target(self) -> str:
        return self.binary.target

    @property
    def passed(self) -> bool:
        """The ELF audit found no error and no smoke run (normal or under another page size)
        failed.

        A smoke run that could not happen on this host (amd64_v4 without AVX-512, 16K pages
        for an amd64 target) does not fail the binary: the reason is in the report.
        """
        return (
            self.elf.passed
            and self.smoke.status != "failed"
            and all(run.status != "failed" for run in self.page_sizes)
        )

    @property
    def problems(self) -> list[str]:
        """Why it failed, one short phrase each (empty when it passed)."""
        found = [f"{f.code}: {f.message}" for f in self.elf.findings if f.severity == "error"]
        if self.smoke.status == "failed":
            found.append(f"smoke: {self.smoke.reason}")
        found.extend(
            f"smoke with {run.label} pages: {run.reason}"
            for run in self.page_sizes
            if run.status == "failed"
        )
        return found

    def to_json(self) -> dict[str, Any]:
        return {
            **self.binary.to_json(),  # image, target, path, sha256, size
            "profile": self.binary.profile,
            "passed": self.passed,
            "seconds": round(self.seconds, 3),
            "elf": self.elf.to_json(),
            "isa": self.isa.to_json() if self.isa else None,
            "smoke": self.smoke.to_json(),
            "lower_level": self.lower_level.to_json(),
            "page_sizes": [run.to_json() for run in self.page_sizes],
        }

    def row(self) -> list[str]:
        facts = self.elf.facts
        codes = sorted({f.code for f in self.elf.findings if f.severity == "error"})
        failed = codes + (["smoke"] if self.smoke.status == "failed" else [])
        failed += [f"smoke {run.label}" for run in self.page_sizes if run.status == "failed"]
        cpu = self.smoke.cpu
        from factory.validate.smoke import NATIVE

        where = " natively" if cpu == NATIVE else (f" on {cpu}" if cpu else "")
        smoke = self.smoke.status + where
        if self.smoke.status != "passed":
            smoke += f": {self.smoke.reason}"
        lower = self.lower_level
        return [
            self.image,
            self.target,
            "ok" if self.passed else "FAILED (" + ", ".join(failed) + ")",
            facts.linkage if facts else "-",
            _MACHINES.get(facts.machine, facts.machine) if facts else "-",
            facts.libc if facts else "-",
            ("yes" if facts.stripped else "no") if facts else "-",
            self.isa.summary() if self.isa else "-",
            smoke,
            f"{lower.status} on {lower.cpu}" if lower.cpu else "-",
            ", ".join(f"{run.label} {run.status}" for run in self.page_sizes) or "-",
            f"{self.seconds:.1f} s",
        ]


@dataclass(frozen=True, kw_only=True)
class Report:
    results: tuple[TargetResult, ...]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failing(self) -> list[TargetResult]:
        return [r for r in self.results if not r.passed]

    def rows(self) -> list[list[str]]:
        return [r.row() for r in self.results]


_VALIDATE_AGAIN: Final = "Run `factory validate` again to rewrite it."
ReportStatus = Literal["read", "missing", "unreadable", "foreign"]


@dataclass(frozen=True, kw_only=True)
class ReportFile:
    """dist/report.json as it is on disk: the one reader of the document.

    Reading never raises: a missing file, one that cannot be read or parsed, and a document of
    another schema (or one without a results list) are each a ``status`` with a ``reason``, and
    each caller decides what that means:

    - the validation stage (``factory validate``, ``factory image``) replaces such a file with its
      own results and says so when the file was there but not usable (nothing is trusted from it);
    - the image gate (``validate.gate``) refuses to pack anything: ``require`` raises.
    """

    path: Path
    status: ReportStatus
    reason: str
    """Why the file is not usable, one sentence naming it (empty when ``status`` is read)."""
    entries: Mapping[tuple[str, str], Mapping[str, Any]]
    """The results by (image, target); empty unless ``status`` is read."""

    @classmethod
    def read(cls, path: Path) -> ReportFile:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls._unusable(
                path, "missing", f"{path} does not exist: no binary has been validated."
            )
        except (OSError, UnicodeDecodeError, ValueError) as err:
            return cls._unusable(path, "unreadable", f"{path} cannot be read ({err}).")
        schema = document.get("schema") if isinstance(document, dict) else None
        results = document.get("results") if isinstance(document, dict) else None
        if schema != SCHEMA or not isinstance(results, list):
            found = f"schema {schema!r}" if schema != SCHEMA else "no results list"
            return cls._unusable(path, "foreign", f"{path} is not a {SCHEMA} report ({found}).")
        entries = {
            (str(entry["image"]), str(entry["target"])): entry
            for entry in results
            if isinstance(entry, dict) and "image" in entry and "target" in entry
        }
        return cls(path=path, status="read", reason="", entries=entries)

    @classmethod
    def _unusable(cls, path: Path, status: ReportStatus, reason: str) -> ReportFile:
        return cls(path=path, status=status, reason=reason, entries={})

    def require(self) -> ReportFile:
        """This report, or a ValidationError saying why there is none to trust and the fix."""
        if self.status == "missing":
            raise ValidationError(
                f"{self.reason} run `factory build` and `factory validate` first."
            )
        if self.status != "read":
            raise ValidationError(f"{self.reason} {_VALIDATE_AGAIN}")
        return self

    def passed_sha256(self, image: str, target: str) -> str | None:
        """The sha256 (hex) of the binary this report lists as passed for image and target."""
        entry = self.entries.get((image, target), {})
        if entry.get("passed") is not True:
            return None
        return str(entry.get("sha256", "")).removeprefix("sha256:")

    def vouches_for(self, binary: Binary) -> bool:
        """Whether these exact bytes passed validation for their image and target."""
        return self.passed_sha256(binary.image, binary.target) == binary.sha256

    def merged(self, results: Sequence[TargetResult]) -> dict[str, Any]:
        """The document with ``results`` replacing those of the same image and target.

        Entries of other images and targets that an earlier run validated stay, so validating
        one target does not make the image stage refuse the others.
        """
        entries: dict[tuple[str, str], Mapping[str, Any]] = dict(self.entries)
        for result in results:
            entries[(result.image, result.target)] = result.to_json()
        rank = {t.name: i for i, t in enumerate(TARGETS)}
        ordered = sorted(entries, key=lambda key: (key[0], rank.get(key[1], len(rank)), key[1]))
        return {
            "schema": SCHEMA,
            "passed": all(entries[key].get("passed") is True for key in ordered),
            "results": [entries[key] for key in ordered],
        }

    def write_merged(self, results: Sequence[TargetResult]) -> dict[str, Any]:
        """Write ``merged(results)`` atomically (readers see the old report or the new one)."""
        document = self.merged(results)
        atomic_write_json(self.path, document)
        return document


def failure_message(failing: Sequence[TargetResult], report_path: Path) -> str:
    """One paragraph naming each failing target and why."""
    parts = [f"{r.image}/{r.target}: {'; '.join(r.problems)}" for r in failing]
    return (
        f"Validation failed for {', '.join(r.target for r in failing)}. "
        + " ".join(p.rstrip(".") + "." for p in parts)
        + f" Details: {report_path}."
    )
