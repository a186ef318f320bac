"""The local registry: Debian's docker-registry in a container on a loopback port.

The image is built from ``dockerfiles/registry.Dockerfile`` (and ``dockerfiles/registry/``) on
the bootstrapped Debian base, tagged ``factory-registry:<content hash>`` so a change of the
Dockerfile, its config or the base makes a new image. The container ``factory-registry-<port>``
publishes port 5000 on a loopback address only and keeps its blobs in the named volume
``factory-registry-<port>`` (kept by ``stop``, so a restart serves what was pushed before).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import docker
import docker.errors
import requests

from factory import resources
from factory.distribution import reference
from factory.distribution.transport import is_loopback
from factory.engine import images, locality
from factory.engine.docker_engine import LABEL, ensure_volume, image_names, labels, named
from factory.errors import EngineError
from factory.util import console
from factory.util.console import Progress

DOCKERFILE: Final = resources.dockerfile("registry")
BASE: Final = "debian:trixie-slim"
REPOSITORY: Final = "factory-registry"
ROLE: Final = "registry"
ROLE_LABEL: Final = "org.factory.role"
PORT_LABEL: Final = "org.factory.registry.port"
DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 5000
DATA_DIR: Final = "/var/lib/registry"
START_TIMEOUT: Final = 30.0
MESSAGES: Final = images.Messages(
    what="registry",
    hint="A failing apt-get usually means Debian's mirror is unreachable from containers; fix "
    "that and run `factory registry start` again.",
    step_prefix="registry",
)


@dataclass(frozen=True, kw_only=True)
class Status:
    """One local registry container as the engine sees it."""

    name: str
    state: str
    """`running`, `exited`, ... or `absent`."""
    image: str | None
    address: str
    volume: str
    answers: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state,
            "image": self.image,
            "address": self.address,
            "volume": self.volume,
            "answers": self.answers,
        }


def container_name(port: int) -> str:
    return f"{REPOSITORY}-{port}"


def answers(address: str, *, timeout: float = 2.0) -> bool:
    """Whether a registry answers `GET /v2/` over plain HTTP at `host:port` (200 or 401)."""
    try:
        response = requests.get(f"http://{address}/v2/", timeout=timeout)
    except requests.RequestException:
        return False
    response.close()
    return response.status_code in (200, 401)


def ensure_image(engine: docker.DockerClient, *, log: Progress = console.info) -> str:
    """The registry image's tag: reused when present, else built on the bootstrapped base."""
    planned = images.identify(engine, DOCKERFILE, repository=REPOSITORY, base=BASE, progress=log)
    if images.find(engine, planned.tag) is not None:
        return planned.tag
    log(f"registry: building {planned.tag} from {planned.base} (Debian's docker-registry package)")
    images.build(
        engine,
        planned.context,
        tag=planned.tag,
        buildargs=planned.buildargs,
        image_labels=labels(role=ROLE),
        messages=MESSAGES,
        progress=console.detail,
        detail=console.detail,
    )
    return planned.tag


def _find(engine: docker.DockerClient, port: int) -> Any | None:
    try:
        return engine.containers.get(container_name(port))
    except docker.errors.NotFound:
        return None


def _logs(container: Any) -> str:
    with contextlib.suppress(docker.errors.DockerException):
        return bytes(container.logs(tail=20)).decode(errors="replace").strip()
    return ""


def refuse_remote(host: str, port: int) -> None:
    """With a remote engine the registry's port would be published on the engine's host, where
    this host's pushes to `host:port` would not reach it: raise EngineError instead."""
    locality.refuse_when_remote(
        f"Starting factory's local registry on {host}:{port}",
        f"its port would be published on {{host}}'s {host}, not on this host's, so a push from "
        "here would not reach it.",
        hint="Push to a registry this host can reach (--registry HOST:PORT/REPOSITORY, or "
        "[registry] repository in images.toml), e.g. one started on the engine's host and "
        "published on an address you can reach; or use an engine on this host (unset "
        "DOCKER_HOST).",
    )


def start(
    engine: docker.DockerClient,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    log: Progress = console.info,
) -> Status:
    """Start (or keep) the local registry on `host:port` and wait until it answers (refused with
    a remote engine: see refuse_remote)."""
    refuse_remote(host, port)
    image = ensure_image(engine, log=log)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    name = container_name(port)
    existing = _find(engine, port)
    if existing is not None:
        same = named(image_names(existing.image), image)
        if same and existing.status == "running" and answers(address):
            return status_of(engine, port, host=host)
        existing.remove(force=True)
    ensure_volume(engine, name, role=ROLE)
    try:
        container = engine.containers.run(
            image,
            name=name,
            detach=True,
            ports={"5000/tcp": (host, port)},
            mounts=[docker.types.Mount(target=DATA_DIR, source=name, type="volume")],
            labels=labels(role=ROLE, **{"registry.port": str(port)}),
            restart_policy={"Name": "unless-stopped"},
        )
    except docker.errors.APIError as exc:
        with contextlib.suppress(docker.errors.DockerException):
            engine.containers.get(name).remove(force=True)
        raise EngineError(
            f"The engine could not start the local registry on {address}: "
            f"{exc.explanation or exc}.",
            hint=f"Free port {port} (another registry or program listens there), or push to "
            "another loopback port.",
        ) from exc
    deadline = time.monotonic() + START_TIMEOUT
    while not answers(address, timeout=1.0):
        container.reload()
        if container.status not in ("created", "running") or time.monotonic() > deadline:
            logs = _logs(container)
            container.remove(force=True)
            raise EngineError(
                f"The local registry {name} did not answer on http://{address}/v2/ within "
                f"{START_TIMEOUT:.0f} s (state {container.status}). Its log:\n{logs}",
                hint="Fix what the log says, then run `factory registry start` again.",
            )
        time.sleep(0.2)
    return status_of(engine, port, host=host)


def stop(engine: docker.DockerClient, *, port: int = DEFAULT_PORT) -> bool:
    """Stop and remove the registry container (its volume stays); False if none ran."""
    found = _find(engine, port)
    if found is None:
        return False
    found.remove(force=True)
    return True


def status_of(engine: docker.DockerClient, port: int, *, host: str = DEFAULT_HOST) -> Status:
    found = _find(engine, port)
    address = f"{host}:{port}"
    if found is not None:
        bindings = (found.attrs.get("HostConfig", {}).get("PortBindings") or {}).get("5000/tcp")
        if bindings:
            bound = bindings[0].get("HostIp") or host
            address = f"[{bound}]:{port}" if ":" in bound else f"{bound}:{port}"
    return Status(
        name=container_name(port),
        state=str(found.status) if found is not None else "absent",
        image=(found.image.tags or [found.image.id])[0] if found is not None else None,
        address=address,
        volume=container_name(port),
        answers=found is not None and answers(address),
    )


def statuses(engine: docker.DockerClient) -> list[Status]:
    """Every local registry factory manages (one per port), or the default one if none."""
    found: Iterable[Any] = engine.containers.list(
        all=True, filters={"label": [f"{LABEL}=true", f"{ROLE_LABEL}={ROLE}"]}
    )
    ports = sorted({int(c.labels.get(PORT_LABEL, DEFAULT_PORT)) for c in found})
    return [status_of(engine, port) for port in ports or [DEFAULT_PORT]]


def bind_address(registry: str) -> tuple[str, int] | None:
    """The loopback host and port a registry host names, or None when it is not loopback."""
    if not is_loopback(registry):
        return None
    parts = urlsplit(f"//{registry}")
    name = parts.hostname or DEFAULT_HOST
    host = DEFAULT_HOST if name == "localhost" else name
    return host, parts.port or 80


def ensure_local_registry(
    repository: str,
    *,
    engine_factory: Callable[[], docker.DockerClient] | None = None,
    log: Progress = console.info,
) -> bool:
    """Before a push to a loopback repository where nothing answers: start the local registry.

    Returns True when it started one (and said so on stderr), False when there was nothing to
    do (a remote registry, or one already answering).
    """
    ref = reference.repository(repository)
    bound = bind_address(ref.registry)
    if bound is None or answers(ref.registry):
        return False
    host, port = bound
    log(f"registry: nothing answers at {ref.registry}; starting factory's local registry there")
    if engine_factory is None:
        from factory.engine.docker_engine import client

        engine_factory = client
    started = start(engine_factory(), host=host, port=port, log=log)
    log(f"registry: {started.name} answers on http://{started.address}/v2/ ({started.image})")
    return True
