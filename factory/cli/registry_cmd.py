"""`factory registry start|stop|status`: the local registry."""

from __future__ import annotations

from typing import Annotated

import typer

from factory.cli.app import app
from factory.engine import docker_engine as engine
from factory.engine import local_registry
from factory.util import console

registry_app = typer.Typer(
    help="The local registry (Debian's docker-registry) on a loopback port.",
    no_args_is_help=True,
)
app.add_typer(registry_app, name="registry")

PortOption = Annotated[
    int,
    typer.Option("--port", "-p", metavar="PORT", help="The port on 127.0.0.1.", min=1, max=65535),
]


def _show(statuses: list[local_registry.Status]) -> None:
    if console.options().json:
        console.result_json([s.to_json() for s in statuses])
        return
    console.table(
        ["name", "state", "answers", "address", "volume", "image"],
        [
            [s.name, s.state, "yes" if s.answers else "no", s.address, s.volume, s.image or "-"]
            for s in statuses
        ],
    )


@registry_app.command("start")
def start(port: PortOption = local_registry.DEFAULT_PORT) -> None:
    """Build the registry image if needed and run it on 127.0.0.1:PORT (data in a volume)."""
    status = local_registry.start(engine.client(), port=port)
    console.info(f"registry: {status.name} answers on http://{status.address}/v2/")
    _show([status])


@registry_app.command("stop")
def stop(port: PortOption = local_registry.DEFAULT_PORT) -> None:
    """Stop and remove the registry container; its volume (the pushed images) stays."""
    stopped = local_registry.stop(engine.client(), port=port)
    name = local_registry.container_name(port)
    console.info(f"registry: {'stopped ' + name if stopped else name + ' was not running'}")
    if console.options().json:
        console.result_json({"name": name, "stopped": stopped})


@registry_app.command("status")
def status() -> None:
    """The local registries factory manages: state, address, whether /v2/ answers."""
    _show(local_registry.statuses(engine.client()))
