"""`factory clean`: remove what factory left in the Docker engine."""

from __future__ import annotations

from typing import Annotated

import typer

from factory.cli.app import app
from factory.engine import docker_engine as engine
from factory.util import console


@app.command("clean")
def clean_command(
    keep_images: Annotated[
        bool,
        typer.Option("--keep-images", help="Keep the builder and bootstrapped base images."),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Also remove running factory containers.")
    ] = False,
) -> None:
    """Remove factory's containers, cache volumes and (unless --keep-images) images."""
    from factory.engine import cleanup

    report = cleanup.clean(engine.client(), images=not keep_images, force=force)
    if console.options().json:
        console.result_json(report.to_json())
    else:
        console.result(report.summary)
