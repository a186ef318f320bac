from __future__ import annotations

import json
import subprocess
import sys

import pytest
import typer

from factory.cli import hoist_global_options, main
from factory.cli.app import app
from factory.errors import ExitCode, FactoryError

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
    "MERGE": 8,
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


def test_the_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    listed = capsys.readouterr().out.partition("\nCommands:\n")[2]
    names = [row.split()[0] for row in listed.splitlines() if row.strip()]
    for command in ("targets", "config", "doctor"):
        assert command in names
    group = typer.main.get_command(app)
    assert sorted(names) == sorted(getattr(group, "commands", {}))


def test_build_rejects_an_unknown_driver(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import ROOT

    code = main(["build", "-C", str(ROOT / "images.toml"), "--driver", "bazle"])
    assert code == ExitCode.USAGE
    assert "--driver cargo or --driver bazel" in capsys.readouterr().err


def test_an_unknown_compilation_mode_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import ROOT

    assert main(["image", "-C", str(ROOT / "images.toml"), "-c", "fast"]) == ExitCode.USAGE
    assert "-c fastbuild" in capsys.readouterr().err


def _options_of_every_command() -> dict[str, list[tuple[str, object]]]:
    """Each option string (`--target`) with the commands that declare it and its declaration."""
    found: dict[str, list[tuple[str, object]]] = {}

    def walk(command: object, path: str) -> None:
        for param in getattr(command, "params", []):
            for opt in (*param.opts, *param.secondary_opts):
                found.setdefault(opt, []).append((path, param))
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, f"{path} {name}".strip())

    walk(typer.main.get_command(app), "")
    return found


# Spelled alike but not the same option: the private key signs, the public key verifies; the
# hidden --rebuild keeps, on each command, the meaning it had there; --force removes running
# containers on clean and replaces an existing images.toml on init.
_DIFFERENT_ON_PURPOSE = {"--key", "--rebuild", "--force"}


def test_an_option_shared_by_commands_is_declared_once() -> None:
    shared = {
        opt: uses
        for opt, uses in _options_of_every_command().items()
        if len(uses) > 1 and opt not in _DIFFERENT_ON_PURPOSE | {"-h", "--help"}
    }
    assert {"--target", "-t", "--image", "-c", "--insecure", "--base"} <= set(shared)
    for opt, uses in shared.items():
        declarations = {
            (
                tuple(getattr(p, "opts", ())),
                getattr(p, "metavar", None),
                getattr(p, "help", None),
                repr(getattr(p, "default", None)),
            )
            for _, p in uses
        }
        assert len(declarations) == 1, (opt, [command for command, _ in uses])


class _Stop(FactoryError):
    """Ends a command at the call a test looks at, before it reaches an engine."""


@pytest.fixture
def images_toml() -> str:
    from tests.conftest import ROOT

    return str(ROOT / "images.toml")


def _builder_rebuild(
    monkeypatch: pytest.MonkeyPatch, command: str, config: str, *flags: str
) -> bool:
    from factory.engine import builder

    seen: list[bool] = []

    def ensure_builder(*_: object, rebuild: bool = False, **__: object) -> None:
        seen.append(rebuild)
        raise _Stop("stop")

    monkeypatch.setattr(builder, "ensure_builder", ensure_builder)
    monkeypatch.setattr("factory.engine.docker_engine.client", lambda: None)
    assert main([command, "-C", config, *flags]) == _Stop.exit_code
    [rebuild] = seen
    return rebuild


@pytest.mark.parametrize("command", ["builder", "build"])
def test_rebuild_builder_builds_the_builder_again(
    command: str,
    images_toml: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _builder_rebuild(monkeypatch, command, images_toml) is False
    assert _builder_rebuild(monkeypatch, command, images_toml, "--rebuild-builder") is True
    assert "deprecated" not in capsys.readouterr().err
    # the old spelling keeps its meaning on these commands and names the new one
    assert _builder_rebuild(monkeypatch, command, images_toml, "--rebuild") is True
    err = capsys.readouterr().err
    assert "warning: --rebuild is deprecated" in err
    assert "use --rebuild-builder instead" in err
    assert f"factory {command} --rebuild-builder" in err


def _image_rebuild(monkeypatch: pytest.MonkeyPatch, config: str, *flags: str) -> bool:
    from factory.pipeline import run

    seen: list[bool] = []

    def pipeline_run(*_: object, rebuild: bool = False, **__: object) -> None:
        seen.append(rebuild)
        raise _Stop("stop")

    monkeypatch.setattr(run, "run", pipeline_run)
    assert main(["image", "-C", config, *flags]) == _Stop.exit_code
    [rebuild] = seen
    return rebuild


def test_recompile_compiles_every_target_again(
    images_toml: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _image_rebuild(monkeypatch, images_toml) is False
    assert _image_rebuild(monkeypatch, images_toml, "--recompile") is True
    assert "deprecated" not in capsys.readouterr().err
    # on `factory image` the old --rebuild meant recompiling, and still does
    assert _image_rebuild(monkeypatch, images_toml, "--rebuild") is True
    err = capsys.readouterr().err
    assert "warning: --rebuild is deprecated" in err
    assert "use --recompile instead" in err
    assert "factory image --recompile" in err


def test_each_meaning_has_its_own_flag() -> None:
    assert main(["build", "--recompile"]) == ExitCode.USAGE
    assert main(["image", "--rebuild-builder"]) == ExitCode.USAGE
