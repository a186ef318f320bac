"""`factory validate`: audit what `factory build` produced and smoke-run it under QEMU."""

from __future__ import annotations

from typing import Annotated

import typer

from factory.cli.app import app, load_config, parse_profile
from factory.cli.options import CompilationModeOption, ImageOption, TargetOption
from factory.model import targets as target_table
from factory.util import console
from factory.validate.report import COLUMNS


@app.command("validate")
def validate_command(
    target: TargetOption = None,
    image: ImageOption = None,
    compilation_mode: CompilationModeOption = None,
    qemu_image: Annotated[
        str | None,
        typer.Option(
            "--qemu-image",
            metavar="IMAGE",
            help="Run the smoke tests in this image (it needs qemu-user and coreutils) "
            "instead of the builder image.",
        ),
    ] = None,
) -> None:
    """Audit each built binary (ELF, instruction sets) and smoke-run it under QEMU.

    Reads dist/bin/<image>/<target>/<binary>, merges the results into dist/report.json (which
    `factory image` trusts; results of targets not validated now stay), prints one row per
    binary, and exits 5 naming the targets that failed in this run.
    """
    from factory.validate import stage as validate

    config = load_config()
    images = config.select_images(image or [])
    targets = target_table.select(target) if target else None
    profile = parse_profile(compilation_mode or config.workspace.profile)
    outcome = validate.run(config, images, targets, profile=profile, qemu_image=qemu_image)
    if console.options().json:
        console.result_json(outcome.document)
    else:
        console.table(COLUMNS, outcome.report.rows())
    outcome.require_passed()
