"""What crates' build scripts get from factory, for real: the target's C and C++ compilers with the
level's -march, LLVM's C++ runtime linked statically, the workspace's own .cargo/config.toml
merged (not replaced), jemalloc's page size for arm64, and a failing build script reported with its
crate, its output and a hint (exit 4). The workspaces are in tests/workloads/ and use no crate from
the registry; the canary test (test_canary.py) does the same with published crates.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from factory.cli import main
from factory.engine import docker_engine as engine
from factory.engine.builder import BuilderImage
from factory.engine.docker_engine import ContainerSpec, Mount

WORKLOADS = Path(__file__).resolve().parents[1] / "workloads"
PROBE_TARGETS = ("amd64_v3", "arm64", "arm64_v8_2a")


def _config(directory: Path, workspace: Path, binary: str, targets: tuple[str, ...]) -> Path:
    config = directory / "images.toml"
    config.write_text(
        f'[workspace]\npath = "{workspace}"\ndriver = "cargo"\n\n'
        f'[[image]]\nname = "probe"\nbinary = "{binary}"\ntargets = {json.dumps(list(targets))}\n'
    )
    return config


@pytest.fixture(scope="module")
def probes(
    factory_builder: BuilderImage, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[engine.Container, dict[str, str]]]:
    """build_probe compiled for each target, and a builder container that can run them."""
    directory = tmp_path_factory.mktemp("probe")
    config = _config(directory, WORKLOADS / "build_probe", "build_probe", PROBE_TARGETS)
    capture = directory / "stdout.json"
    with capture.open("w") as sink, contextlib.redirect_stdout(sink):
        assert main(["-C", str(config), "build", "--json"]) == 0
    built = json.loads(capture.read_text())
    paths = {e["target"]: Path(e["path"]) for e in built}
    dist = next(iter(paths.values())).parents[3]
    spec = ContainerSpec(
        image=factory_builder.tag,
        purpose="check",
        mounts=(Mount(source=str(dist), target="/dist", read_only=True, bind=True),),
    )
    with engine.container(engine.client(), spec) as box:
        yield box, {t: "/dist/" + p.relative_to(dist).as_posix() for t, p in paths.items()}


@pytest.mark.parametrize(
    ("target", "cpu", "level", "page"),
    [
        ("amd64_v3", "Haswell-noTSX", "avx2", ""),
        ("arm64", "cortex-a53", "baseline", "16"),
        ("arm64_v8_2a", "cortex-a55", "lse", "16"),
    ],
)
def test_build_scripts_get_the_targets_compilers_level_and_settings(
    probes: tuple[engine.Container, dict[str, str]], target: str, cpu: str, level: str, page: str
) -> None:
    box, paths = probes
    qemu = "qemu-x86_64" if target.startswith("amd64") else "qemu-aarch64"
    out = box.run([qemu, "-cpu", cpu, paths[target]]).stdout.strip()
    # level: the C file saw the level's -march; cpp: a C++ exception was thrown and caught
    # through the static libc++/libc++abi/libunwind; cfg and env: the workspace's own
    # .cargo/config.toml survived factory's flags; page: jemalloc's page size on arm64.
    assert out == f"level={level} cpp=42 cfg=yes env=workspace page={page}"
    described = box.run(["file", "-b", paths[target]]).stdout
    assert "statically linked" in described or "static-pie linked" in described, described


def test_a_failing_build_script_is_reported_with_its_crate_output_and_hint(
    factory_builder: BuilderImage, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(
        tmp_path, WORKLOADS / "failing_build_script", "failing_build_script", ("arm64",)
    )
    code = main(["-C", str(config), "build", "-c", "fastbuild"])
    err = capsys.readouterr().err
    assert code == 4
    assert "the build script of failing_build_script v0.1.0" in err
    assert "factory-missing-tool: not found" in err  # the script's own output
    assert (
        "A tool the build script runs is missing from the builder (`factory-missing-tool`)" in err
    )
    assert "Traceback" not in err


def _build_containers(client: docker.DockerClient) -> list[str]:
    found = client.containers.list(all=True, filters={"label": "org.factory.purpose=build"})
    return [c.name for c in found]


def test_a_failure_beside_another_target_stops_it_and_is_reported_alone(
    factory_builder: BuilderImage, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--jobs 2: arm64's build script fails while amd64's runs (for two minutes); the failure is
    reported with its own output, amd64 is stopped, and no build container is left."""
    client = engine.client()
    before = set(_build_containers(client))
    config = _config(
        tmp_path,
        WORKLOADS / "failing_build_script",
        "failing_build_script",
        ("amd64", "arm64"),
    )
    code = main(["-C", str(config), "-v", "build", "-c", "fastbuild", "--jobs", "2"])
    err = capsys.readouterr().err
    assert code == 4
    assert "for arm64 (aarch64-unknown-linux-musl" in err
    assert "factory-missing-tool: not found" in err
    assert "2 target(s) at once, cargo -j" in err
    assert "probe amd64 done" not in err and "for amd64 (x86_64" not in err
    assert not (tmp_path / "dist" / "bin" / "probe" / "amd64").exists()
    assert set(_build_containers(client)) <= before, "the stopped target's container is removed"
