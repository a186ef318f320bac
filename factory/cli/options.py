"""The options and arguments that several commands share, declared once.

Each has one spelling, one metavar, one help text and one default (the default is written where
the alias is used, as `= None`, because Typer reads it from the function signature). A value left
out means "what images.toml says", and each command reads images.toml for it.

The two meanings `--rebuild` once had are two flags now: `--rebuild-builder` (the builder image,
again and without layer cache) and `--recompile` (every target, even when up to date). `--rebuild`
stays, hidden, on the commands that had it, with its old meaning there and a warning that names
the flag to use instead.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from factory.util import console

TargetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--target",
        "-t",
        metavar="TARGET",
        help="Only these targets: names, `all`, globs or OCI platforms (repeatable; default: "
        "each image's targets).",
        show_default=False,
    ),
]
ImageOption = Annotated[
    list[str] | None,
    typer.Option(
        "--image",
        metavar="NAME",
        help="Only the [[image]] of this name (repeatable; default: every image of images.toml).",
        show_default=False,
    ),
]
CompilationModeOption = Annotated[
    str | None,
    typer.Option(
        "--compilation-mode",
        "-c",
        metavar="MODE",
        help="opt (optimised, stripped), dbg (debug info) or fastbuild: the mode to build in, or "
        "the one the binaries were built in (default: [workspace] profile of images.toml).",
        show_default=False,
    ),
]
InsecureOption = Annotated[
    bool,
    typer.Option(
        "--insecure",
        help="Allow plain HTTP and unverified TLS to a registry that is not on a loopback address.",
    ),
]
TagOption = Annotated[
    list[str] | None,
    typer.Option(
        "--tag",
        metavar="T",
        help="Tags of the index instead of the images' `tags` (repeatable).",
    ),
]
RegistryOption = Annotated[
    str | None,
    typer.Option(
        "--registry",
        metavar="REPO",
        help="Repository prefix instead of images.toml's registry.repository: images go to "
        "REPO/<name>.",
    ),
]
SbomOption = Annotated[
    bool,
    typer.Option("--sbom/--no-sbom", help="Attach an SPDX SBOM to each pushed index."),
]
SignKeyOption = Annotated[
    Path | None,
    typer.Option(
        "--sign-key",
        metavar="PATH",
        help="Sign each pushed index with this ECDSA P-256 PEM key (cosign format).",
    ),
]
BaseOption = Annotated[
    str | None,
    typer.Option(
        "--base",
        metavar="REF",
        help="Base image of the builder (default: [builder] base of images.toml). Bootstrapped "
        "from Debian's packages when it is neither present nor pullable.",
        show_default=False,
    ),
]
ReferenceArgument = Annotated[
    str,
    typer.Argument(
        metavar="REF",
        help="An image in a registry: host[:port]/repository[:tag] or "
        "host[:port]/repository@sha256:<hex>.",
        show_default=False,
    ),
]

# ctx.meta keys through which a deprecated spelling hands its value to the flag that replaced it
_REBUILD_BUILDER = "factory.rebuild-builder"
_RECOMPILE = "factory.recompile"


def _replaced_by(flag: str, key: str) -> Callable[[typer.Context, bool], None]:
    """The callback of the hidden `--rebuild`: warn, then let `flag` read the value."""

    def deprecated(ctx: typer.Context, value: bool) -> None:
        if value:
            console.warn(
                f"--rebuild is deprecated and will be removed: use {flag} instead "
                f"(`factory {ctx.info_name} {flag}`)."
            )
            ctx.meta[key] = True

    return deprecated


def _or_deprecated(key: str) -> Callable[[typer.Context, bool], bool]:
    """The callback of the new flag: set by itself or by its deprecated spelling.

    The deprecated spelling is eager, so its callback has run before this one."""

    def merged(ctx: typer.Context, value: bool) -> bool:
        return value or bool(ctx.meta.get(key, False))

    return merged


def _old_rebuild(replacement: str, key: str) -> Any:
    """The hidden `--rebuild` of a command where it now means `replacement`."""
    return typer.Option(
        "--rebuild",
        hidden=True,
        is_eager=True,
        expose_value=False,
        help=f"Deprecated: {replacement}.",
        callback=_replaced_by(replacement, key),
    )


RebuildBuilderOption = Annotated[
    bool,
    typer.Option(
        "--rebuild-builder",
        help="Build the builder image again, without layer cache.",
        callback=_or_deprecated(_REBUILD_BUILDER),
    ),
]
RebuildBuilderDeprecated = Annotated[bool, _old_rebuild("--rebuild-builder", _REBUILD_BUILDER)]
RecompileOption = Annotated[
    bool,
    typer.Option(
        "--recompile",
        help="Compile every target again, even when it is up to date.",
        callback=_or_deprecated(_RECOMPILE),
    ),
]
RecompileDeprecated = Annotated[bool, _old_rebuild("--recompile", _RECOMPILE)]
JobsOption = Annotated[
    int | None,
    typer.Option(
        "--jobs",
        "-j",
        metavar="N",
        min=1,
        help="Compile N targets at once, cargo's -j split between them (default: min(targets, "
        "cores, available GiB / 2); 1: one after the other). Bazel schedules its own actions.",
        show_default=False,
    ),
]
