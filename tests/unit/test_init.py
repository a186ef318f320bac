"""`factory init` and `factory` without an images.toml, on a real tiny Cargo workspace read by
the host's cargo (`cargo metadata --no-deps --offline`: nothing is compiled or downloaded).

The path without a host cargo (in the builder container) is tests/integration/test_init.py.
"""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import pytest

from factory.cli import main
from factory.errors import ExitCode
from factory.model import targets as target_table

pytestmark = pytest.mark.skipif(
    shutil.which("cargo") is None,
    reason="no cargo on PATH (rustup.rs); tests/integration/test_init.py covers a host without",
)

MEMBER = """[package]
name = "{name}"
version = "0.1.0"
edition = "2021"
"""


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _package(root: Path, name: str, extra: str = "", main: bool = True) -> Path:
    directory = root / "crates" / name
    _write(directory / "Cargo.toml", MEMBER.format(name=name) + extra)
    _write(directory / ("src/main.rs" if main else "src/lib.rs"), "fn main() {}\n")
    return directory


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """Three members: a clap tool with an example, a test, a bench and a bin that needs a
    feature; a server with a second binary and argh only as a dev-dependency; a library."""
    root = tmp_path / "ws"
    _write(root / "Cargo.toml", '[workspace]\nresolver = "2"\nmembers = ["crates/*"]\n')
    tool = _package(
        root,
        "cli_tool",
        '[dependencies]\nclap = "4"\n[features]\nextra = []\n'
        '[[bin]]\nname = "needs-extra"\npath = "src/extra.rs"\nrequired-features = ["extra"]\n',
    )
    for part in ("src/extra.rs", "examples/demo.rs", "tests/it.rs", "benches/speed.rs"):
        _write(tool / part, "fn main() {}\n")
    server = _package(root, "Server", '[dev-dependencies]\nargh = "0.1"\n')
    _write(server / "src/bin/Admin__Tool.rs", "fn main() {}\n")
    _package(root, "support", main=False)
    return root


@pytest.fixture
def single(tmp_path: Path) -> Path:
    root = tmp_path / "single"
    _write(root / "Cargo.toml", MEMBER.format(name="only_one") + '[dependencies]\nargh = "0.1"\n')
    _write(root / "src/main.rs", "fn main() {}\n")
    return root


def test_init_writes_one_image_per_binary(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(workspace)
    assert main(["init"]) == 0
    captured = capsys.readouterr()
    written = workspace / "images.toml"
    assert f"wrote {written}: 3 image(s)" in captured.out
    assert "host cargo at" in captured.out
    assert "skipped needs-extra of cli_tool: it has required-features (extra)" in captured.err
    document = tomllib.loads(written.read_text())
    images = {i["name"]: i for i in document["image"]}
    assert set(images) == {"cli-tool", "server", "admin-tool"}
    assert images["admin-tool"]["binary"] == "Admin__Tool"
    assert images["admin-tool"]["package"] == "Server"
    assert "package" not in images["cli-tool"]
    assert images["cli-tool"]["smoke"]["args"] == ["--version"]
    assert "smoke" not in images["server"]  # argh is only a dev-dependency: commented out
    assert all(tuple(i["targets"]) == target_table.DEFAULT_TARGETS for i in images.values())

    assert main(["config", "--json"]) == 0
    resolved = json.loads(capsys.readouterr().out)
    assert resolved["workspace"]["path"] == str(workspace)
    assert [i["name"] for i in resolved["image"]] == ["admin-tool", "server", "cli-tool"]


def test_init_in_a_member_writes_at_the_root(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(workspace / "crates" / "Server" / "src")
    assert main(["init", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["schema"] == "factory.init/v1"
    assert document["path"] == str(workspace / "images.toml")
    assert document["workspace"] == str(workspace)
    assert [i["name"] for i in document["images"]] == ["admin-tool", "server", "cli-tool"]
    assert document["skipped"] == [
        {
            "package": "cli_tool",
            "binary": "needs-extra",
            "reason": "it has required-features (extra)",
        }
    ]
    assert not (workspace / "crates" / "Server" / "src" / "images.toml").exists()
    # in the member, factory finds the images.toml at the workspace's root
    assert main(["config"]) == 0
    assert f"using {workspace / 'images.toml'}" in capsys.readouterr().err


def test_init_writes_where_config_says(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(workspace)
    assert main(["init", "-C", "deploy/images.toml"]) == 0
    text = (workspace / "deploy" / "images.toml").read_text()
    assert 'path = ".."' in text
    assert main(["config", "-C", "deploy/images.toml"]) == 0


def test_init_never_overwrites_without_force(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(workspace)
    (workspace / "images.toml").write_text("# mine\n")
    assert main(["init"]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "exists: factory init never overwrites" in err
    assert "--force" in err
    assert (workspace / "images.toml").read_text() == "# mine\n"
    assert main(["init", "--force"]) == 0
    assert "[[image]]" in (workspace / "images.toml").read_text()


def test_init_outside_a_workspace_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == ExitCode.USAGE
    assert "is not in a Cargo workspace" in capsys.readouterr().err
    assert not (tmp_path / "images.toml").exists()


def test_a_broken_manifest_is_a_usage_error_with_cargos_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(tmp_path / "Cargo.toml", "[package]\nname = 3\n")
    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "cargo metadata --format-version 1 --no-deps --offline` failed in" in err
    assert "Cargo.toml" in err


def test_without_images_toml_one_binary_is_built_with_the_defaults(
    single: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(single)
    assert main(["config", "--json"]) == 0
    captured = capsys.readouterr()
    assert "no images.toml: using the defaults for the workspace's one binary, only_one" in (
        captured.err
    )
    document = json.loads(captured.out)
    assert [(i["name"], i["binary"]) for i in document["image"]] == [("only-one", "only_one")]
    assert document["image"][0]["smoke"]["args"] == ["--version"]
    assert not (single / "images.toml").exists()


def test_without_images_toml_several_binaries_ask_for_init(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(workspace)
    assert main(["image"]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "has 3 binaries: Admin__Tool (package Server), Server (package Server), cli_tool" in (
        err
    )
    assert "Run `factory init`" in err


def test_without_images_toml_outside_a_workspace_the_file_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["image"]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "images.toml: no such file, and" in err
    assert "factory init" in err


WORKSPACE_TABLES = """
[workspace.metadata.factory.workspace]
profile = "dbg"

[workspace.metadata.factory.registry]
repository = "registry.example:5000/team"
"""
PACKAGE_IMAGE = """
[[package.metadata.factory.image]]
name = "the-server"
tags = ["v1"]

[package.metadata.factory.image.smoke]
args = ["--help"]
"""


@pytest.fixture
def in_cargo_toml(workspace: Path) -> Path:
    """The workspace with factory's settings in its Cargo.toml files instead of images.toml."""
    with (workspace / "Cargo.toml").open("a") as root:
        root.write(WORKSPACE_TABLES)
    with (workspace / "crates" / "Server" / "Cargo.toml").open("a") as member:
        member.write(PACKAGE_IMAGE)
    return workspace


def test_the_settings_may_live_in_cargo_toml(
    in_cargo_toml: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(in_cargo_toml / "crates" / "Server")
    assert main(["config", "--json"]) == 0
    captured = capsys.readouterr()
    member = in_cargo_toml / "crates" / "Server" / "Cargo.toml"
    assert f"read {in_cargo_toml / 'Cargo.toml'}, {member}: valid, 1 image(s)." in captured.err
    document = json.loads(captured.out)
    assert document["workspace"] == {
        "path": str(in_cargo_toml),
        "driver": "cargo",
        "profile": "dbg",
    }
    assert document["registry"]["repository"] == "registry.example:5000/team"
    [image] = document["image"]
    assert (image["name"], image["package"], image["binary"]) == ("the-server", "Server", "Server")
    assert image["repository"] == "registry.example:5000/team/the-server"
    assert image["tags"] == ["v1"]
    assert image["smoke"]["args"] == ["--help"]


def test_an_error_in_cargo_toml_names_its_file_key_and_line(
    in_cargo_toml: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    member = in_cargo_toml / "crates" / "Server" / "Cargo.toml"
    member.write_text(member.read_text().replace('tags = ["v1"]', 'tags = "v1"'))
    monkeypatch.chdir(in_cargo_toml)
    assert main(["config"]) == ExitCode.USAGE
    line = member.read_text().splitlines().index('tags = "v1"') + 1
    assert (
        f"{member}, line {line}: `package.metadata.factory.image[0].tags`: expected an array"
        in (capsys.readouterr().err)
    )
    root = in_cargo_toml / "Cargo.toml"
    root.write_text(root.read_text() + "\n[workspace.metadata.factory.builder]\nbase = 3\n")
    member.write_text(member.read_text().replace('tags = "v1"', 'tags = ["v1"]'))
    assert main(["config"]) == ExitCode.USAGE
    line = root.read_text().splitlines().index("base = 3") + 1
    assert f"{root}, line {line}: `workspace.metadata.factory.builder.base`: expected a string" in (
        capsys.readouterr().err
    )


def test_the_workspace_path_is_not_a_cargo_toml_key(
    in_cargo_toml: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = in_cargo_toml / "Cargo.toml"
    root.write_text(root.read_text().replace('profile = "dbg"', 'path = "x"'))
    monkeypatch.chdir(in_cargo_toml)
    assert main(["config"]) == ExitCode.USAGE
    assert "`workspace.metadata.factory.workspace.path`: the workspace is the folder" in (
        capsys.readouterr().err
    )


def test_images_toml_wins_and_names_the_shadowed_tables(
    in_cargo_toml: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(in_cargo_toml / "crates" / "Server")
    assert main(["init", "-q"]) == 0
    capsys.readouterr()
    assert main(["config", "--json"]) == 0
    captured = capsys.readouterr()
    member = in_cargo_toml / "crates" / "Server" / "Cargo.toml"
    assert f"[workspace.metadata.factory] in {in_cargo_toml / 'Cargo.toml'} is not read" in (
        captured.err
    )
    assert f"[package.metadata.factory] in {member} is not read" in captured.err
    assert json.loads(captured.out)["registry"]["repository"] == "127.0.0.1:5000/factory"
