"""The main job on the bundled example, proved with clients no one here wrote.

`factory image --push` (the whole pipeline: builder, build, validate, assemble, push) of the real
Rust example into a registry running in a testcontainers container built from
dockerfiles/registry.Dockerfile; then skopeo and Docker read it back.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
from testcontainers.core.container import DockerContainer

from tests.conftest import ROOT
from tests.integration.conftest import doctor_fix, running_registry
from tests.testtools import Tools

GREETING = "Hello, world from Tokio: [1, 2, 3]"
TARGETS = ("amd64", "amd64_v3", "arm64")
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
WRITE = re.compile(r'"((?:PUT|POST|PATCH|DELETE) /v2/\S*) HTTP')


def write_config(root: Path, workspace: Path, targets: tuple[str, ...]) -> Path:
    config = root / "images.toml"
    config.write_text(
        f"""
[workspace]
path = "{workspace}"

[builder]
dockerfile = "{ROOT / "dockerfiles" / "builder.Dockerfile"}"

[[image]]
name = "hello-world"
binary = "hello_world"
targets = {json.dumps(list(targets))}
user = "65532:65532"

[image.files]
ca_certificates = true
passwd = true

[image.smoke]
stdout = '^Hello, world from Tokio: \\[1, 2, 3\\]'
"""
    )
    return config


def factory(config: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "factory", "-C", str(config), "--json", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=config.parent,
        env={**os.environ, **(env or {})},
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    document: dict[str, Any] = json.loads(proc.stdout)
    return document


@pytest.fixture(scope="module")
def registry(registry_image: str) -> Iterator[tuple[str, DockerContainer]]:
    with running_registry(registry_image) as running:
        yield running


@pytest.fixture(scope="module")
def pushed(
    tmp_path_factory: pytest.TempPathFactory, registry: tuple[str, DockerContainer]
) -> Iterator[tuple[str, dict[str, Any], Path]]:
    address, _ = registry
    config = write_config(
        tmp_path_factory.mktemp("main-job"), ROOT / "examples" / "hello_world", TARGETS
    )
    document = factory(config, "image", "--push", "--registry", f"{address}/main")
    yield address, document, config
    client = docker.from_env()
    for image in client.images.list(name=f"{address}/main/hello-world"):
        client.images.remove(image.id, force=True)


def _raw(tools: Tools, reference: str) -> dict[str, Any]:
    argv = ("skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{reference}")
    document: dict[str, Any] = json.loads(tools.run(*argv).stdout)
    return document


def test_the_pipeline_ran_every_stage(pushed: tuple[str, dict[str, Any], Path]) -> None:
    _, document, _ = pushed
    stages = document["stages"]
    assert set(stages["seconds"]) == {"builder", "build", "validate", "assemble"}
    done = set(stages["built"]) | set(stages["up_to_date"])
    assert done == {f"hello-world/{t}" for t in TARGETS}
    [image] = document["images"]
    assert [t["target"] for t in image["targets"]] == ["amd64", "arm64", "amd64_v3"]


def test_skopeo_sees_the_index_with_the_baselines_first(
    pushed: tuple[str, dict[str, Any], Path], tools: Tools
) -> None:
    address, _, _ = pushed
    index = _raw(tools, f"{address}/main/hello-world:latest")
    assert index["mediaType"] == INDEX_TYPE
    platforms = [
        "/".join(
            filter(
                None,
                (m["platform"]["os"], m["platform"]["architecture"], m["platform"].get("variant")),
            )
        )
        for m in index["manifests"]
    ]
    assert platforms == ["linux/amd64", "linux/arm64", "linux/amd64/v3"]
    per_target = _raw(tools, f"{address}/main/hello-world:latest-amd64-v3")
    assert per_target["mediaType"] == "application/vnd.oci.image.manifest.v1+json"


def _docker_run(reference: str, platform: str) -> str:
    client = docker.from_env()
    client.images.pull(reference, platform=platform)
    out = client.containers.run(reference, platform=platform, remove=True)
    return bytes(out).decode()


def test_docker_pulls_and_runs_the_arm64_image(pushed: tuple[str, dict[str, Any], Path]) -> None:
    address, _, _ = pushed
    fixed = doctor_fix()
    assert "qemu-aarch64 enabled" in fixed or "qemu-x86_64 enabled" in fixed, fixed
    out = _docker_run(f"{address}/main/hello-world:latest", "linux/arm64")
    assert out.strip() == GREETING


def test_docker_takes_the_v3_manifest_when_asked(
    pushed: tuple[str, dict[str, Any], Path],
) -> None:
    address, document, _ = pushed
    [image] = document["images"]
    v3 = next(t for t in image["targets"] if t["target"] == "amd64_v3")
    client = docker.from_env()
    pulled = client.images.pull(f"{address}/main/hello-world:latest", platform="linux/amd64/v3")
    assert pulled.id == v3["config_digest"]
    out = client.containers.run(pulled.id, remove=True)
    assert bytes(out).decode().strip() == GREETING
    assert pulled.attrs["Config"]["User"] == "65532:65532"


def _writes(container: DockerContainer) -> list[str]:
    """The write requests in the registry's access log (it logs each request's method)."""
    logs = container.get_wrapped_container().logs().decode(errors="replace")
    return WRITE.findall(logs)


def test_a_second_push_uploads_and_writes_nothing(
    pushed: tuple[str, dict[str, Any], Path], registry: tuple[str, DockerContainer]
) -> None:
    address, first, config = pushed
    _, container = registry
    before = _writes(container)
    assert before, "the registry's access log lists the first push's writes"
    again = factory(config, "image", "--push", "--registry", f"{address}/main")
    assert _writes(container)[len(before) :] == []
    assert again["stages"]["built"] == [] and again["stages"]["validated"] == []
    assert [p["bytes_uploaded"] for p in again["pushed"]] == [0]
    assert [p["manifests_written"] for p in again["pushed"]] == [0]
    assert [p["manifests_skipped"] for p in again["pushed"]] == [
        p["manifests_written"] for p in first["pushed"]
    ]
    # the SBOM is a function of the image: the same one, found attached, not a second one
    assert [a["digest"] for a in again["attached"]] == [a["digest"] for a in first["attached"]]
    assert [a["artifact_type"] for a in first["attached"]] == ["application/spdx+json"]
    assert again["images"][0]["index_digest"] == first["images"][0]["index_digest"]


def test_two_builds_from_clean_caches_give_the_same_index(
    tmp_path: Path, pushed: tuple[str, dict[str, Any], Path]
) -> None:
    """Two copies of the workspace (so two cold target directories), built and assembled."""
    digests = []
    for name in ("one", "two"):
        workspace = tmp_path / name / "hello_world"
        shutil.copytree(
            ROOT / "examples" / "hello_world",
            workspace,
            ignore=shutil.ignore_patterns("target", "bazel-*"),
        )
        config = write_config(tmp_path / name, workspace, ("amd64",))
        document = factory(config, "image", env={"SOURCE_DATE_EPOCH": "1700000000"})
        assert document["stages"]["built"] == ["hello-world/amd64"]
        digests.append(document["images"][0]["index_digest"])
    assert digests[0] == digests[1]
