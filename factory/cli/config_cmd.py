"""`factory config`: validate images.toml and show it resolved."""

from __future__ import annotations

from typing import Annotated

import tomli_w
import typer

from factory.cli.app import app, load_config
from factory.model import config as cfg
from factory.model import schema
from factory.util import console


@app.command("config")
def config_command(
    print_schema: Annotated[
        bool, typer.Option("--schema", help="Print the JSON Schema of images.toml instead.")
    ] = False,
) -> None:
    """Validate images.toml and print the resolved configuration with defaults filled in."""
    if print_schema:
        console.result(schema.render())
        return
    config = load_config()
    document = cfg.to_json(config)
    read = ", ".join(str(f) for f in config.files) or "no file: the defaults for the one binary"
    console.info(f"read {read}: valid, {len(config.image)} image(s).")
    if console.options().json:
        console.result_json(document)
        return
    rendered = _drop_none(document)
    assert isinstance(rendered, dict)
    console.result(tomli_w.dumps(rendered))


def _drop_none(value: object) -> object:
    """TOML has no null: leave unset optional keys out of the rendering."""
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value
