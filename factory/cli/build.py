"""`factory builder`, `factory build`, `factory clean`: the builder image and compiling."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from factory import builder as builder_image
from factory import console, engine
from factory import targets as target_table
from factory.cli.app import app, load_config
from factory.config import ImageConfig, Profile
from factory.drivers import cargo
from factory.errors import UsageError

_PROFILES: tuple[Profile, ...] = ("opt", "dbg", "fastbuild")

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


def _profile(value: str) -> Profile:
    for profile in _PROFILES:
        if value == profile:
            return profile
    raise UsageError(
        f"Unknown compilation mode {value!r}.",
        hint="Use -c opt (optimised, LTO, stripped), -c dbg (debug info) or -c fastbuild.",
    )


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
    base: BaseOption = None,
    rebuild: RebuildOption = False,
) -> None:
    """Compile each image x target into dist/bin/<image>/<target>/<binary>."""
    config = load_config()
    profile = _profile(compilation_mode or config.workspace.profile)
    images = config.select_images(image or [])
    if not images:
        raise UsageError(
            f"{config.source} defines no [[image]].",
            hint="Add an [[image]] table with name and binary (see the README).",
        )
    if config.workspace.driver != "cargo":
        raise UsageError(
            f"`factory build` here drives Cargo, but images.toml sets driver = "
            f"{config.workspace.driver!r}.",
            hint='Set [workspace] driver = "cargo", or use the Bazel command.',
        )
    chosen = target_table.select(target) if target else None

    def targets_of(img: ImageConfig) -> tuple[target_table.Target, ...]:
        return chosen if chosen is not None else img.resolved_targets

    client = engine.client()
    builder = builder_image.ensure_builder(
        client,
        dockerfile=config.dockerfile_path,
        base=base or config.builder.base,
        rebuild=rebuild,
    )
    artifacts = cargo.build(
        client,
        builder,
        workspace_path=config.workspace_path,
        images=images,
        targets_of=targets_of,
        profile=profile,
        dist=config.root / "dist",
        keep=console.options().debug,
    )
    if console.options().json:
        console.result_json([a.to_json() for a in artifacts])
        return
    console.table(
        ["image", "target", "size", "sha256", "path"],
        [[a.image, a.target, str(a.size), a.sha256[:16], _relative(a.path)] for a in artifacts],
    )


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
) -> None:
    """Remove factory's containers, cache volumes and (unless --keep-images) images."""
    from factory import cleanup

    report = cleanup.clean(engine.client(), images=not keep_images)
    if console.options().json:
        console.result_json(report.to_json())
    else:
        console.result(report.summary)
