"""Where output goes: results on stdout, logs and progress on stderr.

Log lines are plain text, coloured (dim, yellow, bold red) only when stderr is a terminal and
NO_COLOR is not set; written directly, without a rendering library, so a command's start does
not pay for one (rich is imported only to show a traceback under --debug).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

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
_STYLES: Final = {"dim": "\x1b[2m", "yellow": "\x1b[33m", "bold red": "\x1b[1;31m"}
_RESET: Final = "\x1b[0m"


def _coloured() -> bool:
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty()) and "NO_COLOR" not in os.environ


def _print(message: str, style: str | None = None) -> None:
    """One line on stderr (sys.stderr as it is now: tests and redirections replace it)."""
    if style is not None and _coloured():
        message = f"{_STYLES[style]}{message}{_RESET}"
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def print_exception() -> None:
    """The traceback of the exception being handled, on stderr (--debug)."""
    from rich.console import Console

    Console(stderr=True).print_exception()


def configure(options: Options) -> None:
    global _options
    _options = options


def options() -> Options:
    return _options


def info(message: str) -> None:
    """A progress line for a person: hidden by --quiet."""
    if not _options.quiet:
        _print(message)


def detail(message: str) -> None:
    """A line shown only with --verbose."""
    if _options.verbose and not _options.quiet:
        _print(message, "dim")


def warn(message: str) -> None:
    _print(f"warning: {message}", "yellow")


def error(message: str) -> None:
    _print(f"error: {message}", "bold red")


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
