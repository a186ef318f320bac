"""factory.model.workspace and factory.model.starter on synthetic `cargo metadata` documents:
which targets become images, their names, and the images.toml written for them."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from factory.errors import ExitCode, UsageError
from factory.model import config as cfg
from factory.model import starter
from factory.model import targets as target_table
from factory.model.workspace import (
    CargoBinary,
    CargoWorkspace,
    NotAWorkspace,
    find_manifests,
    image_name,
    image_names,
    parse_metadata,
)


def _target(name: str, kind: str = "bin", features: list[str] | None = None) -> dict[str, Any]:
    target: dict[str, Any] = {"name": name, "kind": [kind], "src_path": f"/ws/{name}.rs"}
    if features is not None:
        target["required-features"] = features
    return target


def _package(
    name: str,
    targets: list[dict[str, Any]],
    dependencies: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "id": f"path+file:///ws/{name}#0.1.0",
        "name": name,
        "manifest_path": f"/ws/{name}/Cargo.toml",
        "targets": targets,
        "dependencies": dependencies or [],
    }


def _dep(name: str, kind: str | None = None, optional: bool = False) -> dict[str, Any]:
    return {"name": name, "kind": kind, "optional": optional, "rename": None}


def _document(*packages: dict[str, Any], members: list[str] | None = None) -> dict[str, Any]:
    ids = [p["id"] for p in packages] if members is None else members
    return {"packages": list(packages), "workspace_members": ids, "workspace_root": "/ws"}


def _binary(name: str, package: str | None = None, parser: str | None = None) -> CargoBinary:
    return CargoBinary(
        package=package or name, name=name, manifest=Path("/ws/Cargo.toml"), parser=parser
    )


def test_only_bins_without_required_features_become_binaries() -> None:
    document = _document(
        _package(
            "tool",
            [
                _target("tool"),
                _target("needs", features=["extra"]),
                _target("tool", "lib"),
                _target("demo", "example"),
                _target("it", "test"),
                _target("speed", "bench"),
                _target("build-script-build", "custom-build"),
            ],
        ),
        _package("lib_only", [_target("lib_only", "lib")]),
    )
    workspace = parse_metadata(document)
    assert workspace.root == Path("/ws")
    assert [(b.package, b.name) for b in workspace.binaries] == [("tool", "tool")]
    assert [(s.name, s.reason) for s in workspace.skipped] == [
        ("needs", "it has required-features (extra)")
    ]


def test_packages_that_are_not_members_are_left_out() -> None:
    member = _package("app", [_target("app")])
    other = _package("dep", [_target("dep")])
    workspace = parse_metadata(_document(member, other, members=[member["id"]]))
    assert [b.name for b in workspace.binaries] == ["app"]


@pytest.mark.parametrize(
    ("dependencies", "parser"),
    [
        ([_dep("serde"), _dep("clap")], "clap"),
        ([_dep("argh")], "argh"),
        ([_dep("clap", kind="dev")], None),
        ([_dep("clap", kind="build")], None),
        ([_dep("clap", optional=True)], None),
        ([_dep("clap_derive")], None),
        ([], None),
    ],
)
def test_the_argument_parser_is_a_normal_dependency(
    dependencies: list[dict[str, Any]], parser: str | None
) -> None:
    workspace = parse_metadata(_document(_package("app", [_target("app")], dependencies)))
    assert workspace.binaries[0].parser == parser


def test_relocate_maps_the_paths_cargo_printed() -> None:
    workspace = parse_metadata(
        _document(_package("app", [_target("app")])),
        relocate=lambda inside: Path("/host") / Path(inside).relative_to("/ws"),
    )
    assert workspace.root == Path("/host")
    assert workspace.binaries[0].manifest == Path("/host/app/Cargo.toml")


def test_a_document_without_the_keys_is_an_error_that_names_the_key() -> None:
    with pytest.raises(Exception, match="workspace_members"):
        parse_metadata({"packages": []})


@pytest.mark.parametrize(
    ("word", "name"),
    [
        ("hello_world", "hello-world"),
        ("My__Tool", "my-tool"),
        ("a--b", "a-b"),
        ("_lead_", "lead"),
        ("v2", "v2"),
        ("Ünïcode", "n-code"),
        ("___", "image"),
    ],
)
def test_image_names_are_valid_repository_components(word: str, name: str) -> None:
    assert image_name(word) == name
    assert cfg.IMAGE_NAME_RE.fullmatch(image_name(word))


def test_two_binaries_of_one_name_get_their_package_in_the_name() -> None:
    binaries = [
        _binary("server", package="api"),
        _binary("server", package="admin"),
        _binary("tool"),
        _binary("Tool", package="tool2"),
    ]
    assert image_names(binaries) == ("api-server", "admin-server", "tool-tool", "tool2-tool")
    same = [_binary("x", package="p"), _binary("x", package="p")]
    assert image_names(same) == ("p-x", "p-x-2")


def test_find_manifests_lists_every_directory_with_a_cargo_toml(tmp_path: Path) -> None:
    (tmp_path / "Cargo.toml").write_text("[workspace]\n")
    member = tmp_path / "crates" / "app" / "src"
    member.mkdir(parents=True)
    (member.parent / "Cargo.toml").write_text("[package]\n")
    found = find_manifests(member)
    assert found[:2] == (member.parent, tmp_path)


def test_no_cargo_toml_is_not_a_workspace(tmp_path: Path) -> None:
    # tmp_path's parents have no Cargo.toml on any machine that runs these tests
    with pytest.raises(NotAWorkspace, match="not in a Cargo workspace") as caught:
        find_manifests(tmp_path)
    assert caught.value.exit_code == ExitCode.USAGE


def _workspace(tmp_path: Path, *binaries: CargoBinary) -> CargoWorkspace:
    return CargoWorkspace(root=tmp_path, binaries=binaries)


def test_the_rendered_file_is_a_valid_config(tmp_path: Path) -> None:
    workspace = _workspace(
        tmp_path, _binary("hello_world"), _binary("cli", package="tools", parser="clap")
    )
    text = starter.render(workspace, directory=tmp_path)
    config = cfg.parse(tomllib.loads(text), source=tmp_path / "images.toml", text=text)
    assert [(i.name, i.binary, i.cargo_package) for i in config.image] == [
        ("hello-world", "hello_world", "hello_world"),
        ("cli", "cli", "tools"),
    ]
    assert all(i.targets == target_table.DEFAULT_TARGETS for i in config.image)
    assert config.workspace_path == tmp_path.resolve()
    assert config.image[0].smoke == cfg.SmokeConfig()
    assert config.image[1].smoke.args == ("--version",)
    assert "# [image.smoke]" in text
    assert "neither clap nor argh" in text
    assert "tools depends on clap" in text


def test_the_workspace_path_is_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "deploy").mkdir()
    workspace = _workspace(tmp_path, _binary("app"))
    text = starter.render(workspace, directory=tmp_path / "deploy")
    assert 'path = ".."' in text


def test_no_binary_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="has no binary target"):
        starter.render(_workspace(tmp_path), directory=tmp_path)


def test_the_default_config_is_the_one_binary(tmp_path: Path) -> None:
    config = starter.default_config(
        _workspace(tmp_path, _binary("app", parser="argh")), source=tmp_path / "images.toml"
    )
    assert [i.name for i in config.image] == ["app"]
    assert config.image[0].smoke.args == ("--version",)
    assert config.root == tmp_path.resolve()


def test_several_binaries_have_no_default_config(tmp_path: Path) -> None:
    workspace = _workspace(tmp_path, _binary("a"), _binary("b", package="p"))
    with pytest.raises(UsageError, match=r"2 binaries: a \(package a\), b \(package p\)") as err:
        starter.default_config(workspace, source=tmp_path / "images.toml")
    assert "factory init" in str(err.value)
