"""factory.image.provenance: time, revision, source and version of an image."""

from __future__ import annotations

import subprocess
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
    strip = provenance.source_url
    assert strip("https://user:token@git.example.org/a/b.git") == "https://git.example.org/a/b.git"
    assert strip("https://git.example.org/a/b.git") == "https://git.example.org/a/b.git"
    assert strip("http://token@git.example.org:8080/a/b") == "http://git.example.org:8080/a/b"
    assert strip(None) is None
    assert strip("") is None


def test_ssh_remotes_become_https_urls() -> None:
    url = provenance.source_url
    assert url("git@git.example.org:a/b.git") == "https://git.example.org/a/b"
    assert url("git.example.org:a/b") == "https://git.example.org/a/b"
    assert url("ssh://git@git.example.org/a/b.git") == "https://git.example.org/a/b"
    assert url("ssh://git@git.example.org:2222/a/b.git/") == "https://git.example.org/a/b"
    assert url("git+ssh://me@git.example.org/a/b.git") == "https://git.example.org/a/b"
    assert url("git@git.example.org:") is None


@pytest.mark.parametrize(
    "remote",
    [
        "/srv/checkouts/app",
        "../app",
        "app.git",
        "file:///srv/checkouts/app",
        "C:/checkouts/app",
        "git://git.example.org/a/b.git",
        "ftp://git.example.org/a/b",
    ],
)
def test_anything_but_a_url_is_dropped(remote: str) -> None:
    assert provenance.source_url(remote) is None


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True)


def _repository(path: Path, origin: str | None, cargo_repository: str | None = None) -> Path:
    path.mkdir()
    _git(path, "init", "-q")
    extra = f'repository = "{cargo_repository}"\n' if cargo_repository else ""
    (path / "Cargo.toml").write_text(f'[package]\nname = "app"\nversion = "0.1.0"\n{extra}')
    if origin is not None:
        _git(path, "remote", "add", "origin", origin)
    return path


def test_the_source_is_origin_as_a_url(tmp_path: Path) -> None:
    workspace = _repository(tmp_path / "ws", "git@git.example.org:org/app.git")
    assert provenance.collect(workspace, "app", environ={}).source == (
        "https://git.example.org/org/app"
    )


def test_a_clone_of_a_local_checkout_falls_back_to_the_cargo_repository(tmp_path: Path) -> None:
    workspace = _repository(
        tmp_path / "clone", str(tmp_path / "checkout"), "https://git.example.org/org/app"
    )
    assert provenance.collect(workspace, "app", environ={}).source == (
        "https://git.example.org/org/app"
    )


def test_a_local_origin_and_no_cargo_repository_publish_no_source(tmp_path: Path) -> None:
    workspace = _repository(tmp_path / "clone", f"file://{tmp_path / 'checkout'}")
    assert provenance.collect(workspace, "app", environ={}).source is None


def test_build_epoch_prefers_source_date_epoch(tmp_path: Path) -> None:
    from factory.image.provenance import build_epoch

    assert build_epoch(tmp_path, environ={"SOURCE_DATE_EPOCH": "42"}) == (42, "SOURCE_DATE_EPOCH")
    epoch, origin = build_epoch(tmp_path, environ={})
    assert (epoch, origin.split()[0]) == (0, "none")
