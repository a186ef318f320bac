"""`factory doctor`: what this host has and lacks, each check with its status and fix."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import requests

from factory.distribution.transport import is_loopback
from factory.engine import docker_engine as engine_mod
from factory.engine import locality
from factory.errors import FactoryError

MIN_FREE_BYTES = 10 * 1024**3
"""The builder image and its caches take about 6 GiB; below 10 GiB free we warn."""
CRITICAL_FREE_BYTES = 3 * 1024**3

BINFMT = Path("/proc/sys/fs/binfmt_misc")


class Status(Enum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True, kw_only=True)
class Check:
    """The outcome of one check of the host (the engine, disk space, binfmt_misc, ...)."""

    name: str
    status: Status
    detail: str
    fix: str = ""

    def to_json(self) -> dict[str, str]:
        return {
            "check": self.name,
            "status": self.status.value,
            "detail": self.detail,
            "fix": self.fix,
        }


def engine_kind(version: Mapping[str, Any]) -> str:
    """`Podman` when Podman's API service answers (it names itself among the components of
    its version), else `Docker`."""
    components = version.get("Components") or []
    podman = any(str(c.get("Name", "")).startswith("Podman") for c in components)
    return "Podman" if podman else "Docker"


def check_engine() -> tuple[Check, str | None]:
    """The engine's reachability and version; returns its data root when known."""
    try:
        engine = engine_mod.client()
    except FactoryError as err:
        return Check(
            name="docker engine", status=Status.FAIL, detail=err.message, fix=err.hint or ""
        ), None
    version = engine.version()
    api = engine_mod.api_version(engine)
    detail = (
        f"{engine_kind(version)} {version.get('Version', '?')} (API {api[0]}.{api[1]}), "
        f"{version.get('Os', '?')}/{version.get('Arch', '?')}"
    )
    where = locality.locality()
    # a remote engine's data root is a path of its host: the disk checked is this one's
    root = None if where.remote else str(engine.info().get("DockerRootDir") or "") or None
    if where.remote:
        detail += f", remote at {where.url}"
    if api < engine_mod.MIN_API_VERSION:
        need = ".".join(map(str, engine_mod.MIN_API_VERSION))
        return Check(
            name="docker engine",
            status=Status.FAIL,
            detail=f"{detail}: API older than {need}",
            fix="Upgrade the Docker engine to 20.10 or newer.",
        ), root
    if where.plain_tcp:
        return Check(
            name="docker engine",
            status=Status.WARN,
            detail=f"{detail}, over plain TCP",
            fix=locality.plain_tcp_warning(where),
        ), root
    return Check(name="docker engine", status=Status.OK, detail=detail), root


def check_disk(path: Path) -> Check:
    while not path.exists():
        path = path.parent
    free = shutil.disk_usage(path).free
    detail = f"{free / 1024**3:.1f} GiB free at {path}"
    if free < CRITICAL_FREE_BYTES:
        return Check(
            name="disk space",
            status=Status.FAIL,
            detail=detail,
            fix="Free disk space (`factory clean`, `docker system prune`): the builder "
            "needs about 6 GiB.",
        )
    if free < MIN_FREE_BYTES:
        return Check(
            name="disk space",
            status=Status.WARN,
            detail=detail,
            fix="Free disk space: builds of all targets want 10 GiB.",
        )
    return Check(name="disk space", status=Status.OK, detail=detail)


def check_binfmt(root: Path = BINFMT) -> Check:
    """Whether foreign-architecture containers (docker run --platform linux/arm64) can run."""
    where = locality.locality()
    if where.remote:
        return Check(
            name="binfmt_misc",
            status=Status.WARN,
            detail=f"not checked: the engine runs on {where.host}, whose kernel decides "
            "(builds do not need it)",
            fix="Run `factory doctor` on the engine's host.",
        )
    if not (root / "status").exists():
        return Check(
            name="binfmt_misc",
            status=Status.WARN,
            detail="binfmt_misc is not mounted: foreign-architecture containers "
            "cannot run (builds do not need it)",
            fix="`factory doctor --fix` (mounts it and registers QEMU)",
        )
    entries = {p.name for p in root.iterdir() if p.name not in {"status", "register"}}
    emulators = sorted(e for e in entries if "aarch64" in e or "x86_64" in e)
    if not emulators:
        return Check(
            name="binfmt_misc",
            status=Status.WARN,
            detail="no QEMU handler registered: `docker run` of another "
            "architecture's image fails (builds do not need it)",
            fix="`factory doctor --fix`, or install Debian's qemu-user-binfmt on the host.",
        )
    return Check(name="binfmt_misc", status=Status.OK, detail=", ".join(emulators))


def check_bootstrap_tools(base_present: bool) -> Check:
    tools = [t for t in ("mmdebstrap", "debootstrap") if shutil.which(t)]
    if tools:
        return Check(
            name="base bootstrap",
            status=Status.OK,
            detail=f"{', '.join(tools)} available to bootstrap the base image",
        )
    status = Status.WARN if base_present else Status.FAIL
    return Check(
        name="base bootstrap",
        status=status,
        detail="neither mmdebstrap nor debootstrap is installed: when the base image "
        "cannot be pulled, it cannot be made",
        fix="apt-get install mmdebstrap (or debootstrap).",
    )


def check_registry(repository: str, timeout: float = 5.0) -> Check:
    host = repository.split("/", 1)[0]
    loopback = is_loopback(host)
    schemes = ["http"] if loopback else ["https", "http"]
    for scheme in schemes:
        try:
            response = requests.get(f"{scheme}://{host}/v2/", timeout=timeout)
        except requests.RequestException:
            continue
        if response.status_code in (200, 401):
            auth = " (needs credentials)" if response.status_code == 401 else ""
            return Check(
                name="registry", status=Status.OK, detail=f"{scheme}://{host}/v2/ answers{auth}"
            )
    if loopback:
        return Check(
            name="registry",
            status=Status.WARN,
            detail=f"nothing answers at {host}",
            fix="`factory image --push` starts a local registry there when needed.",
        )
    return Check(
        name="registry",
        status=Status.FAIL,
        detail=f"{host} does not answer",
        fix="Check the registry address in images.toml ([registry].repository) and the network.",
    )
