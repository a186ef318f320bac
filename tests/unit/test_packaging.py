"""The wheel and the sdist carry every file factory reads at run time, and an installed factory
finds its packaged copy (not the checkout's) with the same builder hash.

The one copy of the Dockerfiles is the repository's top-level dockerfiles/; pyproject.toml has
the build backend put it into the wheel as factory/dockerfiles/.
"""

from __future__ import annotations

import importlib.metadata
import json
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

from factory import resources
from factory.cli import main
from factory.engine import images
from tests import installed
from tests.conftest import ROOT

# What factory reads at run time, relative to the top-level dockerfiles/ (which is the only copy).
RUNTIME_DOCKERFILES = (
    "builder.Dockerfile",
    "builder/setup-sysroots.sh",
    "builder/hello.c",
    "builder/hello.cpp",
    "builder/cmake-probe/CMakeLists.txt",
    "runtimes.Dockerfile",
    "runtimes/build-runtimes.sh",
    "registry.Dockerfile",
    "registry/config.yml",
    "registry/htpasswd.yml",
    "bazel.Dockerfile",
    "pagesize.Dockerfile",
    "pagesize/init.c",
)
SCHEMA = "factory/model/images.schema.json"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ...]:
    """The sdist and the wheel built from it, as a release would make them."""
    return installed.build(tmp_path_factory.mktemp("built"))


def _repository_dockerfiles() -> set[str]:
    folder = ROOT / "dockerfiles"
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def test_the_runtime_files_have_one_copy_in_the_repository() -> None:
    assert set(RUNTIME_DOCKERFILES) <= _repository_dockerfiles()
    assert not (ROOT / "factory" / "dockerfiles").exists()
    assert not any(p.is_symlink() for p in (ROOT / "dockerfiles").rglob("*"))
    assert resources.dockerfiles() == ROOT / "dockerfiles"
    assert resources.schema() == ROOT / SCHEMA


def test_the_wheel_carries_the_dockerfiles_and_the_schema(built: tuple[Path, ...]) -> None:
    with zipfile.ZipFile(installed.wheel_of(built)) as wheel:
        names = set(wheel.namelist())
    packaged = {n.removeprefix("factory/dockerfiles/") for n in names if "/dockerfiles/" in n}
    assert set(RUNTIME_DOCKERFILES) <= packaged
    assert packaged == _repository_dockerfiles()
    assert SCHEMA in names
    assert not any(n.startswith(("dockerfiles/", "tests/", "examples/")) for n in names)


def test_the_sdist_carries_the_dockerfiles_and_the_schema(built: tuple[Path, ...]) -> None:
    (sdist,) = (p for p in built if p.name.endswith(".tar.gz"))
    with tarfile.open(sdist) as archive:
        names = {n.split("/", 1)[1] for n in archive.getnames() if "/" in n}
    assert {f"dockerfiles/{n}" for n in RUNTIME_DOCKERFILES} <= names
    assert SCHEMA in names and "pyproject.toml" in names


def test_the_installed_copy_is_found_and_hashes_like_the_checkouts(
    built: tuple[Path, ...], tmp_path: Path
) -> None:
    bin_dir = installed.install(installed.wheel_of(built), tmp_path, deps=False)
    script = (
        "import json; from factory import resources; "
        "print(json.dumps([str(resources.dockerfile(n)) for n in ('builder', 'registry', "
        "'bazel')] + [str(resources.schema())]))"
    )
    proc = installed.run([str(bin_dir / "python"), "-c", script], cwd=tmp_path)
    found = [Path(p) for p in json.loads(proc.stdout)]
    assert all(p.is_file() and p.is_relative_to(tmp_path / "venv") for p in found), found
    for packaged in found[:3]:
        checked_out = ROOT / "dockerfiles" / packaged.name
        assert images.load_context(packaged) == images.load_context(checked_out)
        args = {"BASE": "factory-bootstrap/debian:trixie-slim"}
        assert images.content_hash(
            images.load_context(packaged), args, "sha256:base"
        ) == images.content_hash(images.load_context(checked_out), args, "sha256:base")
    assert found[3].read_bytes() == (ROOT / SCHEMA).read_bytes()


def test_version_prints_the_distributions_version(capsys: pytest.CaptureFixture[str]) -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert importlib.metadata.version("factory") == declared
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"factory {declared}\n"
