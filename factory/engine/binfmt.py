"""QEMU in the host kernel's binfmt_misc, so `docker run` of another architecture's image works.

Builds never need this (factory cross-compiles, and its smoke runs call qemu explicitly). It is
for users who want to `docker run --platform linux/arm64` on an x86-64 host (and vice versa).
`factory doctor --fix` registers the builder's static qemu-user binaries with the `F` flag: the
kernel opens the interpreter once, at registration, so it then works inside every container.
"""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import docker

from factory.engine import locality
from factory.engine.docker_engine import CommandError, Container, ContainerSpec, container, labels
from factory.errors import EngineError
from factory.model.targets import Arch

ROOT = Path("/proc/sys/fs/binfmt_misc")
CACHE = Path("/var/cache/factory/binfmt")
"""Where, as root, factory keeps the static QEMU binaries the kernel runs."""

# ELF e_machine values (the ELF gABI and each architecture's psABI).
_E_MACHINE = {Arch.AMD64: 62, Arch.ARM64: 183}


@dataclass(frozen=True, kw_only=True)
class Registration:
    arch: Arch
    interpreter: str

    @property
    def name(self) -> str:
        return f"qemu-{self.arch.gnu_name}"

    def magic_and_mask(self) -> tuple[bytes, bytes]:
        """Match 64-bit little-endian ELF executables (static or PIE) of this machine."""
        ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)  # ELFCLASS64, LSB, EV_CURRENT
        e_type = (2).to_bytes(2, "little")  # ET_EXEC; the mask also admits ET_DYN (3)
        e_machine = _E_MACHINE[self.arch].to_bytes(2, "little")
        magic = ident + e_type + e_machine
        # Ignore the OS ABI byte and the padding; the low bit of e_type (EXEC or DYN).
        mask = b"\xff" * 7 + b"\x00" * 9 + b"\xfe\xff" + b"\xff\xff"
        return magic, mask

    def line(self) -> str:
        """The text written to binfmt_misc's `register` file."""
        magic, mask = self.magic_and_mask()
        return f":{self.name}:M:0:{_escape(magic)}:{_escape(mask)}:{self.interpreter}:F"


def _escape(data: bytes) -> str:
    return "".join(f"\\x{b:02x}" for b in data)


def host_arch() -> Arch | None:
    machine = platform.machine().lower()
    return {
        "x86_64": Arch.AMD64,
        "amd64": Arch.AMD64,
        "aarch64": Arch.ARM64,
        "arm64": Arch.ARM64,
    }.get(machine)


def foreign_arches(host: Arch | None = None) -> tuple[Arch, ...]:
    host = host or host_arch()
    return tuple(a for a in Arch if a is not host)


def registered(root: Path = ROOT) -> dict[str, bool]:
    """The QEMU handlers the kernel knows, and whether each is enabled."""
    if not (root / "status").exists():
        return {}
    out: dict[str, bool] = {}
    for entry in root.iterdir():
        if entry.name in {"status", "register"} or not entry.name.startswith("qemu-"):
            continue
        text = entry.read_text(errors="replace")
        out[entry.name] = text.splitlines()[0].strip() == "enabled" if text else False
    return out


def register_script(registrations: list[Registration]) -> str:
    """A shell script, run in a privileged container, that registers the handlers."""
    lines = [
        "set -eu",
        f"[ -e {ROOT}/register ] || mount -t binfmt_misc binfmt_misc {ROOT}",
    ]
    for reg in registrations:
        lines.append(
            f"[ -x {reg.interpreter} ] || {{ echo 'missing {reg.interpreter}' >&2; exit 3; }}"
        )
        lines.append(f"[ -e {ROOT}/{reg.name} ] && echo -1 > {ROOT}/{reg.name}")
        lines.append(f"printf '%s' '{reg.line()}' > {ROOT}/register")
    lines.append(f"ls {ROOT}")
    return "\n".join(lines) + "\n"


def fix(engine: docker.DockerClient, image: str) -> dict[str, bool]:
    """Register the image's QEMU for every foreign architecture; returns what is registered.

    As root, factory copies the image's static qemu-user binaries to CACHE and registers them
    from the host. Otherwise it runs one privileged container that does the same: the only
    privileged thing factory ever does, and only when asked (`factory doctor --fix`).
    """
    locality.refuse_when_remote(
        "Registering QEMU in binfmt_misc",
        "binfmt_misc is a setting of the kernel that runs the containers, {host}'s, which "
        "factory cannot check or change from here.",
        hint="Run `factory doctor --fix` on the engine's host, or install Debian's "
        "qemu-user-binfmt there.",
    )
    arches = foreign_arches()
    if os.geteuid() == 0:
        _fix_from_host(engine, image, arches)
    else:
        _fix_in_container(engine, image, arches)
    return registered()


def _fix_from_host(engine: docker.DockerClient, image: str, arches: Sequence[Arch]) -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    registrations = []
    for arch in arches:
        destination = CACHE / arch.qemu_binary
        copy_from_image(engine, image, f"/usr/bin/{arch.qemu_binary}", destination)
        registrations.append(Registration(arch=arch, interpreter=str(destination)))
    try:
        if not (ROOT / "register").exists():
            subprocess.run(
                ["mount", "-t", "binfmt_misc", "binfmt_misc", str(ROOT)],
                check=True,
                capture_output=True,
                text=True,
            )
        for reg in registrations:
            entry = ROOT / reg.name
            if entry.exists():
                entry.write_text("-1")
            (ROOT / "register").write_text(reg.line())
    except (OSError, subprocess.CalledProcessError) as err:
        detail = getattr(err, "stderr", None) or err
        raise EngineError(
            f"Registering QEMU in binfmt_misc failed: {detail}.",
            hint="Run as root on a host whose kernel has binfmt_misc, or install Debian's "
            "qemu-user-binfmt on the host instead.",
        ) from err


def copy_from_image(engine: docker.DockerClient, image: str, path: str, destination: Path) -> None:
    """Copy one file out of an image (through a created, never started, container)."""
    created = engine.containers.create(image, command=["true"], labels=labels(purpose="copy"))
    try:
        box = Container(engine, created, ContainerSpec(image=image, purpose="copy"))
        box.copy_out(path, destination)
    finally:
        created.remove(force=True)


def _fix_in_container(engine: docker.DockerClient, image: str, arches: Sequence[Arch]) -> None:
    registrations = [
        Registration(arch=arch, interpreter=f"/usr/bin/{arch.qemu_binary}") for arch in arches
    ]
    spec = ContainerSpec(image=image, purpose="binfmt", privileged=True)
    with container(engine, spec) as box:
        try:
            box.run(["sh", "-c", register_script(registrations)], what="binfmt registration")
        except CommandError as err:
            raise EngineError(
                f"Registering QEMU in binfmt_misc failed: {err.stderr.strip()[-2000:]}",
                hint="The engine must allow privileged containers; or install Debian's "
                "qemu-user-binfmt on the host instead.",
            ) from err
