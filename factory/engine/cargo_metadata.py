"""`cargo metadata` of the workspace around a directory: with the host's cargo when it is on
PATH, else in a builder container (the builder has cargo) with the workspace mounted read-only
(uploaded when the engine is remote: factory.engine.transfer).

Neither compiles anything nor needs the network: see factory.model.workspace.METADATA_COMMAND.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Final

from factory import resources
from factory.engine import builder as builder_image
from factory.engine import docker_engine, transfer
from factory.errors import UsageError
from factory.model import config as cfg
from factory.model.workspace import METADATA_COMMAND, CargoWorkspace, find_manifests, parse_metadata
from factory.util import console
from factory.util.console import Progress

MOUNT: Final = PurePosixPath("/src")
"""Where the outermost directory with a Cargo.toml is mounted in the builder container."""


@dataclass(frozen=True, kw_only=True)
class Read:
    """A workspace and which cargo described it (`host cargo at PATH` or the builder's tag)."""

    workspace: CargoWorkspace
    via: str


def read_workspace(start: Path, *, progress: Progress = console.info, keep: bool = False) -> Read:
    """The Cargo workspace that ``start`` is in (raises NotAWorkspace when it is in none)."""
    start = start.resolve()
    manifests = find_manifests(start)
    cargo = shutil.which("cargo")
    if cargo is not None:
        document = _on_host(cargo, start)
        return Read(workspace=parse_metadata(document), via=f"host cargo at {cargo}")
    # cargo looks for the workspace root in every parent: mount the outermost that has one
    top = manifests[-1]
    progress("no cargo on PATH: running cargo metadata in the builder container")
    document, tag = _in_builder(top, start, progress=progress, keep=keep)

    def relocate(inside: str) -> Path:
        return top / PurePosixPath(inside).relative_to(MOUNT)

    return Read(workspace=parse_metadata(document, relocate=relocate), via=tag)


def _failed(where: Path, detail: str) -> UsageError:
    return UsageError(
        f"`{' '.join(METADATA_COMMAND)}` failed in {where}: {detail.strip()}",
        hint="Fix what cargo names (usually a Cargo.toml of the workspace) and run again.",
    )


def _decode(where: Path, stdout: str) -> dict[str, Any]:
    try:
        document = json.loads(stdout)
    except json.JSONDecodeError as err:
        raise _failed(where, f"its output is not JSON ({err})") from err
    if not isinstance(document, dict):
        raise _failed(where, "its output is not a JSON object")
    return document


def _on_host(cargo: str, start: Path) -> dict[str, Any]:
    try:
        done = subprocess.run(
            [cargo, *METADATA_COMMAND[1:]], cwd=start, capture_output=True, text=True, check=False
        )
    except OSError as err:
        raise _failed(start, f"{cargo} could not be run ({err})") from err
    if done.returncode != 0:
        raise _failed(start, done.stderr)
    return _decode(start, done.stdout)


def _in_builder(
    top: Path, start: Path, *, progress: Progress, keep: bool
) -> tuple[dict[str, Any], str]:
    engine = docker_engine.client()
    builder = builder_image.ensure_builder(
        engine,
        dockerfile=resources.dockerfile("builder"),
        base=cfg.DEFAULT_BASE,
        progress=progress,
    )
    with transfer.directory_mount(
        engine, builder.tag, top, str(MOUNT), progress=progress, keep=keep
    ) as mount:
        spec = docker_engine.ContainerSpec(
            image=builder.tag,
            purpose="metadata",
            mounts=(mount,),
            workdir=str(MOUNT / start.relative_to(top).as_posix()),
        )
        with docker_engine.container(engine, spec, keep=keep) as box:
            done = box.run(list(METADATA_COMMAND), check=False)
    if done.exit_code != 0:
        raise _failed(start, done.stderr)
    return _decode(start, done.stdout), builder.tag
