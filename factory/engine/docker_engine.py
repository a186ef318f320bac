"""The Docker engine, through docker-py: one place that knows how to reach it.

Everything factory creates in the engine carries ``org.factory.managed=true``; containers also
carry ``org.factory.session=<id>`` (one id per factory process) so leftovers of a crashed run can
be told from a running one. docker-py's sharp edges are wrapped here: ``exec_run`` never raises
(``Container.run`` does, with the command's stderr), and a container that fails to start is
removed before the error propagates.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import tarfile
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Final

import docker
import docker.errors
import requests

from factory.distribution import reference as references
from factory.engine import locality
from factory.errors import EngineError, FactoryError, UsageError
from factory.util import console
from factory.util.console import Progress

LABEL = "org.factory.managed"
"""Every image, container and volume factory creates carries this label (value "true")."""

SESSION_LABEL: Final = "org.factory.session"
SESSION_ID: Final = uuid.uuid4().hex[:12]
HOST: Final = socket.gethostname()
_swept = False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_orphans(engine: docker.DockerClient, *, force: bool = False) -> int:
    """Remove containers left by factory runs on this host whose process is gone.

    A run killed with SIGKILL cannot remove its containers; the next run does, once per
    process. Returns how many it removed.
    """
    global _swept
    if _swept and not force:
        return 0
    _swept = True
    removed = 0
    try:
        found = engine.containers.list(
            all=True, filters={"label": [f"{LABEL}=true", f"org.factory.host={HOST}"]}
        )
    except (docker.errors.DockerException, requests.RequestException):
        return 0
    for box in found:
        pid = str(box.labels.get("org.factory.pid", ""))
        if not pid.isdigit() or _alive(int(pid)):
            continue
        with contextlib.suppress(docker.errors.DockerException, requests.RequestException):
            box.remove(force=True)
            removed += 1
    return removed


"""This factory process's id, on every container it creates."""

MIN_API_VERSION = (1, 41)


_warned = False


def client() -> docker.DockerClient:
    """A client for the engine that DOCKER_HOST (or the default socket) names; ``ssh://`` goes
    through the ssh command (the engine's host needs the docker CLI: `docker system dial-stdio`).
    Warns once per process when the engine is reached over plain TCP."""
    global _warned
    where = locality.locality()
    if where.plain_tcp and not _warned:
        _warned = True
        console.warn(locality.plain_tcp_warning(where))
    try:
        engine = docker.from_env(timeout=600, use_ssh_client=where.scheme == "ssh")
        engine.ping()
    except (docker.errors.DockerException, requests.RequestException) as err:
        raise EngineError(
            f"The Docker engine does not answer ({err}).",
            hint=locality.tls_hint(where)
            or "Start it (e.g. `sudo systemctl start docker`), or point DOCKER_HOST at a "
            "running engine, and check that this user may use its socket.",
        ) from err
    return engine


def api_version(engine: docker.DockerClient) -> tuple[int, int]:
    raw = str(engine.version().get("ApiVersion", "0.0"))
    major, _, minor = raw.partition(".")
    return int(major), int(minor or 0)


def labels(**extra: str) -> dict[str, str]:
    """factory's labels for something it creates in the engine."""
    return {LABEL: "true", **{f"org.factory.{k}": v for k, v in extra.items()}}


def _name_key(name: str) -> tuple[str, str, str | None, str | None] | None:
    try:
        ref = references.parse(name)
    except UsageError:
        return None
    if ref.registry != "localhost":
        return ref.registry, ref.repository, ref.tag, ref.digest
    # Podman names an image it loaded or committed under a short name `localhost/<name>`.
    repository = ref.repository if "/" in ref.repository else f"library/{ref.repository}"
    return references.DOCKER_HUB, repository, ref.tag, ref.digest


def named(names: Iterable[str], reference: str) -> bool:
    """Whether an image's names (its tags and repository digests) include ``reference``.

    What the engine returns for a name is not always an image of that name: Podman also answers
    a short name with an image whose name merely ends with it (``debian:trixie-slim`` finds
    ``localhost/factory-bootstrap/debian:trixie-slim``). Names compare as Docker reads them,
    with Podman's ``localhost/`` for a short name.
    """
    wanted = _name_key(reference)
    return wanted is not None and any(_name_key(name) == wanted for name in names)


def image_names(image: Any) -> list[str]:
    """A docker-py image's tags and repository digests."""
    return [*(image.tags or []), *(image.attrs.get("RepoDigests") or [])]


class CommandError(FactoryError):
    """A command inside a container exited non-zero (re-raised by callers as their own kind)."""

    def __init__(self, message: str, *, exit_code: int, stdout: str, stderr: str) -> None:
        super().__init__(message)
        self.command_exit_code = exit_code
        self.stdout = stdout
        self.stderr = stderr


@dataclass(frozen=True, kw_only=True)
class ExecResult:
    exit_code: int
    stdout: str
    stderr: str


@dataclass(frozen=True, kw_only=True)
class Mount:
    """A named volume or a host directory mounted into a container."""

    source: str
    """A volume name, or an absolute host path when ``bind`` is true."""
    target: str
    read_only: bool = False
    bind: bool = False


@dataclass(frozen=True, kw_only=True)
class ContainerSpec:
    """What a builder container needs: its image, mounts, network and environment."""

    image: str
    purpose: str
    """A short word for its name and labels: `fetch`, `build`, `check`."""
    mounts: tuple[Mount, ...] = ()
    network: bool = False
    environment: Mapping[str, str] = field(default_factory=dict)
    workdir: str = "/"
    privileged: bool = False
    """Only `factory doctor --fix` asks for this (to register QEMU in binfmt_misc)."""
    network_mode: str | None = None
    """With ``network``: a network's name or ``container:NAME`` instead of the default bridge."""
    tmpfs: Mapping[str, str] = field(default_factory=dict)
    """Memory-backed mounts (path: options) for what must not reach a disk or `docker inspect`."""


def _tail(text: str, limit: int = 6000) -> str:
    text = text.strip()
    return text if len(text) <= limit else "…\n" + text[-limit:]


class Container:
    """A running container; commands run in it with ``run``."""

    def __init__(self, engine: docker.DockerClient, container: Any, spec: ContainerSpec) -> None:
        self._engine = engine
        self._container = container
        self.spec = spec

    @property
    def name(self) -> str:
        return str(self._container.name)

    def run(
        self,
        argv: Sequence[str],
        *,
        environment: Mapping[str, str] | None = None,
        workdir: str | None = None,
        on_output: Progress | None = None,
        check: bool = True,
        what: str | None = None,
    ) -> ExecResult:
        """Run ``argv``; raise CommandError (with its stderr) on a non-zero exit if ``check``.

        ``on_output`` receives each line of stdout and stderr as it arrives.
        """
        api = self._engine.api
        try:
            created = api.exec_create(
                self._container.id,
                list(argv),
                environment=dict(environment or {}),
                workdir=workdir or self.spec.workdir,
            )
            stream = api.exec_start(created["Id"], stream=True, demux=True)
            out, err = _collect(stream, on_output)
            code = int(api.exec_inspect(created["Id"]).get("ExitCode") or 0)
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise EngineError(
                f"The engine failed while running `{' '.join(argv)}` in {self.name}: {exc}.",
                hint="Check that the engine is still running (docker info) and retry.",
            ) from exc
        result = ExecResult(exit_code=code, stdout=out, stderr=err)
        if check and code != 0:
            label = what or " ".join(argv)
            raise CommandError(
                f"{label} failed with exit code {code}:\n{_tail(err or out)}",
                exit_code=code,
                stdout=out,
                stderr=err,
            )
        return result

    def kill(self) -> None:
        """Stop whatever runs in the container now (a sibling job failed); removal follows when
        its ``container()`` block ends. A container already gone is not an error."""
        with contextlib.suppress(docker.errors.APIError, requests.RequestException):
            self._container.kill()

    def copy_in(self, directory: str, archive: bytes) -> None:
        """Unpack a tar ``archive`` under ``directory`` in the container (through the engine's
        API: this works with a remote engine, unlike a mount of a host path)."""
        try:
            self._container.put_archive(directory, archive)
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise EngineError(
                f"Could not copy files into {directory} of {self.name}: {exc}.",
                hint="Check the engine's free disk space and that it is running, then retry.",
            ) from exc

    def copy_out(self, path: str, destination: Path) -> Path:
        """Copy one file from the container to ``destination`` (a file path) on the host.

        The file is written by this process, so it belongs to the invoking user.
        """
        try:
            chunks, _ = self._container.get_archive(path)
            buffer = io.BytesIO(b"".join(chunks))
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise EngineError(
                f"Could not copy {path} out of {self.name}: {exc}.",
                hint="Check free disk space and that the engine is running, then retry.",
            ) from exc
        with tarfile.open(fileobj=buffer) as archive:
            member = archive.getmember(PurePosixPath(path).name)
            source = archive.extractfile(member)
            if source is None:
                raise EngineError(f"{path} in {self.name} is not a regular file.")
            destination.parent.mkdir(parents=True, exist_ok=True)
            partial = destination.with_name(destination.name + ".partial")
            try:
                with source, partial.open("wb") as sink:
                    while chunk := source.read(1 << 20):
                        sink.write(chunk)
                partial.chmod(member.mode & 0o7777)
                partial.replace(destination)
            except BaseException:  # interrupted or failed: never leave a half-written file
                partial.unlink(missing_ok=True)
                raise
        return destination


def _collect(stream: Any, on_output: Progress | None) -> tuple[str, str]:
    out: list[bytes] = []
    err: list[bytes] = []
    pending = {1: b"", 2: b""}
    for stdout_chunk, stderr_chunk in stream:
        for fd, chunk, sink in ((1, stdout_chunk, out), (2, stderr_chunk, err)):
            if not chunk:
                continue
            sink.append(chunk)
            if on_output is not None:
                *lines, pending[fd] = (pending[fd] + chunk).split(b"\n")
                for line in lines:
                    on_output(line.decode(errors="replace").rstrip("\r"))
    if on_output is not None:
        for rest in pending.values():
            if rest:
                on_output(rest.decode(errors="replace"))
    return b"".join(out).decode(errors="replace"), b"".join(err).decode(errors="replace")


def _docker_mounts(mounts: Sequence[Mount]) -> list[docker.types.Mount]:
    bound = [m.source for m in mounts if m.bind]
    where = locality.locality()
    if bound and where.remote:
        raise EngineError(
            f"factory tried to mount {', '.join(bound)} of this host into a container, but the "
            f"engine is remote ({where.url}): it would mount that path of {where.host} instead.",
            hint="This is a bug in factory (everything should be uploaded to a remote engine): "
            "please report it; meanwhile use an engine on this host (unset DOCKER_HOST).",
        )
    return [
        docker.types.Mount(
            target=m.target,
            source=m.source,
            type="bind" if m.bind else "volume",
            read_only=m.read_only,
        )
        for m in mounts
    ]


def ensure_volume(engine: docker.DockerClient, name: str, **extra: str) -> None:
    """Create the named volume (labelled) unless it exists.

    Two containers of one run (targets side by side) may both find it missing: Docker answers
    the second create with the volume, Podman with an error ("adding volume to state: name ...
    is in use: volume already exists"), which is no error when the volume is there now.
    """
    try:
        engine.volumes.get(name)
    except docker.errors.NotFound:
        try:
            engine.volumes.create(name=name, labels=labels(**extra))
        except docker.errors.APIError:
            if not _volume_exists(engine, name):  # else made meanwhile by another container
                raise


def _volume_exists(engine: docker.DockerClient, name: str) -> bool:
    try:
        engine.volumes.get(name)
    except docker.errors.NotFound:
        return False
    return True


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """While a container exists, SIGTERM unwinds like Ctrl-C, so `finally` removes it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def container(
    engine: docker.DockerClient, spec: ContainerSpec, *, keep: bool = False
) -> Iterator[Container]:
    """A running container for ``spec``, removed on exit (also when starting it fails, on
    Ctrl-C and on SIGTERM).

    ``keep`` (factory --debug) leaves it for inspection.
    """
    with _terminate_as_interrupt(), _container(engine, spec, keep=keep) as box:
        yield box


@contextmanager
def _container(
    engine: docker.DockerClient, spec: ContainerSpec, *, keep: bool = False
) -> Iterator[Container]:
    name = f"factory-{spec.purpose}-{SESSION_ID}-{uuid.uuid4().hex[:6]}"
    created: Any = None
    try:
        try:
            sweep_orphans(engine)
            for mount in spec.mounts:
                if not mount.bind:
                    ensure_volume(engine, mount.source, role="cache")
            created = engine.containers.create(
                spec.image,
                command=["sleep", "infinity"],
                entrypoint=[],
                name=name,
                labels=labels(
                    session=SESSION_ID, purpose=spec.purpose, host=HOST, pid=str(os.getpid())
                ),
                mounts=_docker_mounts(spec.mounts),
                environment=dict(spec.environment),
                working_dir=spec.workdir,
                network_mode=(spec.network_mode or None) if spec.network else "none",
                tmpfs=dict(spec.tmpfs),
                privileged=spec.privileged,
                detach=True,
            )
            created.start()
        except docker.errors.ImageNotFound as exc:
            raise EngineError(
                f"The image {spec.image} is not in the engine.",
                hint="Build the builder first: `factory builder`.",
            ) from exc
        except (docker.errors.DockerException, requests.RequestException) as exc:
            explanation = getattr(exc, "explanation", None) or exc
            raise EngineError(
                f"The engine could not start a {spec.purpose} container from {spec.image}: "
                f"{explanation}.",
                hint="Check the engine's free disk space (docker system df) and that the "
                "mounted paths exist, then retry.",
            ) from exc
        yield Container(engine, created, spec)
    finally:
        if created is not None and not keep:
            with contextlib.suppress(docker.errors.DockerException, requests.RequestException):
                created.remove(force=True, v=False)
