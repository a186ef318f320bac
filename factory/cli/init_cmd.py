"""`factory init`: write an images.toml for the Cargo workspace here, one image per binary."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from factory.cli.app import app
from factory.engine.cargo_metadata import read_workspace
from factory.errors import UsageError
from factory.model import config as cfg
from factory.model import starter
from factory.util import console

RESULT_SCHEMA = "factory.init/v1"


def destination(workspace_root: Path) -> Path:
    """Where init writes: --config when given, else images.toml at the workspace's root (also
    when run in a member's directory)."""
    given = Path(console.options().config)
    return workspace_root / cfg.DEFAULT_CONFIG if given == cfg.DEFAULT_CONFIG else given


@app.command("init", short_help="Write an images.toml for this Cargo workspace.")
def init_command(
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing images.toml.")
    ] = False,
) -> None:
    """Write an images.toml for the Cargo workspace here (or the one this member belongs to).

    Reads `cargo metadata` (the host's cargo, else the builder container's; nothing is
    compiled) and writes one [[image]] per binary target of the workspace's members, with the
    default targets and a smoke run: `--version` when the package depends on clap or argh.
    Writes images.toml at the workspace's root unless --config names another path.
    """
    found = read_workspace(Path.cwd(), keep=console.options().debug)
    workspace = found.workspace
    path = destination(workspace.root)
    if path.exists() and not force:
        raise UsageError(
            f"{path} exists: factory init never overwrites a file.",
            hint="Pass --force to replace it, or --config PATH to write another file.",
        )
    text = starter.render(workspace, directory=path.parent)
    proposals = starter.proposals(workspace)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)
    for skipped in workspace.skipped:
        console.info(f"init: skipped {skipped.name} of {skipped.package}: {skipped.reason}")
    if console.options().json:
        console.result_json(
            {
                "schema": RESULT_SCHEMA,
                "path": str(path),
                "workspace": str(workspace.root),
                "metadata": found.via,
                "images": [p.to_json() for p in proposals],
                "skipped": [
                    {"package": s.package, "binary": s.name, "reason": s.reason}
                    for s in workspace.skipped
                ],
            }
        )
        return
    console.result(
        f"wrote {path}: {len(proposals)} image(s) for the workspace {workspace.root} "
        f"(cargo metadata: {found.via})"
    )
    console.table(["image", "package", "binary", "smoke args"], starter.summary(proposals))
    console.result("Next: `factory config` to check it, `factory image` to build the images.")
