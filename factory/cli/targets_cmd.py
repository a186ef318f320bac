"""`factory targets`: the target table."""

from __future__ import annotations

from typing import Annotated

import typer

from factory.cli.app import app
from factory.model import targets as target_table
from factory.util import console


@app.command("targets")
def targets_command(
    select: Annotated[
        list[str] | None,
        typer.Argument(help="Target names, `all`, globs or OCI platforms (default: all)."),
    ] = None,
) -> None:
    """Print the target table: triples, rustc flags, OCI platforms, QEMU CPU models."""
    chosen = target_table.select(select) if select else target_table.TARGETS
    if console.options().json:
        console.result_json([t.to_json() for t in chosen])
        return
    console.table(
        ["target", "triple", "rustflags", "platform", "qemu -cpu", "elf machine"],
        [
            [
                t.name,
                t.triple,
                " ".join(t.rustflags),
                str(t.platform),
                t.qemu_cpu or "(native only)",
                t.elf_machine,
            ]
            for t in chosen
        ],
    )
