"""`factory build`: compile each image x target in the builder."""

from __future__ import annotations

from typing import Annotated, cast, get_args

import typer

from factory.cli.app import app, load_config, parse_profile
from factory.cli.options import (
    BaseOption,
    CompilationModeOption,
    ImageOption,
    JobsOption,
    RebuildBuilderDeprecated,
    RebuildBuilderOption,
    TargetOption,
)
from factory.cli.render import relative as _relative
from factory.engine import builder as builder_image
from factory.engine import docker_engine as engine
from factory.errors import UsageError
from factory.model import targets as target_table
from factory.model.config import Driver
from factory.model.dist import Dist
from factory.pipeline import run as pipeline
from factory.util import console, fsutil
from factory.validate.gate import built_binary


@app.command("build")
def build_command(
    target: TargetOption = None,
    compilation_mode: CompilationModeOption = None,
    image: ImageOption = None,
    driver: Annotated[
        str,
        typer.Option(
            "--driver",
            metavar="DRIVER",
            help="cargo | bazel (default: [workspace] driver of images.toml).",
            show_default=False,
        ),
    ] = "",
    base: BaseOption = None,
    rebuild: RebuildBuilderOption = False,
    _rebuild_deprecated: RebuildBuilderDeprecated = False,
    jobs: JobsOption = None,
) -> None:
    """Compile each image x target into dist/bin/<image>/<target>/<binary>."""
    config = load_config()
    profile = parse_profile(compilation_mode or config.workspace.profile)
    chosen_driver = _driver(driver or config.workspace.driver)
    images = config.select_images(image or [])
    targets = target_table.select(target) if target else None
    client = engine.client()
    builder = builder_image.ensure_builder(
        client,
        dockerfile=config.dockerfile_path,
        base=base or config.builder.base,
        rebuild=rebuild,
    )
    units = pipeline.units_of(images, targets)
    with fsutil.exclusive(Dist.of(config).lock, what="dist/"):
        pipeline.build_stage(
            config,
            client,
            builder,
            units,
            profile=profile,
            rebuild=True,
            progress=console.info,
            driver=chosen_driver,
            jobs=jobs,
        )
    dist = Dist.of(config)
    binaries = [built_binary(dist, u.image, u.target.name, profile) for u in units]
    rows = [b for b in binaries if b is not None]
    if console.options().json:
        console.result_json([a.to_json() for a in rows])
        return
    console.table(
        ["image", "target", "size", "sha256", "path"],
        [[a.image, a.target, str(a.size), a.sha256[:16], _relative(a.path)] for a in rows],
    )


def _driver(value: str) -> Driver:
    for driver in get_args(Driver):
        if value == driver:
            return cast(Driver, driver)
    raise UsageError(f"Unknown driver {value!r}.", hint="Use --driver cargo or --driver bazel.")
