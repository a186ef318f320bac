from __future__ import annotations

import json
import subprocess
import sys

import pytest

from factory.cli import hoist_global_options, main
from factory.errors import ExitCode

# The documented exit codes (docs/exit-codes.md): changing one breaks users' scripts.
DOCUMENTED = {
    "OK": 0,
    "FAILURE": 1,
    "USAGE": 2,
    "ENGINE": 3,
    "BUILD": 4,
    "VALIDATION": 5,
    "REGISTRY": 6,
    "DOCTOR": 7,
    "INTERRUPTED": 130,
}


def test_exit_codes_are_locked() -> None:
    assert {c.name: c.value for c in ExitCode} == DOCUMENTED


def test_the_docs_document_every_exit_code() -> None:
    from tests.conftest import ROOT

    page = (ROOT / "docs" / "exit-codes.md").read_text()
    for name, value in DOCUMENTED.items():
        assert f"| {value} |" in page, name


def test_targets_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["targets", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert len(document) == 21
    assert set(document[0]) >= {
        "name",
        "triple",
        "rustflags",
        "platform",
        "qemu_cpu",
        "elf_machine",
    }
    assert document[0]["platform"] == {"os": "linux", "architecture": "amd64", "variant": None}
    assert document[3]["qemu_cpu"] is None


def test_unknown_target_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["targets", "amd65"]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "Did you mean 'amd64'?" in err


def test_unknown_option_is_a_usage_error() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "factory", "--bogus"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == ExitCode.USAGE
    assert "Traceback" not in proc.stderr


def test_global_options_are_accepted_after_the_command() -> None:
    assert hoist_global_options(["targets", "--json", "-C", "x.toml", "amd64"]) == [
        "--json",
        "-C",
        "x.toml",
        "targets",
        "amd64",
    ]
    assert hoist_global_options(["build", "--", "--json"]) == ["build", "--", "--json"]


def test_only_implemented_commands_exist(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--help"])
    out = capsys.readouterr().out
    for command in ("targets", "config", "doctor"):
        assert command in out


def test_build_rejects_an_unknown_driver(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import ROOT

    code = main(["build", "-C", str(ROOT / "images.toml"), "--driver", "bazle"])
    assert code == ExitCode.USAGE
    assert "--driver cargo or --driver bazel" in capsys.readouterr().err


def test_an_unknown_compilation_mode_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import ROOT

    assert main(["image", "-C", str(ROOT / "images.toml"), "-c", "fast"]) == ExitCode.USAGE
    assert "-c fastbuild" in capsys.readouterr().err
