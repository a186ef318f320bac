"""The Bazel path against the real engine: the Bazel stage, then a real `bazel build`.

The stage test runs everywhere: where bazelisk and Bazel can be downloaded it checks the stage's
`bazel --version`; where they cannot (machines without internet, like the ones this project is
developed on) it checks that factory says so in one EngineError that names the cause. The
end-to-end build needs that Bazel, so without it it is skipped with the stage's own reason.
"""

from __future__ import annotations

from pathlib import Path

import docker
import pytest
from elftools.elf.elffile import ELFFile

from factory.build import bazel
from factory.build.bazel_stage import ensure_bazel_stage
from factory.build.job import Request
from factory.engine import docker_engine as engine
from factory.engine.builder import BuilderImage, ensure_builder
from factory.engine.docker_engine import ContainerSpec, Mount, container
from factory.errors import EngineError
from factory.model import targets as target_table
from factory.model.config import DEFAULT_BASE, BazelConfig, ImageConfig
from factory.model.dist import Dist
from tests.conftest import ROOT

WORKSPACE = ROOT / "examples" / "hello_world"


@pytest.fixture(scope="module")
def client() -> docker.DockerClient:
    return engine.client()


@pytest.fixture(scope="module")
def builder(client: docker.DockerClient) -> BuilderImage:
    return ensure_builder(
        client, dockerfile=ROOT / "dockerfiles" / "builder.Dockerfile", base=DEFAULT_BASE
    )


@pytest.fixture(scope="module")
def stage(client: docker.DockerClient, builder: BuilderImage) -> BuilderImage | str:
    """The Bazel stage, or the reason it could not be built."""
    try:
        return ensure_bazel_stage(client, builder, bazel_version="9.0.0")
    except EngineError as err:
        return str(err)


def test_the_stage_has_bazel_or_says_why_not(
    client: docker.DockerClient, stage: BuilderImage | str
) -> None:
    if isinstance(stage, str):
        assert stage.startswith("Bazel 9.0.0 could not be obtained: building the Bazel stage")
        # The cause comes from the stage itself, not only a generic "non-zero code".
        assert "bazel stage:" not in stage and (
            "could not be built with go install" in stage
            or "could not download Bazel 9.0.0" in stage
        )
        return
    assert stage.label("bazel") == "9.0.0"
    spec = ContainerSpec(image=stage.tag, purpose="check", workdir="/tmp")
    with container(client, spec) as box:
        assert box.run(["bazel", "--version"]).stdout.strip() == "bazel 9.0.0"


def test_bazel_builds_static_binaries_that_run(
    client: docker.DockerClient, builder: BuilderImage, stage: BuilderImage | str, tmp_path: Path
) -> None:
    if isinstance(stage, str):
        pytest.skip(f"no Bazel in the builder, so no end-to-end Bazel build: {stage}")
    image = ImageConfig(name="hello-world", binary="hello_world")
    chosen = (target_table.get("amd64_v3"), target_table.get("arm64"))
    request = Request(
        engine=client,
        builder=builder,
        workspace=WORKSPACE,
        images=[image],
        targets_of=lambda _: chosen,
        profile="opt",
        dist=Dist(root=tmp_path),
        progress=print,
        detail=lambda _: None,
        bazel=BazelConfig(),
    )
    artifacts = bazel.BazelDriver().build(request)
    assert [a.target for a in artifacts] == ["amd64_v3", "arm64"]
    machines = []
    for artifact in artifacts:
        with artifact.path.open("rb") as stream:
            elf = ELFFile(stream)
            machines.append(elf["e_machine"])
            assert not any(s["p_type"] == "PT_INTERP" for s in elf.iter_segments())
    assert machines == ["EM_X86_64", "EM_AARCH64"]
    # Both print the seed's greeting under QEMU in the builder, on the oldest CPU of their level.
    spec = ContainerSpec(
        image=builder.tag,
        purpose="check",
        mounts=(Mount(source=str(tmp_path), target="/dist", read_only=True, bind=True),),
    )
    cpus = {"amd64_v3": ["qemu-x86_64", "-cpu", "Haswell-noTSX"], "arm64": ["qemu-aarch64",
            "-cpu", "cortex-a53"]}  # fmt: skip
    with container(client, spec) as box:
        for artifact in artifacts:
            inside = f"/dist/{artifact.path.relative_to(tmp_path)}"
            out = box.run([*cpus[artifact.target], inside]).stdout
            assert out.strip() == "Hello, world from Tokio: [1, 2, 3]"
