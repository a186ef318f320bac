"""`factory bazel sync [--check]`: the Bazel workspace's target-derived Starlark."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from factory.build import bazel_sync
from factory.cli.app import app, load_config
from factory.errors import UsageError
from factory.util import console

bazel_app = typer.Typer(
    name="bazel",
    help="The Bazel workspace: keep its platforms, constraints and flags in step with the table.",
    short_help="Keep the Bazel workspace's platforms, constraints and flags in step.",
    no_args_is_help=True,
)
app.add_typer(bazel_app)


@bazel_app.command("sync")
def sync_command(
    check: Annotated[
        bool,
        typer.Option("--check", help="Change nothing; fail (exit 2) when a file differs."),
    ] = False,
    workspace: Annotated[
        Path | None,
        typer.Option(
            "--workspace",
            metavar="DIR",
            help="The Bazel workspace (default: [workspace] path of images.toml).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Write the constraint lists, platforms and per-target flags from the target table."""
    root = workspace.resolve() if workspace is not None else load_config().workspace_path
    if not (root / "MODULE.bazel").is_file():
        raise UsageError(
            f"{root} holds no MODULE.bazel, so it is not a Bazel workspace. Pass the folder "
            "that holds MODULE.bazel with --workspace, or set [workspace] path in images.toml."
        )
    paths = [g.path for g in bazel_sync.render()]
    if check:
        differences = bazel_sync.check(root)
        for difference in differences:
            console.info(difference.diff.rstrip("\n"))
        if differences:
            names = ", ".join(d.path for d in differences)
            raise UsageError(
                f"{root}: generated files differ from factory's target table: {names} "
                "(diff above). "
                "Run `uv run factory bazel sync` and commit the result."
            )
        _report(root, paths, changed=[], check=True)
        return
    changed = list(bazel_sync.write(root))
    _report(root, paths, changed=changed, check=False)


def _report(root: Path, paths: list[str], *, changed: list[str], check: bool) -> None:
    if console.options().json:
        console.result_json(
            {
                "workspace": str(root),
                "files": paths,
                "changed": changed,
                "up_to_date": not changed,
                "check": check,
            }
        )
        return
    if changed:
        for path in changed:
            console.result(f"wrote {root / path}")
    else:
        console.result(f"{root}: {len(paths)} generated files are up to date.")
