"""`factory builder`: build the builder image, or reuse it."""

from __future__ import annotations

from factory.cli.app import app, load_config
from factory.cli.options import BaseOption, RebuildBuilderDeprecated, RebuildBuilderOption
from factory.engine import builder as builder_image
from factory.engine import docker_engine as engine
from factory.util import console


@app.command("builder")
def builder_command(
    base: BaseOption = None,
    rebuild: RebuildBuilderOption = False,
    _rebuild_deprecated: RebuildBuilderDeprecated = False,
) -> None:
    """Build the builder image, or reuse it when its Dockerfile and inputs are unchanged."""
    config = load_config()
    image = builder_image.ensure_builder(
        engine.client(),
        dockerfile=config.dockerfile_path,
        base=base or config.builder.base,
        rebuild=rebuild,
    )
    if console.options().json:
        console.result_json(builder_image.describe(image))
    else:
        console.result(image.summary)
