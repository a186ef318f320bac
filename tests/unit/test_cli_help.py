"""`factory <command> --help`, locked by one snapshot per command and subcommand.

The snapshots live in tests/unit/snapshots/help/ and are compared exactly. After a deliberate
change of the help, rewrite them with `FACTORY_UPDATE_SNAPSHOTS=1 uv run pytest
tests/unit/test_cli_help.py` and review the diff.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer

from factory.cli import main
from factory.cli.app import HELP_WIDTH, app

SNAPSHOTS = Path(__file__).parent / "snapshots" / "help"
UPDATE = os.environ.get("FACTORY_UPDATE_SNAPSHOTS") == "1"

# The labels Typer writes for a parameter's Python type (`<bool>` after a flag reads as if the
# flag took a value). Options say what they take by metavar; arguments by their name (`REF`).
_TYPE_LABEL = re.compile(r"<(bool|str|int|float|path|file|uuid|datetime|int range|list\[.*?\])>")


def _commands(group: object, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    subcommands: dict[str, object] = getattr(group, "commands", {})
    for name, command in subcommands.items():
        yield from _commands(command, (*path, name))


COMMANDS = list(_commands(typer.main.get_command(app)))


def _snapshot(command: tuple[str, ...]) -> Path:
    return SNAPSHOTS / f"{'-'.join(('factory', *command))}.txt"


def _help(command: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> str:
    assert main([*command, "--help"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    return captured.out


@pytest.fixture
def odd_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """A narrow terminal that asks for colour, as CI runners do: the help must not change."""
    monkeypatch.setenv("COLUMNS", "47")
    monkeypatch.setenv("LINES", "10")
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("CI", "true")


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(("factory", *c)))
@pytest.mark.usefixtures("odd_terminal")
def test_help_matches_its_snapshot(
    command: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    out = _help(command, capsys)
    path = _snapshot(command)
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(out)
    assert path.is_file(), f"{path.name} is missing: run with FACTORY_UPDATE_SNAPSHOTS=1"
    assert out == path.read_text(), (
        f"`factory {' '.join(command)} --help` differs from {path.name}; if the change is "
        "meant, rewrite the snapshots with FACTORY_UPDATE_SNAPSHOTS=1 and review the diff"
    )


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(("factory", *c)))
def test_help_shows_no_type_label_and_no_colour(
    command: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    out = _help(command, capsys)
    assert "<bool>" not in out
    options = out.partition("\nOptions:\n")[2]
    assert _TYPE_LABEL.findall(options) == []
    assert "\x1b" not in out
    assert "--rebuild " not in out, "the deprecated --rebuild is hidden"


def _continuations(out: str) -> Iterator[tuple[str, str]]:
    """Each pair of lines where the second carries on the text of the first (a wrapped line).

    Click writes the description as paragraphs indented by 2, then sections ("Options:") of
    rows whose text wraps onto lines indented to the text's column."""
    in_section = False
    previous = ""
    for line in out.splitlines():
        indent = len(line) - len(line.lstrip())
        if line and indent == 0:
            in_section = line.endswith(":")
        elif line.strip() and previous.strip():
            carries_on = indent > 2 if in_section else indent == 2
            # a row whose first column is too wide starts its text on the next line
            if carries_on and not (in_section and "  " not in previous.strip()):
                yield previous, line
        previous = line


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(("factory", *c)))
def test_help_breaks_lines_only_where_the_next_word_does_not_fit(
    command: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    out = _help(command, capsys)
    for line in out.splitlines():
        assert len(line) <= HELP_WIDTH, line
    for row in out.partition("\nCommands:\n")[2].splitlines():
        assert not row.endswith("..."), f"a command's summary is cut short: {row!r}"
    for first, second in _continuations(out):
        word = second.split()[0]
        assert len(first.rstrip()) + 1 + len(word) > HELP_WIDTH - 2, (
            f"line broken before the text reached the width: {first!r} / {second!r}"
        )


def test_every_snapshot_belongs_to_a_command() -> None:
    expected = {_snapshot(c).name for c in COMMANDS}
    assert {p.name for p in SNAPSHOTS.glob("*.txt")} == expected


def test_the_console_script_prints_the_snapshot_whatever_the_terminal() -> None:
    """What a user runs, `COLUMNS=100 factory image --help`, also without a TTY in CI."""
    for columns in ("100", "60"):
        environment = {**os.environ, "COLUMNS": columns, "CI": "true", "TERM": "dumb"}
        environment.pop("FACTORY_UPDATE_SNAPSHOTS", None)
        proc = subprocess.run(
            [sys.executable, "-m", "factory", "image", "--help"],
            capture_output=True,
            text=True,
            check=False,
            env=environment,
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == _snapshot(("image",)).read_text()
