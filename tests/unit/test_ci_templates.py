"""The CI templates in examples/ci/ cannot rot: each validates against its CI's published schema
(check-jsonschema ships them), and every `factory ...` line they run parses with factory's own
command line (an unknown option or command fails here, not in someone's pipeline)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from ruamel.yaml import YAML

from factory.cli import hoist_global_options
from factory.cli.app import app
from tests.conftest import ROOT

TEMPLATES = ROOT / "examples" / "ci"
SCHEMAS = {"github-actions.yml": "vendor.github-workflows", "gitlab-ci.yml": "vendor.gitlab-ci"}
SHELL_KEYS = frozenset({"run", "script", "before_script", "after_script"})
"""Where GitHub Actions (`run`) and GitLab CI (`script`, ...) keep shell commands."""
PREFIXES = (("uv", "run", "factory"), ("uvx", "factory"), ("factory",))
EXPRESSION = re.compile(r"\$\{\{.*?\}\}")
SEPARATORS = frozenset({";", "&&", "||", "|", "then", "fi"})


def check_jsonschema(schema: str, path: Path) -> subprocess.CompletedProcess[str]:
    program = Path(sys.executable).with_name("check-jsonschema")
    return subprocess.run(
        [str(program), "--builtin-schema", schema, str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def shell_blocks(document: Any) -> Iterator[str]:
    """Every shell command string under a `run`/`script` key, however deep."""
    if isinstance(document, dict):
        for key, value in document.items():
            if key in SHELL_KEYS:
                yield from [value] if isinstance(value, str) else [str(v) for v in value]
            else:
                yield from shell_blocks(value)
    elif isinstance(document, list):
        for item in document:
            yield from shell_blocks(item)


def factory_invocations(path: Path) -> list[list[str]]:
    """The arguments of every `factory` (`uv run factory`, `uvx factory`) command in ``path``;
    CI expressions (`${{ ... }}`) stand for a word, shell variables stay as written."""
    found = []
    for block in shell_blocks(YAML(typ="safe").load(path.read_text())):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(EXPRESSION.sub("X", line), comments=True)
            for start in range(len(words)):
                for prefix in PREFIXES:
                    if tuple(words[start : start + len(prefix)]) == prefix:
                        rest = words[start + len(prefix) :]
                        cut = next((i for i, w in enumerate(rest) if w in SEPARATORS), len(rest))
                        found.append(rest[:cut])
                        break
                else:
                    continue
                break
    return found


def parse(args: list[str]) -> str:
    """Parse ``args`` as `factory` would, down to the command, without running anything; the
    command's path (`index merge`). Raises click's usage errors."""
    command = typer.main.get_command(app)
    ctx = command.make_context("factory", hoist_global_options(list(args)))
    path = []
    while hasattr(command, "resolve_command"):
        # the words after the group's own options (click keeps the command's name apart)
        rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
        name, command, rest = command.resolve_command(ctx, rest)
        assert name is not None and command is not None
        path.append(name)
        ctx = command.make_context(name, rest, parent=ctx)
    return " ".join(path)


@pytest.mark.parametrize(("name", "schema"), sorted(SCHEMAS.items()))
def test_each_template_is_valid_for_its_ci(name: str, schema: str) -> None:
    checked = check_jsonschema(schema, TEMPLATES / name)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_schema_check_fails_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    shutil.copy(TEMPLATES / "github-actions.yml", broken)
    broken.write_text(broken.read_text().replace("runs-on:", "run-on:"))
    assert check_jsonschema("vendor.github-workflows", broken).returncode != 0


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_every_factory_command_of_a_template_parses(name: str) -> None:
    invocations = factory_invocations(TEMPLATES / name)
    commands = [parse(args) for args in invocations]
    assert commands == ["image", "index merge", "inspect"], invocations


@pytest.mark.parametrize(
    "line",
    [
        "uv run factory image --push --shrad -t amd64",
        "uvx factory index merge --expected amd64 a.json",
        "factory index join a.json",
    ],
)
def test_an_unknown_option_or_command_fails(tmp_path: Path, line: str) -> None:
    template = tmp_path / "ci.yml"
    template.write_text(f"job:\n  script:\n    - {line}\n")
    [args] = factory_invocations(template)
    with pytest.raises(typer.TyperException, match=r"No such (option|command)"):
        parse(args)
