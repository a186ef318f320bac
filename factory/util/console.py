"""Where output goes: results on stdout, logs and progress on stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

from rich.console import Console

# Where a stage sends its progress lines (console.info, a log file, a test's list.append):
# the one name of this callback type.
Progress: TypeAlias = Callable[[str], None]


@dataclass(frozen=True, kw_only=True)
class Options:
    """The global command-line options, shared by every command."""

    config: str = "images.toml"
    json: bool = False
    verbose: int = 0
    quiet: bool = False
    debug: bool = False


_options = Options()
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def configure(options: Options) -> None:
    global _options
    _options = options


def options() -> Options:
    return _options


def info(message: str) -> None:
    """A progress line for a person: hidden by --quiet."""
    if not _options.quiet:
        stderr.print(message, markup=False)


def detail(message: str) -> None:
    """A line shown only with --verbose."""
    if _options.verbose and not _options.quiet:
        stderr.print(message, markup=False, style="dim")


def warn(message: str) -> None:
    stderr.print(f"warning: {message}", markup=False, style="yellow")


def error(message: str) -> None:
    stderr.print(f"error: {message}", markup=False, style="bold red")


def result(text: str) -> None:
    """A result line on stdout."""
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


def result_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=False) + "\n")
    sys.stdout.flush()


def table(columns: list[str], rows: list[list[str]]) -> None:
    """A table of results on stdout: aligned plain text, readable in logs and terminals."""
    widths = [
        max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(columns)
    ]
    for line in [columns, *rows]:
        result("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
