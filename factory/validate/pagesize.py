"""Smoke runs under a 16K-page kernel: each arm64 binary booted in qemu-system-aarch64.

qemu-user gives every binary the host's 4K pages, so a binary that assumes 4K pages (jemalloc
configured with ``LG_PAGE=12``, hand-rolled ``mmap`` arithmetic) passes the normal smoke run and
breaks on a 16K-page arm64 kernel (Apple silicon under Asahi, some cloud images). With
``[image.smoke] page_sizes = [16384]`` each arm64 binary also runs as the first process after
Debian's 16K-page arm64 kernel boots in qemu-system-aarch64 (``-cpu max``, which has 16K
granules: cortex-a53 and cortex-a57 have none, and the kernel hangs there before printing
anything), inside a container of the page-size image (``factory.engine.pagesize_image``).

The guest's initramfs (written here: ``factory.validate.guest``) holds factory's /init, the binary
and its arguments; init runs it and prints its exit status and output on the console, where
``guest.parse`` reads them back. The run is judged like the normal smoke run (``smoke.judge``:
exit code, stdout regex), and also fails when the guest did not run with the page size asked
for. 4096 in ``page_sizes`` is the normal run, which always happens. x86-64 has 4K pages only:
amd64 targets are reported "not run" (which fails nothing).
"""

from __future__ import annotations

import base64
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, Protocol

from factory.engine import pagesize_image
from factory.errors import EngineError
from factory.model.config import SmokeConfig
from factory.model.targets import Arch, Target
from factory.validate import guest as guest_protocol
from factory.validate.smoke import Runner, RunResult, judge

Status = Literal["passed", "failed", "not run"]
NORMAL: Final = 4096
"""The page size of the normal smoke run (qemu-user: the host's pages)."""
CPU: Final = "max"
MEMORY: Final = "1G"
BOOT_SECONDS: Final = 60.0
"""Added to ``[image.smoke] timeout`` for the guest's boot and power-off (about 3 s here)."""
NOT_ARM64: Final = "x86-64 has 4K pages only: other page sizes are run for arm64 targets"
_OUTPUT_LIMIT: Final = 4000
_KERNELS: Final = {16384: pagesize_image.KERNEL_16K}


@dataclass(frozen=True, kw_only=True)
class PageSizeResult:
    """The smoke run of one binary under a kernel with another page size."""

    page_size: int
    """The page size asked for (16384)."""
    status: Status
    reason: str
    cpu: str | None = None
    kernel: str | None = None
    """The guest kernel's release (uname -r), as init reported it."""
    guest_page_size: int | None = None
    """The page size the binary was given (its AT_PAGESZ), as init reported it."""
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0
    """The whole guest: boot, run and power-off."""
    run_seconds: float | None = None
    """The binary's own run inside the guest."""

    @property
    def label(self) -> str:
        """``16K``: how the table and the messages name the page size."""
        return f"{self.page_size // 1024}K"

    def to_json(self) -> dict[str, Any]:
        return {
            "page_size": self.page_size,
            "status": self.status,
            "reason": self.reason,
            "cpu": self.cpu,
            "kernel": self.kernel,
            "guest_page_size": self.guest_page_size,
            "exit_code": self.exit_code,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "seconds": round(self.seconds, 3),
            "run_seconds": None if self.run_seconds is None else round(self.run_seconds, 3),
        }


class Guest(Protocol):
    """Boots the guest kernel of a page size with an initramfs."""

    def init(self) -> bytes:
        """The guest's /init program (AArch64), for the initramfs."""
        ...

    def boot(self, page_size: int, initramfs: bytes, *, timeout: float) -> RunResult:
        """Boot the kernel of ``page_size``; stdout is the guest's console."""
        ...


# --- planning and judging (pure) ----------------------------------------------------------


def extra_sizes(smoke: SmokeConfig) -> tuple[int, ...]:
    """The page sizes that need a guest: those of ``page_sizes`` other than the normal run's."""
    return tuple(size for size in smoke.page_sizes if size != NORMAL)


def qemu_command(kernel: str, initramfs: str) -> list[str]:
    """qemu-system-aarch64 booting ``kernel`` with ``initramfs`` (paths where it runs).

    No network card (the image has no option ROMs), the console on stdout, no reboot: init's
    power-off, a panic (``panic=-1``) and the end of init all end QEMU.
    """
    return [
        pagesize_image.QEMU,
        "-machine",
        "virt",
        "-cpu",
        CPU,
        "-smp",
        "1",
        "-m",
        MEMORY,
        "-nographic",
        "-nic",
        "none",
        "-no-reboot",
        "-kernel",
        kernel,
        "-initrd",
        initramfs,
        "-append",
        "console=ttyAMA0 quiet panic=-1",
    ]


def _console_tail(console: str, lines: int = 3) -> str:
    kept = [line.strip() for line in console.splitlines() if line.strip()][-lines:]
    return " | ".join(kept)[-300:] if kept else "nothing on its console"


def judge_boot(
    page_size: int, booted: RunResult, smoke: SmokeConfig, limit: float
) -> PageSizeResult:
    """The result of one boot: its console read back and judged like the normal smoke run."""
    common: dict[str, Any] = {"page_size": page_size, "cpu": CPU, "seconds": booted.seconds}
    if booted.timed_out:
        return PageSizeResult(
            status="failed",
            reason=f"the guest did not power off within {limit:g} s (boot included); last "
            f"output: {_console_tail(booted.stdout)}",
            **common,
        )
    ran = guest_protocol.parse(booted.stdout)
    if isinstance(ran, str):
        why = f"{ran}; QEMU exited {booted.exit_code}"
        said = _console_tail(booted.stdout + "\n" + booted.stderr)
        return PageSizeResult(status="failed", reason=f"{why}: {said}", **common)
    status: Status
    lines = [line.strip() for line in ran.stderr.splitlines() if line.strip()]
    as_smoke = RunResult(  # judged on its last 3 lines of stderr: a failing allocator's own
        exit_code=ran.exit_code,  # message often comes before the runtime's last words
        stdout=ran.stdout,
        stderr=" | ".join(lines[-3:]),
        timed_out=False,
        seconds=ran.run_seconds,
    )
    status, reason = judge(as_smoke, smoke)
    if ran.page_size != page_size:
        status, reason = "failed", f"the guest gave it {ran.page_size}-byte pages, not {page_size}"
    return PageSizeResult(
        status=status,
        reason=f"{reason} ({ran.page_size}-byte pages, {ran.kernel})",
        kernel=ran.kernel,
        guest_page_size=ran.page_size,
        exit_code=ran.exit_code,
        stdout=_clip(ran.stdout),
        stderr=_clip(ran.stderr),
        run_seconds=ran.run_seconds,
        **common,
    )


def _clip(text: str) -> str:
    return text if len(text) <= _OUTPUT_LIMIT else text[:_OUTPUT_LIMIT] + "…"


# --- running ------------------------------------------------------------------------------


def not_run(smoke: SmokeConfig, reason: str) -> tuple[PageSizeResult, ...]:
    """Each extra page size of ``smoke``, reported "not run" for ``reason``."""
    return tuple(
        PageSizeResult(page_size=size, status="not run", reason=reason)
        for size in extra_sizes(smoke)
    )


def page_sizes(
    guest: Guest, target: Target, binary: Path, smoke: SmokeConfig
) -> tuple[PageSizeResult, ...]:
    """Run ``binary`` (a host file) under each extra page size of ``smoke``."""
    if target.arch is not Arch.ARM64:
        return not_run(smoke, NOT_ARM64)
    results: list[PageSizeResult] = []
    for size in extra_sizes(smoke):
        try:
            initramfs = guest_protocol.initramfs(
                guest.init(), binary.read_bytes(), binary.name, smoke.args
            )
        except ValueError as err:
            results.append(PageSizeResult(page_size=size, status="failed", reason=str(err)))
            continue
        limit = smoke.timeout + BOOT_SECONDS
        booted = guest.boot(size, initramfs, timeout=limit)
        results.append(judge_boot(size, booted, smoke, limit))
    return tuple(results)


class QemuGuest:
    """The ``Guest`` of a runner where the page-size image's QEMU and kernels are: each
    initramfs is written to ``folder`` (a host folder the runner sees) for its boot."""

    _counter = itertools.count()

    def __init__(self, runner: Runner, folder: Path) -> None:
        self._runner = runner
        self._folder = folder
        self._init: bytes | None = None

    def init(self) -> bytes:
        if self._init is None:
            shown = self._runner.run(["base64", "-w0", pagesize_image.INIT], timeout=60)
            if shown.exit_code != 0:
                raise EngineError(
                    f"The page-size image has no readable {pagesize_image.INIT}: "
                    f"{shown.stderr.strip() or shown.exit_code}.",
                    hint="Rebuild it: remove the factory-pagesize image and run again.",
                )
            self._init = base64.b64decode(shown.stdout)
        return self._init

    def boot(self, page_size: int, initramfs: bytes, *, timeout: float) -> RunResult:
        path = self._folder / f"initramfs-{next(self._counter)}.cpio"
        path.write_bytes(initramfs)
        try:
            argv = qemu_command(_KERNELS[page_size], self._runner.path_of(path))
            return self._runner.run(argv, timeout=timeout)
        finally:
            path.unlink(missing_ok=True)
