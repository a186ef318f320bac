"""report.json: its locked keys, and `factory validate` end to end on host binaries.

The binaries are compiled by musl-gcc and gcc in the test-tools image; the smoke runs go through a
runner that executes x86-64 binaries natively on the host (QEMU's CPU model is dropped), so
`factory validate` itself runs without Docker. The real QEMU runs are in test_validate.py.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from factory.cli import main
from factory.validate import report
from factory.validate import stage as validate
from factory.validate.smoke import RunResult
from tests.testtools import HELLO, Tools

RESULT_KEYS = {
    "image",
    "target",
    "path",
    "sha256",
    "size",
    "profile",
    "passed",
    "seconds",
    "elf",
    "isa",
    "smoke",
    "lower_level",
    "page_sizes",
}
ELF_KEYS = {
    "passed",
    "findings",
    "machine",
    "static",
    "linkage",
    "libc",
    "libc_evidence",
    "stripped",
    "stack",
    "needed",
    "interpreter",
    "irelative",
    "toolchain",
}
SMOKE_KEYS = {"status", "reason", "cpu", "exit_code", "stdout", "seconds"}
LOWER_KEYS = {"status", "reason", "below", "cpu", "exit_code", "signal", "seconds"}
PAGE_SIZE_KEYS = {
    "page_size",
    "status",
    "reason",
    "cpu",
    "kernel",
    "guest_page_size",
    "exit_code",
    "stdout",
    "stderr",
    "seconds",
    "run_seconds",
}
ISA_KEYS = {"architecture", "instructions", "undecodable_bytes", "x86_level", "counts"}
TOOLCHAIN_KEYS = {"clang", "lld", "rustc", "gcc", "comment"}


class HostRunner:
    """Runs x86-64 binaries natively (dropping `qemu-x86_64 -cpu X`), with a time limit."""

    def path_of(self, host_path: Path) -> str:
        return str(host_path)

    def run(self, argv: Sequence[str], *, timeout: float) -> RunResult:
        argv = list(argv[3:] if argv[0].startswith("qemu-") else argv)
        started = time.monotonic()
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return RunResult(exit_code=124, stdout="", stderr="", timed_out=True, seconds=timeout)
        code = done.returncode if done.returncode >= 0 else 128 - done.returncode
        return RunResult(
            exit_code=code,
            stdout=done.stdout,
            stderr=done.stderr,
            timed_out=False,
            seconds=time.monotonic() - started,
        )


HANG = "#include <unistd.h>\nint main(void) { for (;;) pause(); }\n"
EXIT1 = '#include <stdio.h>\nint main(void) { fputs("bad\\n", stderr); return 1; }\n'
KILLED = "#include <signal.h>\nint main(void) { raise(SIGILL); return 0; }\n"


@pytest.fixture
def project(tools: Tools, tmp_path: Path) -> Path:
    """An images.toml whose `hello` image has a built binary per target under dist/bin."""
    (tmp_path / "images.toml").write_text(
        """
[workspace]
path = "."

[[image]]
name = "hello"
binary = "hello"
targets = ["amd64", "amd64_v2", "amd64_v3"]

[image.smoke]
args = ["x"]
stdout = '^hello from 1 args\\n$'
timeout = 3
page_sizes = [4096, 16384]
"""
    )
    sources = {"amd64": HELLO, "amd64_v2": HELLO, "amd64_v3": HELLO}
    for target, source in sources.items():
        out = tmp_path / "dist" / "bin" / "hello" / target / "hello"
        out.parent.mkdir(parents=True)
        tools.compile_c(out, source, cc="musl-gcc", flags=["-static", "-O2", "-s"])
    return tmp_path


def put(tools: Tools, project: Path, target: str, source: str, *, cc: str = "musl-gcc") -> None:
    out = project / "dist" / "bin" / "hello" / target / "hello"
    tools.compile_c(out, source, cc=cc, flags=["-static", "-O2", "-s"])


def run_validate(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    monkeypatch.setattr(
        validate,
        "open_runner",
        lambda config, image, bin_dir: contextlib.nullcontext(HostRunner()),
    )
    code = main(["--config", str(project / "images.toml"), "validate", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_all_pass_writes_the_report(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_validate(project, monkeypatch, capsys)
    assert code == 0
    assert out.splitlines()[0].split() == [
        "image", "target", "result", "static", "machine", "libc", "stripped", "isa",
        "smoke", "level", "below", "pages", "time",
    ]  # fmt: skip
    assert "hello  amd64_v3  ok" in out
    document = json.loads((project / "dist" / "report.json").read_text())
    assert document["schema"] == "factory.report/v1"
    assert document["passed"] is True
    assert [r["target"] for r in document["results"]] == ["amd64", "amd64_v2", "amd64_v3"]
    for result in document["results"]:
        assert set(result) == RESULT_KEYS
        assert set(result["elf"]) == ELF_KEYS
        assert set(result["smoke"]) == SMOKE_KEYS
        assert set(result["lower_level"]) == LOWER_KEYS
        [sixteen] = result["page_sizes"]  # amd64: x86-64 has 4K pages only
        assert set(sixteen) == PAGE_SIZE_KEYS
        assert (sixteen["page_size"], sixteen["status"]) == (16384, "not run")
        assert set(result["isa"]) == ISA_KEYS
        assert set(result["elf"]["toolchain"]) == TOOLCHAIN_KEYS
        assert result["smoke"]["stdout"] == "hello from 1 args\n"
        assert result["elf"]["libc"] == "musl"
        assert len(result["sha256"]) == 64
    v3 = document["results"][2]
    assert v3["smoke"]["cpu"] == "Haswell-noTSX"
    assert v3["lower_level"]["below"] == "amd64_v2"
    assert document["results"][0]["lower_level"]["status"] == "not run"


def test_failures_exit_5_naming_each_target(
    tools: Tools,
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    put(tools, project, "amd64", EXIT1)
    put(tools, project, "amd64_v2", KILLED)
    put(tools, project, "amd64_v3", HELLO, cc="gcc")  # glibc static
    code, out, err = run_validate(project, monkeypatch, capsys, "--json")
    assert code == 5
    document = json.loads(out)
    assert document == json.loads((project / "dist" / "report.json").read_text())
    assert document["passed"] is False
    by_target = {r["target"]: r for r in document["results"]}
    assert by_target["amd64"]["smoke"]["reason"] == "exit code 1, expected 0: bad"
    assert "SIGILL" in by_target["amd64_v2"]["smoke"]["reason"]
    assert by_target["amd64_v3"]["smoke"]["status"] == "not run"
    assert {f["code"] for f in by_target["amd64_v3"]["elf"]["findings"]} >= {"libc", "irelative"}
    assert "Validation failed for amd64, amd64_v2, amd64_v3" in err
    assert "hello/amd64_v3: irelative: " in err
    assert "; libc: linked with glibc, not musl" in err


def test_a_partial_run_merges_into_the_report(
    tools: Tools,
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    report_path = project / "dist" / "report.json"
    assert run_validate(project, monkeypatch, capsys)[0] == 0
    first = json.loads(report_path.read_text())
    put(tools, project, "amd64_v2", EXIT1)
    code, out, _ = run_validate(project, monkeypatch, capsys, "--json", "-t", "amd64_v2")
    assert code == 5
    merged = json.loads(out)
    assert merged == json.loads(report_path.read_text())
    assert merged["passed"] is False
    assert [(r["target"], r["passed"]) for r in merged["results"]] == [
        ("amd64", True),
        ("amd64_v2", False),
        ("amd64_v3", True),
    ]
    assert merged["results"][0] == first["results"][0]  # untouched
    put(tools, project, "amd64_v2", HELLO)
    assert run_validate(project, monkeypatch, capsys, "-t", "amd64_v2")[0] == 0
    assert json.loads(report_path.read_text())["passed"] is True


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{",
        "[]",
        '{"schema": "other/v1", "results": []}',
        '{"schema": "factory.report/v1"}',
    ],
)
def test_foreign_or_broken_reports_are_replaced(tmp_path: Path, text: str) -> None:
    path = tmp_path / "report.json"
    path.write_text(text)
    found = report.ReportFile.read(path)
    assert found.entries == {}
    assert found.status in ("unreadable", "foreign")
    assert str(path) in found.reason
    document = found.write_merged(())
    assert document == {"schema": "factory.report/v1", "passed": True, "results": []}
    assert json.loads(path.read_text()) == document


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (None, None),
        ("\x00garbage", "cannot be read"),
        ('{"schema": "factory.report/v2", "results": []}', "is not a factory.report/v1 report"),
    ],
)
def test_factory_validate_rewrites_a_missing_unreadable_or_foreign_report(
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    text: str | None,
    reason: str | None,
) -> None:
    report_path = project / "dist" / "report.json"
    if text is not None:
        report_path.write_text(text)
    code, _, err = run_validate(project, monkeypatch, capsys, "-t", "amd64")
    assert code == 0, err
    if reason is None:  # a first run: nothing to say
        assert "rewrites it" not in err
    else:
        assert f"validate: {report_path} {reason}" in err
        assert "This run rewrites it; it vouches for nothing." in err
    document = json.loads(report_path.read_text())
    assert document["schema"] == "factory.report/v1"
    assert [r["target"] for r in document["results"]] == ["amd64"]


def test_hang_is_a_timeout(
    tools: Tools,
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    put(tools, project, "amd64", HANG)
    code, _, err = run_validate(project, monkeypatch, capsys, "-t", "amd64")
    assert code == 5
    assert "smoke: timed out after 3 s" in err
    document = json.loads((project / "dist" / "report.json").read_text())
    assert [r["target"] for r in document["results"]] == ["amd64"]
    assert document["results"][0]["smoke"]["exit_code"] is None


def test_missing_build_output_names_the_fix(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_validate(project, monkeypatch, capsys, "-t", "arm64")
    assert code == 5
    assert "hello/arm64" in err
    assert "factory build -t arm64" in err
    assert not (project / "dist" / "report.json").exists()


def test_compilation_mode_decides_whether_symbols_fail(
    tools: Tools,
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = project / "dist" / "bin" / "hello" / "amd64" / "hello"
    tools.compile_c(out, HELLO, cc="musl-gcc", flags=["-static", "-O2", "-g"])
    code, _, err = run_validate(project, monkeypatch, capsys, "-t", "amd64")
    assert code == 5
    assert "symtab: a .symtab section" in err
    code, _, err = run_validate(project, monkeypatch, capsys, "-t", "amd64", "-c", "dbg")
    assert code == 0, err
    document = json.loads((project / "dist" / "report.json").read_text())
    assert document["results"][0]["profile"] == "dbg"
    code, _, err = run_validate(project, monkeypatch, capsys, "-c", "release")
    assert code == 2
    assert "Unknown compilation mode 'release'" in err


def test_unknown_image_is_a_usage_error(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_validate(project, monkeypatch, capsys, "--image", "helo")
    assert code == 2
    assert "Did you mean 'hello'?" in err
