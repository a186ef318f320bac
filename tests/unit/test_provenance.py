"""factory.image.provenance: time, revision, source and version of an image."""

from __future__ import annotations

from pathlib import Path

import pytest

from factory.errors import UsageError
from factory.image import provenance


def test_source_date_epoch() -> None:
    assert provenance.source_date_epoch({}) is None
    assert provenance.source_date_epoch({"SOURCE_DATE_EPOCH": ""}) is None
    assert provenance.source_date_epoch({"SOURCE_DATE_EPOCH": "1700000000"}) == 1700000000
    with pytest.raises(UsageError, match="SOURCE_DATE_EPOCH='yesterday' is not a Unix time"):
        provenance.source_date_epoch({"SOURCE_DATE_EPOCH": "yesterday"})


def test_outside_git_the_time_is_zero_and_says_why(tmp_path: Path) -> None:
    result = provenance.collect(tmp_path, "nothing", environ={})
    assert result.created == 0
    assert result.created_from.startswith("none")
    assert (result.revision, result.source, result.version) == (None, None, None)


def test_cargo_package_resolves_workspace_inheritance(tmp_path: Path) -> None:
    (tmp_path / "Cargo.toml").write_text(
        '[workspace]\nmembers = ["tools/*", "app"]\n'
        '[workspace.package]\nversion = "1.2.3"\nrepository = "https://example.org/ws"\n'
    )
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Cargo.toml").write_text(
        '[package]\nname = "app"\nversion.workspace = true\nrepository.workspace = true\n'
    )
    (tmp_path / "tools" / "lint").mkdir(parents=True)
    (tmp_path / "tools" / "lint" / "Cargo.toml").write_text(
        '[package]\nname = "lint"\nversion = "0.0.9"\n'
    )
    assert provenance.cargo_package(tmp_path, "app") == {
        "version": "1.2.3",
        "repository": "https://example.org/ws",
    }
    assert provenance.cargo_package(tmp_path, "lint") == {"version": "0.0.9"}
    assert provenance.cargo_package(tmp_path, "missing") == {}
    assert provenance.cargo_package(tmp_path / "nowhere", "app") == {}


def test_remote_credentials_never_reach_an_annotation() -> None:
    strip = provenance._without_credentials
    assert strip("https://user:token@git.example.org/a/b.git") == "https://git.example.org/a/b.git"
    assert strip("https://git.example.org/a/b.git") == "https://git.example.org/a/b.git"
    assert strip("git@git.example.org:a/b.git") == "git@git.example.org:a/b.git"
    assert strip(None) is None


def test_build_epoch_prefers_source_date_epoch(tmp_path: Path) -> None:
    from factory.image.provenance import build_epoch

    assert build_epoch(tmp_path, environ={"SOURCE_DATE_EPOCH": "42"}) == (42, "SOURCE_DATE_EPOCH")
    epoch, origin = build_epoch(tmp_path, environ={})
    assert (epoch, origin.split()[0]) == (0, "none")
