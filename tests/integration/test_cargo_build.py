"""`factory build` for real: the builder image, the Cargo driver, and tools nobody here wrote.

One builder image and the `factory-cache` volume are shared by the whole session (the builder is
content-hashed, so it is reused when present; the cache makes a second session's compile a
relink). Each binary is checked inside the builder with `file`, `llvm-readelf` and qemu-user.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from factory import resources
from factory.cli import main
from factory.engine import docker_engine as engine
from factory.engine.builder import BuilderImage, ensure_builder
from factory.engine.docker_engine import ContainerSpec, Mount

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "hello_world"
GREETING = "Hello, world from Tokio: [1, 2, 3]"
TARGETS = ("amd64", "amd64_v3", "arm64", "arm64_v8_2a")
MACHINE = {"amd64": "X86-64", "arm64": "AArch64"}


def _config(directory: Path, workspace: Path, targets: tuple[str, ...]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "images.toml"
    config.write_text(
        f'[workspace]\npath = "{workspace}"\ndriver = "cargo"\n\n'
        '[[image]]\nname = "hello-world"\nbinary = "hello_world"\n'
        f"targets = {json.dumps(list(targets))}\n"
    )
    return config


@pytest.fixture(scope="session")
def client() -> docker.DockerClient:
    return engine.client()


@pytest.fixture(scope="session")
def builder(client: docker.DockerClient) -> BuilderImage:
    return ensure_builder(
        client, dockerfile=resources.dockerfile("builder"), base="debian:trixie-slim"
    )


@pytest.fixture(scope="session")
def built(
    builder: BuilderImage,
    tmp_path_factory: pytest.TempPathFactory,
) -> list[dict[str, object]]:
    """The four targets, built once through the CLI with --json."""
    config = _config(tmp_path_factory.mktemp("build"), EXAMPLE, TARGETS)
    capture = tmp_path_factory.mktemp("out") / "stdout.json"
    with capture.open("w") as sink, contextlib.redirect_stdout(sink):
        code = main(["-C", str(config), "build", "--json"])
    assert code == 0
    result: list[dict[str, object]] = json.loads(capture.read_text())
    return result


@pytest.fixture(scope="session")
def checker(client: docker.DockerClient, builder: BuilderImage, built: list[dict[str, object]]
            ) -> Iterator[engine.Container]:  # fmt: skip
    """A network-less builder container with the artifacts' directory mounted read-only."""
    dist = Path(str(built[0]["path"])).parents[3]
    spec = ContainerSpec(
        image=builder.tag,
        purpose="check",
        mounts=(Mount(source=str(dist), target="/dist", read_only=True, bind=True),),
    )
    with engine.container(client, spec) as box:
        yield box


def _inside(built: list[dict[str, object]], target: str) -> str:
    (entry,) = [e for e in built if e["target"] == target]
    path = Path(str(entry["path"]))
    return "/dist/" + path.relative_to(path.parents[3]).as_posix()


def test_builder_labels_record_the_toolchain(builder: BuilderImage) -> None:
    assert builder.tag.startswith("factory-builder:")
    assert builder.label("llvm") == "21.1.8"
    assert builder.label("musl") == "1.2.5"
    assert builder.label("rust").startswith("1.96")
    assert builder.label("std") in {"source", "prebuilt"}
    assert builder.labels[engine.LABEL] == "true"


def test_build_reports_every_target(built: list[dict[str, object]]) -> None:
    assert [e["target"] for e in built] == list(TARGETS)
    for entry in built:
        assert set(entry) == {"image", "target", "path", "sha256", "size"}
        path = Path(str(entry["path"]))
        assert path.is_file() and path.stat().st_size == entry["size"]
        assert path.parts[-4:] == ("bin", "hello-world", str(entry["target"]), "hello_world")
        assert path.stat().st_uid == os.getuid()


@pytest.mark.parametrize("target", TARGETS)
def test_binary_is_static_for_the_right_machine(
    checker: engine.Container, built: list[dict[str, object]], target: str
) -> None:
    path = _inside(built, target)
    described = checker.run(["file", "-b", path]).stdout
    assert "statically linked" in described or "static-pie linked" in described, described
    assert "dynamically linked" not in described
    header = checker.run(["llvm-readelf-21", "--file-header", "--program-headers", path]).stdout
    assert re.search(rf"Machine:\s+.*{MACHINE[target.split('_')[0]]}", header), header
    assert "INTERP" not in header
    dynamic = checker.run(["llvm-readelf-21", "--dynamic-table", path]).stdout
    assert "NEEDED" not in dynamic


@pytest.mark.parametrize(
    ("target", "runs_on", "refused_by"),
    [
        ("amd64", "qemu64", None),
        ("amd64_v3", "Haswell-noTSX", "Nehalem"),
        ("arm64", "cortex-a53", None),
        ("arm64_v8_2a", "cortex-a55", "cortex-a53"),
    ],
)
def test_binary_prints_the_greeting_under_qemu(
    checker: engine.Container,
    built: list[dict[str, object]],
    target: str,
    runs_on: str,
    refused_by: str | None,
) -> None:
    path = _inside(built, target)
    qemu = "qemu-x86_64" if target.startswith("amd64") else "qemu-aarch64"
    assert checker.run([qemu, "-cpu", runs_on, path]).stdout.strip() == GREETING
    if refused_by is not None:
        # The level's instructions are really used: an older CPU model dies with SIGILL.
        older = checker.run([qemu, "-cpu", refused_by, path], check=False)
        assert older.exit_code != 0


def test_amd64_binary_runs_on_this_host(built: list[dict[str, object]]) -> None:
    if platform.machine() != "x86_64":
        pytest.skip("the host is not x86_64")
    (entry,) = [e for e in built if e["target"] == "amd64"]
    done = subprocess.run([str(entry["path"])], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == GREETING


def test_warm_rebuild_is_fast_and_identical(
    built: list[dict[str, object]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, EXAMPLE, ("amd64",))
    started = time.monotonic()
    assert main(["-C", str(config), "build", "--json"]) == 0
    assert time.monotonic() - started < 60
    (again,) = json.loads(capsys.readouterr().out)
    (first,) = [e for e in built if e["target"] == "amd64"]
    assert again["sha256"] == first["sha256"]


def test_a_broken_workspace_fails_with_the_compiler_output_and_no_leftovers(
    client: docker.DockerClient,
    builder: BuilderImage,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A fixed path: its per-target cache directory (and compiled std) is reused across sessions.
    broken = Path(tempfile.gettempdir()) / "factory-integration-broken-workspace"
    shutil.rmtree(broken, ignore_errors=True)
    shutil.copytree(EXAMPLE, broken, ignore=shutil.ignore_patterns("target"))
    main_rs = broken / "rust" / "hello_world" / "src" / "main.rs"
    main_rs.write_text(main_rs.read_text().replace("vec![1, 2, 3]", "vec![1, 2, 3] + undefined"))
    config = _config(tmp_path / "cfg", broken, ("amd64",))
    code = main(["-C", str(config), "build", "-c", "fastbuild"])
    err = capsys.readouterr().err
    assert code == 4
    assert "amd64" in err and "x86_64-unknown-linux-musl" in err
    assert "cannot find value `undefined`" in err
    leftovers = client.containers.list(
        all=True, filters={"label": f"{engine.SESSION_LABEL}={engine.SESSION_ID}"}
    )
    assert [c.name for c in leftovers if "check" not in c.name] == []


def test_an_unbootstrappable_base_is_a_clear_engine_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, EXAMPLE, ("amd64",))
    code = main(["-C", str(config), "builder", "--base", "alpine:3.99-factory-test"])
    assert code == 3
    assert "not a Debian suite" in capsys.readouterr().err


def test_an_engine_that_is_not_running_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    config = _config(tmp_path, EXAMPLE, ("amd64",))
    assert main(["-C", str(config), "build"]) == 3
    assert "does not answer" in capsys.readouterr().err
