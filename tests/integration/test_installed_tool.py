"""factory installed as a tool, used on a workspace outside its checkout.

The wheel is built from this checkout and installed into a fresh virtual environment in a
temporary directory; the bundled example is copied to another one, with an images.toml of its
own (one target, no `[builder] dockerfile`), with the one `factory init` writes, or with the
settings in a member's Cargo.toml; the installed `factory image --push` runs there against a
registry in a container. It must find its packaged Dockerfiles, reuse the same content-hashed
builder image the checkout makes, build, validate and push.
"""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from factory import resources
from factory.engine import docker_engine as engine
from factory.engine.builder import BuilderImage, ensure_builder
from tests import installed
from tests.conftest import ROOT
from tests.integration.conftest import running_registry

INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
CONFIG = """\
[[image]]
name = "hello-world"
binary = "hello_world"
targets = ["amd64"]

[image.smoke]
stdout = '^Hello, world from Tokio: \\[1, 2, 3\\]'
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return installed.wheel_of(installed.build(tmp_path_factory.mktemp("wheel"), wheel_only=True))


@pytest.fixture(scope="module")
def bin_dir(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin folder of a fresh virtual environment with factory's wheel installed."""
    return installed.install(wheel, tmp_path_factory.mktemp("venv"))


@pytest.fixture(scope="module")
def checkout_builder() -> BuilderImage:
    """The builder image the checkout's own Dockerfile makes (the rest of the suite's)."""
    assert resources.dockerfile("builder") == ROOT / "dockerfiles" / "builder.Dockerfile"
    return ensure_builder(
        engine.client(), dockerfile=resources.dockerfile("builder"), base="debian:trixie-slim"
    )


# The same image described in Cargo.toml instead of images.toml (as cargo-dist users keep it).
PACKAGE_METADATA = """
[[package.metadata.factory.image]]
name = "hello-world"
targets = ["amd64"]

[package.metadata.factory.image.smoke]
stdout = '^Hello, world from Tokio: \\[1, 2, 3\\]'
"""


def copy_of_the_example(tmp_path: Path) -> Path:
    """A copy of the bundled example outside the checkout, without an images.toml."""
    copy = tmp_path / "hello_world"
    example = ROOT / "examples" / "hello_world"
    shutil.copytree(example, copy, ignore=shutil.ignore_patterns("target", "images.toml"))
    return copy


@pytest.fixture()
def workspace(tmp_path: Path) -> Path:
    """A copy of the bundled example outside the checkout, with an images.toml of its own."""
    copy = copy_of_the_example(tmp_path)
    (copy / "images.toml").write_text(CONFIG)
    return copy


def test_version_of_the_installed_tool(bin_dir: Path, tmp_path: Path) -> None:
    proc = installed.run([str(bin_dir / "factory"), "--version"], cwd=tmp_path)
    assert proc.stdout == f"factory {importlib.metadata.version('factory')}\n"


def test_uv_tool_install_of_the_wheel(wheel: Path, tmp_path: Path) -> None:
    bin_dir = installed.tool_install(wheel, tmp_path)
    proc = installed.run([str(bin_dir / "factory"), "--version"], cwd=tmp_path)
    assert proc.stdout == f"factory {importlib.metadata.version('factory')}\n"


def push_and_check(
    factory: Path, workspace: Path, address: str, *extra: str, builder: BuilderImage
) -> None:
    """`factory image --push` in `workspace`: it reuses the checkout's builder and the registry
    then serves an index of the one amd64 image; the validation report is the workspace's."""
    proc = subprocess.run(
        [str(factory), "image", "--push", "--registry", f"{address}/test", *extra],
        cwd=workspace,
        env=installed.clean_env(),
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    assert f"builder: reusing {builder.tag}:" in proc.stderr, proc.stderr
    response = requests.get(
        f"http://{address}/v2/test/hello-world/manifests/latest",
        headers={"Accept": INDEX_TYPE},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == INDEX_TYPE
    manifests = response.json()["manifests"]
    platforms = [m.get("platform", {}).get("architecture") for m in manifests]
    assert platforms == ["amd64"]
    report = workspace / "dist" / "report.json"
    assert report.is_file(), "the validate stage wrote no report in the workspace's dist/"


def test_the_installed_tool_builds_validates_and_pushes_outside_the_checkout(
    bin_dir: Path, checkout_builder: BuilderImage, workspace: Path, registry_image: str
) -> None:
    with running_registry(registry_image) as (address, _):
        push_and_check(bin_dir / "factory", workspace, address, builder=checkout_builder)


def test_factory_init_then_image_in_a_workspace_outside_the_checkout(
    bin_dir: Path, checkout_builder: BuilderImage, tmp_path: Path, registry_image: str
) -> None:
    copy = copy_of_the_example(tmp_path)
    installed.run([str(bin_dir / "factory"), "init"], cwd=copy / "rust" / "hello_world")
    written = (copy / "images.toml").read_text()
    assert 'name = "hello-world"' in written and 'name = "workloads"' in written
    with running_registry(registry_image) as (address, _):
        push_and_check(
            bin_dir / "factory",
            copy,
            address,
            "--image",
            "hello-world",
            "-t",
            "amd64",
            builder=checkout_builder,
        )


def test_the_settings_in_cargo_toml_instead_of_images_toml(
    bin_dir: Path, checkout_builder: BuilderImage, tmp_path: Path, registry_image: str
) -> None:
    copy = copy_of_the_example(tmp_path)
    manifest = copy / "rust" / "hello_world" / "Cargo.toml"
    manifest.write_text(manifest.read_text() + PACKAGE_METADATA)
    shown = installed.run([str(bin_dir / "factory"), "config"], cwd=copy)
    assert "rust/hello_world/Cargo.toml" in shown.stderr, shown.stderr
    with running_registry(registry_image) as (address, _):
        push_and_check(bin_dir / "factory", copy, address, builder=checkout_builder)
