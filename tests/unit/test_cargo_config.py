"""A workspace's .cargo/config.toml is merged with factory's settings, not silently replaced."""

from __future__ import annotations

from pathlib import Path

import pytest

from factory.build import cargo_config
from factory.build.cargo_invocation import Workspace, build_environment, rustflags
from factory.errors import UsageError
from factory.model import targets

AMD64_V3 = targets.get("amd64_v3")
ARM64 = targets.get("arm64")


def _config(tmp_path: Path, text: str, name: str = "config.toml") -> cargo_config.CargoConfig:
    (tmp_path / ".cargo").mkdir(exist_ok=True)
    (tmp_path / ".cargo" / name).write_text(text)
    return cargo_config.load(tmp_path)


def _flags(config: cargo_config.CargoConfig, target: targets.Target, **environ: str) -> list[str]:
    env = build_environment(target, "opt", config=config, environ=environ)
    return env["CARGO_ENCODED_RUSTFLAGS"].split("\x1f")


def test_no_config_gives_factorys_flags_only(tmp_path: Path) -> None:
    config = cargo_config.load(tmp_path)
    assert config.path is None
    assert _flags(config, AMD64_V3) == list(rustflags(AMD64_V3))


def test_build_rustflags_survive_before_factorys(tmp_path: Path) -> None:
    config = _config(tmp_path, '[build]\nrustflags = ["--cfg", "tokio_unstable"]\n')
    flags = _flags(config, AMD64_V3)
    assert flags[:2] == ["--cfg", "tokio_unstable"]
    assert flags[2:] == list(rustflags(AMD64_V3))


def test_a_string_of_rustflags_is_split_and_the_old_file_name_is_read(tmp_path: Path) -> None:
    text = '[build]\nrustflags = "--cfg tokio_unstable -Cforce-frame-pointers"\n'
    config = _config(tmp_path, text, name="config")
    assert _flags(config, ARM64)[:3] == ["--cfg", "tokio_unstable", "-Cforce-frame-pointers"]


def test_target_tables_win_over_build_as_in_cargo(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        '[build]\nrustflags = ["--cfg", "from_build"]\n'
        '[target.x86_64-unknown-linux-musl]\nrustflags = ["--cfg", "from_triple"]\n'
        '[target.\'cfg(all(target_os = "linux", target_env = "musl"))\']\n'
        'rustflags = ["--cfg", "from_cfg"]\n'
        '[target.\'cfg(windows)\']\nrustflags = ["--cfg", "never"]\n',
    )
    amd64 = _flags(config, AMD64_V3)
    assert amd64[:4] == ["--cfg", "from_triple", "--cfg", "from_cfg"]
    assert "from_build" not in amd64 and "never" not in amd64
    # arm64: only the cfg table matches.
    assert _flags(config, ARM64)[:2] == ["--cfg", "from_cfg"]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('cfg(target_arch = "aarch64")', True),
        ('cfg(target_arch = "x86_64")', False),
        ("cfg(unix)", True),
        ("cfg(not(unix))", False),
        ('cfg(any(target_os = "macos", target_env = "musl"))', True),
        ('cfg(all(target_os = "linux", not(target_env = "gnu")))', True),
        ("cfg(all(", False),
    ],
)
def test_cfg_expressions(expression: str, expected: bool) -> None:
    assert cargo_config._matches(expression, ARM64) is expected


def test_the_environment_wins_as_in_cargo(tmp_path: Path) -> None:
    config = _config(tmp_path, '[build]\nrustflags = ["--cfg", "from_build"]\n')
    encoded = _flags(config, ARM64, CARGO_ENCODED_RUSTFLAGS="--cfg\x1fa b", RUSTFLAGS="--cfg x")
    assert encoded[:2] == ["--cfg", "a b"]
    assert _flags(config, ARM64, RUSTFLAGS="--cfg  from_env")[:2] == ["--cfg", "from_env"]
    merged = cargo_config.merged_rustflags(config, ARM64, ("-Cx",), {"RUSTFLAGS": "--cfg y"})
    assert merged.source == "RUSTFLAGS"


def test_factorys_level_comes_last_so_it_wins(tmp_path: Path) -> None:
    config = _config(tmp_path, '[build]\nrustflags = ["-Ctarget-cpu=native"]\n')
    flags = _flags(config, AMD64_V3)
    assert flags.index("-Ctarget-cpu=native") < flags.index("-Ctarget-cpu=x86-64-v3")


def test_a_workspace_linker_is_reported_as_overridden(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        '[target.aarch64-unknown-linux-musl]\nlinker = "aarch64-linux-musl-gcc"\n'
        '[target.x86_64-unknown-linux-gnu]\nlinker = "clang"\n',
    )
    assert cargo_config.overridden_linkers(config, ARM64) == ("aarch64-linux-musl-gcc",)
    assert cargo_config.overridden_linkers(config, AMD64_V3) == ()
    env = build_environment(ARM64, "opt", config=config)
    assert env["CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER"].endswith("-link")


def test_the_workspace_env_is_not_shadowed(tmp_path: Path) -> None:
    assert build_environment(ARM64, "opt")["JEMALLOC_SYS_WITH_LG_PAGE"] == "16"
    assert "JEMALLOC_SYS_WITH_LG_PAGE" not in build_environment(AMD64_V3, "opt")
    config = _config(tmp_path, '[env]\nJEMALLOC_SYS_WITH_LG_PAGE = "12"\n')
    assert config.env == frozenset({"JEMALLOC_SYS_WITH_LG_PAGE"})
    assert "JEMALLOC_SYS_WITH_LG_PAGE" not in build_environment(ARM64, "opt", config=config)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[build\n", "cannot be read as TOML"),
        ("[build]\nrustflags = 3\n", "`build.rustflags` must be a string or an array"),
        ("[target.x86_64-unknown-linux-musl]\nrustflags = [1]\n", "target.x86_64-unknown"),
    ],
)
def test_a_bad_config_names_the_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(UsageError, match=r"config\.toml") as caught:
        _config(tmp_path, text)
    assert message in str(caught.value)


def test_the_workspace_loads_its_config(tmp_path: Path) -> None:
    (tmp_path / "Cargo.toml").write_text("[workspace]\n")
    (tmp_path / "Cargo.lock").write_text("version = 4\n")
    _config(tmp_path, '[build]\nrustflags = ["--cfg", "tokio_unstable"]\n')
    workspace = Workspace.load(tmp_path)
    assert workspace.config.build_rustflags == ("--cfg", "tokio_unstable")
