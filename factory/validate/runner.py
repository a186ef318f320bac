"""The ``smoke.Runner`` on the Docker engine: commands in a throw-away container.

The container comes from an image with qemu-user (the builder image), has the binaries' folder
bind-mounted read-only at ``/binaries``, no network, factory's labels, and is removed when the
``with`` block ends, also when starting it failed. Time limits are enforced inside the
container by coreutils' ``timeout`` (TERM, then KILL two seconds later).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Final

import docker

from factory.engine import docker_engine as engine
from factory.errors import UsageError
from factory.util import console
from factory.validate.smoke import RunResult

MOUNT_POINT: Final = PurePosixPath("/binaries")
_TIMED_OUT: Final = (124, 128 + 9)  # timeout's own status; KILL after the grace period


class ContainerRunner:
    """The ``smoke.Runner`` of one container where ``root`` (on the host) is ``/binaries``."""

    def __init__(self, container: engine.Container, root: Path) -> None:
        self._container = container
        self._root = root.resolve()

    def path_of(self, host_path: Path) -> str:
        """Where the container sees ``host_path`` (a file under the mounted root)."""
        try:
            relative = host_path.resolve().relative_to(self._root)
        except ValueError as err:
            raise UsageError(
                f"{host_path} is not under {self._root}, the folder mounted for smoke runs."
            ) from err
        return str(MOUNT_POINT / relative.as_posix())

    def run(self, argv: Sequence[str], *, timeout: float) -> RunResult:
        wrapped = ["timeout", "-k", "2", f"{timeout:.3f}", *argv]
        started = time.monotonic()
        result = self._container.run(wrapped, check=False)
        seconds = time.monotonic() - started
        timed_out = result.exit_code in _TIMED_OUT and seconds >= timeout
        return RunResult(
            exit_code=result.exit_code,
            stdout=result.stdout,
            stderr=result.stderr,
            timed_out=timed_out,
            seconds=seconds,
        )


@contextmanager
def container_runner(
    client: docker.DockerClient, image: str, root: Path
) -> Iterator[ContainerRunner]:
    """A runner in a fresh container of ``image`` with ``root`` mounted read-only."""
    spec = engine.ContainerSpec(
        image=image,
        purpose="smoke",
        mounts=(
            engine.Mount(
                source=str(root.resolve()), target=str(MOUNT_POINT), read_only=True, bind=True
            ),
        ),
        network=False,
    )
    with engine.container(client, spec, keep=console.options().debug) as running:
        yield ContainerRunner(running, root)
