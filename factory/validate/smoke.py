"""Smoke runs: each binary runs under qemu-user with the oldest CPU model of its level.

Runs happen through a ``Runner``: something that runs an argv with a time limit where the
binaries are visible, and says where it sees a host file (``runner.ContainerRunner``, a container
of an image that has qemu-user; a fake in unit tests). The CPU model comes from the target
table: amd64_v3 runs on Haswell-noTSX, arm64 on cortex-a53, arm64_v9a on neoverse-n2. QEMU
cannot emulate AVX-512, so amd64_v4 runs natively when the CPU under the runner has every
feature of the level, and is otherwise reported "not run" with the reason.

Each x86-64 level above the baseline also runs once on the CPU model of the level below: a fault
there (SIGILL) is evidence that the build really uses its level. That run is informational.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, Protocol

from factory.model import targets as target_table
from factory.model.config import SmokeConfig
from factory.model.targets import Arch, Target

Status = Literal["passed", "failed", "not run"]
NATIVE: Final = "native"
NO_AVX512: Final = "this host has no AVX-512 and QEMU cannot emulate it"
_OUTPUT_LIMIT: Final = 4000


@dataclass(frozen=True, kw_only=True)
class RunResult:
    """How one command ended."""

    exit_code: int
    stdout: str
    stderr: str
    timed_out: bool
    seconds: float

    @property
    def signal(self) -> str | None:
        """The signal that killed the command (a shell-style exit code 128+N), if any."""
        if self.timed_out or not 128 < self.exit_code < 128 + 65:
            return None
        try:
            return signal.Signals(self.exit_code - 128).name
        except ValueError:
            return None


class Runner(Protocol):
    """Runs commands where the binaries are, with a time limit."""

    def path_of(self, host_path: Path) -> str:
        """Where the runner's commands see ``host_path`` (a built binary)."""
        ...

    def run(self, argv: Sequence[str], *, timeout: float) -> RunResult:
        """Run ``argv``; kill it after ``timeout`` seconds (then ``timed_out`` is true)."""
        ...


@dataclass(frozen=True, kw_only=True)
class SmokeResult:
    status: Status
    reason: str
    cpu: str | None
    """The QEMU CPU model, ``native``, or None when not run."""
    exit_code: int | None = None
    stdout: str = ""
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "reason": self.reason,
            "cpu": self.cpu,
            "exit_code": self.exit_code,
            "stdout": self.stdout,
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True, kw_only=True)
class LowerLevelResult:
    """The binary run on the CPU model one x86-64 level below its own (informational)."""

    status: Literal["faulted", "ran", "not run"]
    reason: str
    below: str | None = None
    """The target whose CPU model was used (amd64_v2 for an amd64_v3 binary)."""
    cpu: str | None = None
    exit_code: int | None = None
    signal: str | None = None
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "reason": self.reason,
            "below": self.below,
            "cpu": self.cpu,
            "exit_code": self.exit_code,
            "signal": self.signal,
            "seconds": round(self.seconds, 3),
        }


# --- planning (pure) ----------------------------------------------------------------------


def cpu_flags(cpuinfo: str) -> frozenset[str]:
    """The feature flags of the first CPU in a /proc/cpuinfo text (x86 `flags`, arm `Features`)."""
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def command(
    target: Target, binary: str, args: Sequence[str], flags: frozenset[str]
) -> tuple[list[str], str] | str:
    """(argv, cpu) that runs ``binary`` for ``target``, or why it cannot run here."""
    if target.qemu_cpu is not None:
        return [target.qemu_binary, "-cpu", target.qemu_cpu, binary, *args], target.qemu_cpu
    missing = [f for f in target.host_features if f not in flags]
    if target.arch is Arch.AMD64 and not missing:
        return [binary, *args], NATIVE
    if target.arch is Arch.AMD64:
        return (
            NO_AVX512
            if any(f.startswith("avx512") for f in missing)
            else (
                f"this host lacks {', '.join(missing)} and QEMU has no CPU model for {target.name}"
            )
        )
    return f"QEMU has no CPU model for {target.name}"


def judge(result: RunResult, smoke: SmokeConfig) -> tuple[Status, str]:
    """Whether a run meets images.toml's [image.smoke] expectations, and why not."""
    if result.timed_out:
        return "failed", f"timed out after {smoke.timeout:g} s"
    if result.exit_code != smoke.exit_code:
        killed = f" (killed by {result.signal})" if result.signal else ""
        said = _last_line(result.stderr)
        return "failed", (
            f"exit code {result.exit_code}{killed}, expected {smoke.exit_code}"
            + (f": {said}" if said else "")
        )
    if smoke.stdout is not None and not re.search(smoke.stdout, result.stdout):
        return "failed", (f"stdout {_clip(result.stdout, 120)!r} does not match {smoke.stdout!r}")
    return "passed", f"exit code {result.exit_code}" + (
        ", stdout matches" if smoke.stdout is not None else ""
    )


def lower_target(target: Target) -> Target | None:
    """The x86-64 target one level below ``target`` (None for a baseline or AArch64)."""
    if target.arch is not Arch.AMD64 or target.level is None:
        return None
    level = int(target.level.rsplit("v", 1)[1])
    return target_table.get("amd64" if level == 2 else f"amd64_v{level - 1}")


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return _clip(lines[-1], 200) if lines else ""


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


# --- running ------------------------------------------------------------------------------


def host_flags(runner: Runner) -> frozenset[str]:
    """The CPU features the runner's processes see (read from its /proc/cpuinfo)."""
    result = runner.run(["cat", "/proc/cpuinfo"], timeout=30)
    return cpu_flags(result.stdout) if result.exit_code == 0 else frozenset()


def smoke(
    runner: Runner, target: Target, binary: str, config: SmokeConfig, flags: frozenset[str]
) -> SmokeResult:
    """Run ``binary`` (a path the runner sees) as images.toml's smoke test says."""
    planned = command(target, binary, config.args, flags)
    if isinstance(planned, str):
        return SmokeResult(status="not run", reason=planned, cpu=None)
    argv, cpu = planned
    result = runner.run(argv, timeout=config.timeout)
    status, reason = judge(result, config)
    return SmokeResult(
        status=status,
        reason=reason,
        cpu=cpu,
        exit_code=None if result.timed_out else result.exit_code,
        stdout=_clip(result.stdout, _OUTPUT_LIMIT),
        seconds=result.seconds,
    )


def lower_level(
    runner: Runner, target: Target, binary: str, config: SmokeConfig
) -> LowerLevelResult:
    """Run an x86-64 level's binary on the CPU model of the level below; report a fault."""
    below = lower_target(target)
    if below is None or below.qemu_cpu is None:
        why = "a baseline has no level below" if target.is_baseline else "x86-64 levels only"
        return LowerLevelResult(status="not run", reason=why)
    argv = [below.qemu_binary, "-cpu", below.qemu_cpu, binary, *config.args]
    result = runner.run(argv, timeout=config.timeout)
    if result.signal == "SIGILL":
        status: Literal["faulted", "ran"] = "faulted"
        reason = f"SIGILL on {below.qemu_cpu}: the build uses {target.level} instructions"
    elif result.timed_out:
        status, reason = "ran", f"did not end within {config.timeout:g} s on {below.qemu_cpu}"
    else:
        status = "ran"
        reason = (
            f"ran on {below.qemu_cpu} (exit code {result.exit_code}): the code that ran "
            f"needs nothing above {below.name}"
        )
    return LowerLevelResult(
        status=status,
        reason=reason,
        below=below.name,
        cpu=below.qemu_cpu,
        exit_code=None if result.timed_out else result.exit_code,
        signal=result.signal,
        seconds=result.seconds,
    )
