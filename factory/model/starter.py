"""The images.toml that `factory init` writes for a Cargo workspace, and the configuration
`factory image` uses without one: the same text, so the two cannot differ.

One `[[image]]` per binary of the workspace (factory.model.workspace), the default targets of
the target table, and a smoke run: `--version` when the package depends on an argument parser
that answers it, else a commented-out block that says why there is none.
"""

from __future__ import annotations

import os
import textwrap
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from factory.errors import UsageError
from factory.model import config as cfg
from factory.model import targets as target_table
from factory.model.workspace import CargoBinary, CargoWorkspace, image_names

VERSION_ARGS: tuple[str, ...] = ("--version",)
COMMENT_WIDTH = 99


@dataclass(frozen=True, kw_only=True)
class Proposal:
    """One image `init` proposes: its name, the binary, and its smoke arguments."""

    name: str
    binary: CargoBinary
    smoke_args: tuple[str, ...] | None
    """None: no smoke arguments are known (`why` says why)."""
    why: str

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "binary": self.binary.name,
            "package": self.binary.package,
            "smoke_args": None if self.smoke_args is None else list(self.smoke_args),
            "smoke": self.why,
        }


def proposals(workspace: CargoWorkspace) -> tuple[Proposal, ...]:
    """The images for the workspace's binaries, in cargo's order."""
    out: list[Proposal] = []
    for name, binary in zip(image_names(workspace.binaries), workspace.binaries, strict=True):
        if binary.parser is not None:
            why = f"{binary.package} depends on {binary.parser}: --version should print and exit 0"
            out.append(Proposal(name=name, binary=binary, smoke_args=VERSION_ARGS, why=why))
        else:
            why = f"{binary.package} depends on neither clap nor argh"
            out.append(Proposal(name=name, binary=binary, smoke_args=None, why=why))
    return tuple(out)


def _value(value: object) -> str:
    """A TOML value on one line (tomli_w quotes and escapes the scalars)."""
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return tomli_w.dumps({"v": value}).strip().removeprefix("v = ")


def _line(key: str, value: object) -> str:
    """`key = value` in TOML, on one line."""
    return f"{key} = {_value(value)}"


def _image_block(proposal: Proposal) -> list[str]:
    binary = proposal.binary
    lines = ["[[image]]", _line("name", proposal.name), _line("binary", binary.name)]
    if binary.package != binary.name:
        lines.append(_line("package", binary.package))
    lines += [
        _line("targets", list(target_table.DEFAULT_TARGETS)),
        _line("tags", ["latest"]),
        "",
    ]
    smoke = cfg.SmokeConfig()
    if proposal.smoke_args is not None:
        return [
            *lines,
            f"[image.smoke]  # {proposal.why}",
            _line("args", list(proposal.smoke_args)),
            _line("exit_code", smoke.exit_code),
            _line("timeout", int(smoke.timeout)),
        ]
    return [
        *lines,
        *textwrap.wrap(
            f"No smoke arguments: {proposal.why}, so `factory init` cannot tell which make "
            f"{binary.name} exit at once. Until they are set, the smoke run starts it with no "
            f"arguments and expects exit code {smoke.exit_code} within {int(smoke.timeout)} s.",
            width=COMMENT_WIDTH,
            initial_indent="# ",
            subsequent_indent="# ",
        ),
        "# [image.smoke]",
        "# " + _line("args", list(VERSION_ARGS)),
        "# " + _line("exit_code", smoke.exit_code),
        "# " + _line("timeout", int(smoke.timeout)),
    ]


def render(workspace: CargoWorkspace, *, directory: Path) -> str:
    """The images.toml for ``workspace``, to be written in ``directory``."""
    found = proposals(workspace)
    if not found:
        skipped = "; ".join(f"{s.name} of {s.package}: {s.reason}" for s in workspace.skipped)
        raise UsageError(
            f"The Cargo workspace {workspace.root} has no binary target to put in an image"
            + (f" (skipped {skipped})." if skipped else "."),
            hint="Add a [[bin]] target (or src/main.rs) to a member, or write images.toml by "
            "hand (docs/configuration.md).",
        )
    path = Path(os.path.relpath(workspace.root, directory.resolve())).as_posix()
    lines = [
        "# Written by `factory init` from the workspace's `cargo metadata`: one image per binary.",
        "# Every key is described in docs/configuration.md; `factory config` shows it resolved.",
        "",
        "[workspace]",
        _line("path", path),
        _line("driver", "cargo"),
        _line("profile", cfg.WorkspaceConfig().profile),
        "",
        "[registry]",
        _line("repository", cfg.DEFAULT_REGISTRY) + "  # each image goes to <repository>/<name>",
    ]
    for proposal in found:
        lines += ["", *_image_block(proposal)]
    return "\n".join(lines) + "\n"


def default_config(workspace: CargoWorkspace, *, source: Path) -> cfg.Config:
    """The configuration `factory image` uses when there is no images.toml: what `init` would
    write for the workspace's one binary. Several binaries: a UsageError that lists them."""
    found = proposals(workspace)
    if len(found) > 1:
        raise UsageError(
            f"There is no {source.name} and the Cargo workspace {workspace.root} has "
            f"{len(found)} binaries: {workspace.describe()}.",
            hint="Run `factory init` to write an images.toml with one image per binary, then "
            "edit it (or pass --config PATH).",
        )
    text = render(workspace, directory=source.parent)
    return cfg.parse(tomllib.loads(text), source=source, text=text)


def summary(found: Sequence[Proposal]) -> list[list[str]]:
    """Rows for a table of proposals: image, package, binary, smoke."""
    return [
        [
            p.name,
            p.binary.package,
            p.binary.name,
            " ".join(p.smoke_args) if p.smoke_args is not None else "(none: see the file)",
        ]
        for p in found
    ]
