"""The Typer application and its global options. Commands live in sibling modules."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import typing
from pathlib import Path
from typing import Annotated

import typer

from factory.errors import ConfigError, FactoryError, UsageError
from factory.model import cargo_toml, starter
from factory.model import config as cfg
from factory.model.workspace import NotAWorkspace
from factory.util import console

# The help is click's plain text, wrapped to 100 columns whatever the terminal: Typer's rich
# panels showed a `<bool>` type after every flag, kept the line breaks of the docstrings (lines
# broken mid-sentence), read `[workspace]` in help texts as markup and coloured the output when
# CI set FORCE_COLOR or GITHUB_ACTIONS. The snapshots in tests/unit/snapshots/help/ lock it.
HELP_WIDTH = 100

app = typer.Typer(
    name="factory",
    help="Turn a Rust workspace into fully static, multi-architecture container images.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={
        "help_option_names": ["-h", "--help"],
        "terminal_width": HELP_WIDTH,
        "max_content_width": HELP_WIDTH,
    },
)


def version() -> str:
    """The installed distribution's version (its metadata, not a copy in the code)."""
    try:
        return importlib.metadata.version("factory")
    except importlib.metadata.PackageNotFoundError as err:
        raise FactoryError(
            "factory's distribution metadata is missing, so its version is unknown.",
            hint="Install factory (`uv sync` in its checkout, or `uv tool install` of its wheel).",
        ) from err


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"factory {version()}")
        raise typer.Exit()


@app.callback()
def global_options(
    config: Annotated[
        str,
        typer.Option(
            "--config", "-C", metavar="PATH", help="The images.toml to use.", show_default=True
        ),
    ] = "images.toml",
    json: Annotated[bool, typer.Option("--json", help="Results as JSON on stdout.")] = False,
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="More detail on stderr.")
    ] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors on stderr.")] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks; keep builder containers.")
    ] = False,
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    console.configure(
        console.Options(config=config, json=json, verbose=verbose, quiet=quiet, debug=debug)
    )


def parse_profile(value: str) -> cfg.Profile:
    """A compilation mode given on the command line (-c)."""
    for profile in typing.get_args(cfg.Profile):
        if value == profile:
            return typing.cast(cfg.Profile, profile)
    raise UsageError(
        f"Unknown compilation mode {value!r}.",
        hint="Use -c opt (optimised, LTO, stripped), -c dbg (debug info) or -c fastbuild.",
    )


def load_config() -> cfg.Config:
    """The configuration, from the first of: the images.toml named by --config (default
    ./images.toml), the images.toml at the Cargo workspace's root, the [*.metadata.factory]
    tables of its Cargo.toml files, the defaults for its one binary (factory.model.starter)."""
    path = Path(console.options().config)
    if path != cfg.DEFAULT_CONFIG or path.exists():
        config = cfg.load(path)
        _warn_shadowed(config, [config.workspace_path / "Cargo.toml"])
        return config
    # cargo metadata may need the engine (docker-py): imported only when there is no images.toml
    from factory.engine.cargo_metadata import read_workspace

    try:
        found = read_workspace(Path.cwd(), keep=console.options().debug)
    except NotAWorkspace as err:
        raise ConfigError(
            f"{path}: no such file, and {err.message} Run factory where images.toml is, pass "
            "--config PATH (docs/configuration.md describes every key), or run it in a Cargo "
            "workspace (`factory init` writes an images.toml there)."
        ) from err
    workspace = found.workspace
    at_root = workspace.root / cfg.DEFAULT_CONFIG
    if at_root.exists():
        console.info(f"using {at_root}, the images.toml at the Cargo workspace's root")
        config = cfg.load(at_root)
        manifests = [workspace.root / "Cargo.toml", *(m.manifest for m in workspace.members)]
        _warn_shadowed(config, manifests)
        return config
    in_cargo = cargo_toml.load(workspace)
    if in_cargo is not None:
        return in_cargo
    config = starter.default_config(workspace, source=at_root)
    binary = workspace.binaries[0]
    console.info(
        f"no {path}: using the defaults for the workspace's one binary, {binary.name} (package "
        f"{binary.package}) in {workspace.root}; `factory init` writes them to a file to edit."
    )
    return dataclasses.replace(config, files=())


def _warn_shadowed(config: cfg.Config, manifests: list[Path]) -> None:
    for table in cargo_toml.shadowed(list(dict.fromkeys(manifests))):
        console.warn(f"{config.source} wins: {table} is not read (remove one of the two).")
