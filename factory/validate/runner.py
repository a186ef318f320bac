"""The ``smoke.Runner`` on the Docker engine: commands in a throw-away container.

The container comes from an image with qemu-user (the builder image), has no network and no
mount, factory's labels, and is removed when the ``with`` block ends, also when starting it
failed. A host file under the runner's folder is copied to ``/binaries/<its path in the folder>``
through the engine's API the first time a command needs it (again when it changed), so the same
runner works with an engine on another host (factory.engine.locality); a binary of a few hundred
KiB takes milliseconds. Time limits are enforced inside the container by coreutils' ``timeout``
(TERM, then KILL two seconds later).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Final

import docker

from factory.engine import docker_engine as engine
from factory.engine.transfer import copy_file_in
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
        self._copied: dict[Path, tuple[int, int]] = {}

    def path_of(self, host_path: Path) -> str:
        """Where the container sees ``host_path`` (a file under the root), copied in first
        unless the same file (size and modification time) was copied before."""
        try:
            relative = host_path.resolve().relative_to(self._root)
        except ValueError as err:
            raise UsageError(
                f"{host_path} is not under {self._root}, the folder given for smoke runs."
            ) from err
        posix = PurePosixPath(relative.as_posix())
        stat = (self._root / relative).stat()
        if self._copied.get(relative) != (stat.st_size, stat.st_mtime_ns):
            copy_file_in(self._container, self._root / relative, MOUNT_POINT / posix)
            self._copied[relative] = (stat.st_size, stat.st_mtime_ns)
        return str(MOUNT_POINT / posix)

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
    """A runner in a fresh container of ``image`` that sees the files of ``root``."""
    spec = engine.ContainerSpec(image=image, purpose="smoke", network=False)
    with engine.container(client, spec, keep=console.options().debug) as running:
        yield ContainerRunner(running, root)
