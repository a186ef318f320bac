"""Podman's Docker-compatible API service on a socket of the test's own, with storage of its own.

`podman system service` (rootful) answers the Docker API on ``unix://<dir>/podman.sock``. Its
configuration lives in the directory too, so the test neither reads nor changes the host's
Podman setup, and removing the directory removes every image, container and volume it made:

- ``containers.conf``: ``default_ulimits = []``. Podman 4.3 gives every container the ulimits
  of its own defaults (RLIMIT_NOFILE among them), and runc fails on these machines with
  "error setting rlimit type 7: operation not permitted" without this.
- ``storage.conf``: the overlay driver with its graph root and run root in the directory (the
  builder alone is 2.5 GB: not the host's Podman storage, and never Docker's).
- ``registries.conf``: no search registries, docker.io blocked, so a pull of the base fails
  at once everywhere (as it does on these machines) and factory bootstraps it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import docker
import requests

START_TIMEOUT = 60.0

CONTAINERS_CONF = """\
[containers]
# Without this, runc fails: "error setting rlimit type 7: operation not permitted".
default_ulimits = []
"""

REGISTRIES_CONF = """\
unqualified-search-registries = []
short-name-mode = "permissive"

[[registry]]
location = "docker.io"
blocked = true
"""


def storage_conf(directory: Path) -> str:
    return (
        "[storage]\n"
        'driver = "overlay"\n'
        f'graphroot = "{directory / "root"}"\n'
        f'runroot = "{directory / "run"}"\n'
    )


def environment(directory: Path) -> dict[str, str]:
    """What the podman command and the service read their configuration from."""
    return {
        "CONTAINERS_CONF": str(directory / "containers.conf"),
        "CONTAINERS_STORAGE_CONF": str(directory / "storage.conf"),
        "CONTAINERS_REGISTRIES_CONF": str(directory / "registries.conf"),
    }


def missing() -> str | None:
    """Why the service cannot run here, or None."""
    if shutil.which("podman") is None:
        return "podman is not installed (apt-get install podman)"
    if os.geteuid() != 0:
        return "the test runs Podman's service rootful: run it as root"
    return None


@dataclass(frozen=True, kw_only=True)
class PodmanService:
    directory: Path
    process: subprocess.Popen[bytes]

    @property
    def socket(self) -> Path:
        return self.directory / "podman.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    @property
    def environment(self) -> dict[str, str]:
        return environment(self.directory)

    def client(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.url, timeout=600)

    def podman(self, *args: str, stdin: int | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["podman", *args],
            stdin=stdin,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, **self.environment},
        )

    def load_from(self, engine: docker.DockerClient, references: Sequence[str]) -> None:
        """`docker save REF | podman load` for each reference (image ids are kept: both are
        the config's digest)."""
        for reference in references:
            loader = subprocess.Popen(
                ["podman", "load"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.environment},
            )
            assert loader.stdin is not None and loader.stdout is not None
            with loader.stdin:
                for chunk in engine.images.get(reference).save(named=reference):
                    loader.stdin.write(chunk)
            said = loader.stdout.read().decode(errors="replace")
            assert loader.wait() == 0, f"podman load of {reference} failed:\n{said}"


def _answers(url: str) -> bool:
    try:
        return bool(docker.DockerClient(base_url=url, timeout=5).ping())
    except (docker.errors.DockerException, requests.RequestException):
        return False


@contextlib.contextmanager
def running(directory: Path) -> Iterator[PodmanService]:
    """The service on ``directory/podman.sock``; stopped, its containers removed and the
    directory deleted on exit."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "containers.conf").write_text(CONTAINERS_CONF)
    (directory / "storage.conf").write_text(storage_conf(directory))
    (directory / "registries.conf").write_text(REGISTRIES_CONF)
    service: PodmanService | None = None
    with (directory / "service.log").open("wb") as log:
        try:
            process = subprocess.Popen(
                ["podman", "system", "service", "--time=0", f"unix://{directory}/podman.sock"],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **environment(directory)},
            )
            service = PodmanService(directory=directory, process=process)
            yield _started(service)
        finally:
            if service is not None:
                service.podman("rm", "--all", "--force", "--time", "0")
                service.process.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    service.process.wait(timeout=30)
                if service.process.poll() is None:
                    service.process.kill()
                    service.process.wait()
            _stop_helpers(directory)
            for _ in range(2):  # again: a mount made while deleting keeps its mount point
                _unmount_under(directory)
                shutil.rmtree(directory / "root", ignore_errors=True)
                shutil.rmtree(directory / "run", ignore_errors=True)


def _stop_helpers(directory: Path, grace: float = 10.0) -> None:
    """End every process that names ``directory`` on its command line. An exec session's conmon
    waits 300 s (`--exit-delay 300`) and then runs `podman container cleanup --root
    <directory>/root ...`, which mounts the storage again after the service is gone: it is
    asked to stop, then killed."""
    needle = str(directory).encode()

    def helpers() -> list[int]:
        found: list[int] = []
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            with contextlib.suppress(OSError):
                if needle in cmdline.read_bytes() and int(cmdline.parent.name) != os.getpid():
                    found.append(int(cmdline.parent.name))
        return found

    deadline = time.monotonic() + grace
    for signal_number in (signal.SIGTERM, signal.SIGKILL):
        for pid in helpers():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal_number)
        while helpers() and time.monotonic() < deadline:
            time.sleep(0.2)
        deadline = time.monotonic() + grace


def _unmount_under(directory: Path) -> None:
    """The overlay driver mounts its graph root's `overlay/` on itself, once per podman process
    that opens the storage, stacked, and the mounts outlive the service: unmount what is under
    ``directory``, deepest first, until nothing is left."""
    for _ in range(64):
        mounts = Path("/proc/self/mounts").read_text().splitlines()
        points = [line.split()[1] for line in mounts if len(line.split()) > 1]
        inside = [p for p in points if Path(p).is_relative_to(directory)]
        if not inside:
            return
        for point in sorted(inside, key=len, reverse=True):
            subprocess.run(["umount", "--lazy", point], capture_output=True, check=False)


def _started(service: PodmanService) -> PodmanService:
    deadline = time.monotonic() + START_TIMEOUT
    while not _answers(service.url):
        if service.process.poll() is not None or time.monotonic() > deadline:
            log = (service.directory / "service.log").read_text(errors="replace")
            raise AssertionError(f"podman system service did not answer:\n{log[-3000:]}")
        time.sleep(0.2)
    return service
