"""Smoke-run planning and judging, with a scripted runner (no engine, no QEMU)."""

from __future__ import annotations

import io
import tarfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from factory.engine.docker_engine import ExecResult
from factory.errors import UsageError
from factory.model import targets
from factory.model.config import SmokeConfig
from factory.validate import smoke
from factory.validate.runner import ContainerRunner
from factory.validate.smoke import RunResult

AVX512_HOST = frozenset(targets.get("amd64_v4").host_features)
OLD_HOST = frozenset(targets.get("amd64_v3").host_features)


def ran(code: int = 0, stdout: str = "", stderr: str = "", timed_out: bool = False) -> RunResult:
    return RunResult(exit_code=code, stdout=stdout, stderr=stderr, timed_out=timed_out, seconds=0.5)


class ScriptedRunner:
    """Answers each command with `answer(argv)` and records what it was asked."""

    def __init__(self, answer: Callable[[Sequence[str]], RunResult]) -> None:
        self.answer = answer
        self.calls: list[tuple[list[str], float]] = []

    def path_of(self, host_path: Path) -> str:
        return str(host_path)

    def run(self, argv: Sequence[str], *, timeout: float) -> RunResult:
        self.calls.append((list(argv), timeout))
        return self.answer(argv)


@pytest.mark.parametrize(
    ("target", "cpu"),
    [
        ("amd64", "qemu64"),
        ("amd64_v2", "Nehalem"),
        ("amd64_v3", "Haswell-noTSX"),
        ("arm64", "cortex-a53"),
        ("arm64_v8_2a", "cortex-a55"),
        ("arm64_v9a", "neoverse-n2"),
        ("arm64_v9_6a", "max"),
    ],
)
def test_qemu_command_uses_the_oldest_model_of_the_level(target: str, cpu: str) -> None:
    t = targets.get(target)
    planned = smoke.command(t, "/binaries/x/bin", ("--flag",), frozenset())
    assert planned == ([t.qemu_binary, "-cpu", cpu, "/binaries/x/bin", "--flag"], cpu)


def test_v4_runs_natively_only_with_avx512() -> None:
    v4 = targets.get("amd64_v4")
    assert smoke.command(v4, "/b", (), AVX512_HOST) == (["/b"], "native")
    assert smoke.command(v4, "/b", (), OLD_HOST) == smoke.NO_AVX512


def test_v4_without_avx512_is_not_run_with_the_reason() -> None:
    runner = ScriptedRunner(lambda argv: ran())
    result = smoke.smoke(runner, targets.get("amd64_v4"), "/b", SmokeConfig(), OLD_HOST)
    assert result.status == "not run"
    assert result.reason == "this host has no AVX-512 and QEMU cannot emulate it"
    assert runner.calls == []


def test_cpu_flags_from_cpuinfo() -> None:
    text = "processor\t: 0\nflags\t\t: fpu sse2 avx512f\n\nprocessor\t: 1\nflags\t\t: other\n"
    assert smoke.cpu_flags(text) == {"fpu", "sse2", "avx512f"}
    assert smoke.cpu_flags("Features\t: fp asimd sve\n") == {"fp", "asimd", "sve"}
    assert smoke.cpu_flags("") == frozenset()


def test_host_flags_reads_the_runners_cpuinfo() -> None:
    runner = ScriptedRunner(lambda argv: ran(stdout="flags : avx2 avx512f\n"))
    assert smoke.host_flags(runner) == {"avx2", "avx512f"}
    assert runner.calls[0][0] == ["cat", "/proc/cpuinfo"]


EXPECT = SmokeConfig(args=("a",), stdout=r"^hello\n$", exit_code=0, timeout=7)


@pytest.mark.parametrize(
    ("result", "status", "reason"),
    [
        (ran(0, "hello\n"), "passed", "exit code 0, stdout matches"),
        (
            ran(1, "hello\n", "boom\nerror: it broke\n"),
            "failed",
            "exit code 1, expected 0: error: it broke",
        ),
        (ran(132), "failed", "exit code 132 (killed by SIGILL), expected 0"),
        (ran(124, timed_out=True), "failed", "timed out after 7 s"),
        (ran(0, "bye\n"), "failed", "stdout 'bye\\n' does not match '^hello\\\\n$'"),
    ],
)
def test_judge(result: RunResult, status: str, reason: str) -> None:
    assert smoke.judge(result, EXPECT) == (status, reason)


def test_judge_expected_nonzero_exit_and_no_stdout_check() -> None:
    assert smoke.judge(ran(3), SmokeConfig(exit_code=3)) == ("passed", "exit code 3")


def test_smoke_passes_args_and_timeout() -> None:
    runner = ScriptedRunner(lambda argv: ran(0, "hello\n"))
    result = smoke.smoke(runner, targets.get("arm64"), "/b", EXPECT, frozenset())
    assert result.status == "passed"
    assert result.cpu == "cortex-a53"
    assert runner.calls == [(["qemu-aarch64", "-cpu", "cortex-a53", "/b", "a"], 7)]
    assert set(result.to_json()) == {"status", "reason", "cpu", "exit_code", "stdout", "seconds"}


def test_timed_out_run_has_no_exit_code() -> None:
    runner = ScriptedRunner(lambda argv: ran(124, timed_out=True))
    result = smoke.smoke(runner, targets.get("amd64"), "/b", EXPECT, frozenset())
    assert (result.status, result.exit_code) == ("failed", None)


@pytest.mark.parametrize(
    ("target", "below"),
    [("amd64_v2", "amd64"), ("amd64_v3", "amd64_v2"), ("amd64_v4", "amd64_v3")],
)
def test_lower_target(target: str, below: str) -> None:
    lower = smoke.lower_target(targets.get(target))
    assert lower is not None and lower.name == below


def test_no_lower_level_for_baselines_and_arm() -> None:
    assert smoke.lower_target(targets.get("amd64")) is None
    assert smoke.lower_target(targets.get("arm64_v9a")) is None
    runner = ScriptedRunner(lambda argv: ran())
    result = smoke.lower_level(runner, targets.get("arm64_v9a"), "/b", EXPECT)
    assert result.status == "not run"
    assert runner.calls == []


def test_lower_level_fault_is_reported() -> None:
    runner = ScriptedRunner(lambda argv: ran(132, stderr="qemu: uncaught target signal 4"))
    result = smoke.lower_level(runner, targets.get("amd64_v3"), "/b", EXPECT)
    assert runner.calls[0][0] == ["qemu-x86_64", "-cpu", "Nehalem", "/b", "a"]
    assert (result.status, result.signal, result.below) == ("faulted", "SIGILL", "amd64_v2")
    assert "x86-64-v3" in result.reason


def test_lower_level_clean_run_is_reported() -> None:
    runner = ScriptedRunner(lambda argv: ran(0, "hello\n"))
    result = smoke.lower_level(runner, targets.get("amd64_v4"), "/b", EXPECT)
    assert runner.calls[0][0][:3] == ["qemu-x86_64", "-cpu", "Haswell-noTSX"]
    assert (result.status, result.signal, result.exit_code) == ("ran", None, 0)


def test_signal_names() -> None:
    assert ran(139).signal == "SIGSEGV"
    assert ran(1).signal is None
    assert ran(137, timed_out=True).signal is None


class FakeContainer:
    """Stands in for engine.Container: answers every command with one exit code."""

    def __init__(self, exit_code: int, delay: float = 0.0) -> None:
        self.exit_code = exit_code
        self.delay = delay
        self.argv: list[str] = []
        self.copied: list[tuple[str, dict[str, bytes]]] = []

    def copy_in(self, directory: str, archive: bytes) -> None:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            files = {
                m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
                for m in tar.getmembers()
            }
        self.copied.append((directory, files))

    def run(self, argv: Sequence[str], *, check: bool = True) -> ExecResult:
        assert check is False
        self.argv = list(argv)
        time.sleep(self.delay)
        return ExecResult(exit_code=self.exit_code, stdout="out", stderr="err")


def container_runner(fake: FakeContainer, root: Path) -> ContainerRunner:
    return ContainerRunner(fake, root)  # type: ignore[arg-type]


def test_container_runner_wraps_commands_in_timeout(tmp_path: Path) -> None:
    fake = FakeContainer(0)
    result = container_runner(fake, tmp_path).run(["qemu-x86_64", "/b"], timeout=2.5)
    assert fake.argv == ["timeout", "-k", "2", "2.500", "qemu-x86_64", "/b"]
    assert (result.exit_code, result.stdout, result.stderr, result.timed_out) == (
        0,
        "out",
        "err",
        False,
    )


def test_container_runner_tells_a_timeout_from_an_exit_124(tmp_path: Path) -> None:
    assert (
        container_runner(FakeContainer(124, delay=0.2), tmp_path).run(["x"], timeout=0.1).timed_out
    )
    assert not container_runner(FakeContainer(124), tmp_path).run(["x"], timeout=5).timed_out


def test_container_runner_copies_host_files_in_once(tmp_path: Path) -> None:
    fake = FakeContainer(0)
    runner = container_runner(fake, tmp_path)
    binary = tmp_path / "img" / "amd64" / "bin"
    binary.parent.mkdir(parents=True)
    binary.write_bytes(b"ELF one")
    assert runner.path_of(binary) == "/binaries/img/amd64/bin"
    assert runner.path_of(binary) == "/binaries/img/amd64/bin"
    assert fake.copied == [("/", {"binaries/img/amd64/bin": b"ELF one"})]
    binary.write_bytes(b"ELF two, changed")
    runner.path_of(binary)
    assert fake.copied[-1] == ("/", {"binaries/img/amd64/bin": b"ELF two, changed"})
    with pytest.raises(UsageError, match="not under"):
        runner.path_of(Path("/etc/passwd"))
