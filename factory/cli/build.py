"""`factory builder`, `factory build`, `factory clean`: the builder image and compiling."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, cast, get_args

import typer

from factory.cli.app import app, load_config, parse_profile
from factory.engine import builder as builder_image
from factory.engine import docker_engine as engine
from factory.errors import UsageError
from factory.model import targets as target_table
from factory.model.config import Driver
from factory.model.dist import Dist
from factory.pipeline import run as pipeline
from factory.util import console, fsutil

BaseOption = Annotated[
    str | None,
    typer.Option(
        "--base",
        help="Base image of the builder (default: [builder] base of images.toml). Bootstrapped "
        "from Debian's packages when it is neither present nor pullable.",
    ),
]
RebuildOption = Annotated[
    bool, typer.Option("--rebuild", help="Build the builder image again, without layer cache.")
]


@app.command("builder")
def builder_command(base: BaseOption = None, rebuild: RebuildOption = False) -> None:
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


@app.command("build")
def build_command(
    target: Annotated[
        list[str] | None,
        typer.Option(
            "--target",
            "-t",
            help="Target(s): names, `all`, globs or OCI platforms (default: each image's list).",
        ),
    ] = None,
    compilation_mode: Annotated[
        str,
        typer.Option(
            "--compilation-mode", "-c", help="opt | dbg | fastbuild (default: images.toml)."
        ),
    ] = "",
    image: Annotated[
        list[str] | None, typer.Option("--image", help="Only these images (default: all).")
    ] = None,
    driver: Annotated[
        str,
        typer.Option("--driver", help="cargo | bazel (default: [workspace] driver)."),
    ] = "",
    base: BaseOption = None,
    rebuild: RebuildOption = False,
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
        )
    binaries = [pipeline.binary_on_disk(Dist.of(config), u, profile) for u in units]
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


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


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
