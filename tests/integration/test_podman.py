"""The whole pipeline with Podman as the engine: `podman system service` (rootful, Debian's
podman) on a socket of the test's own, reached by factory through DOCKER_HOST=unix://...
(tests/podman_service.py: its configuration, and why each setting is there).

What runs through Podman's API for real: the bootstrap of a Debian base (mmdebstrap into
Podman's image import), a multi-stage image build with factory's image machinery (Buildah behind
the legacy /build endpoint), the local registry's image build and container, and the pipeline
`factory image --push -t amd64 -t arm64` (build containers, volumes, exec streams, archive
copies, smoke runs without network), a second run that does nothing, `--load` and a run of the
loaded image, `doctor` and `doctor --fix` (a privileged container). The builder and its runtimes
image (2.5 GB, 15 minutes of CPU) are moved in from Docker with `docker save | podman load`
rather than built again: the image ids stay, so factory finds them under the tags it computes.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest

from factory.engine import docker_engine as engine
from factory.engine import images
from factory.engine.bootstrap import resolve_base
from factory.engine.builder import BuilderImage, ensure_runtimes
from factory.model.config import DEFAULT_BASE
from tests import podman_service
from tests.conftest import ROOT
from tests.integration.test_main_job import GREETING, write_config
from tests.integration.test_registry import _free_port
from tests.integration.test_remote_engine import factory

pytestmark = pytest.mark.podman
TARGETS = ("amd64", "arm64")
TINY = """\
ARG BASE
FROM ${BASE} AS first
RUN echo staged > /staged
FROM ${BASE}
SHELL ["/bin/sh", "-eu", "-c"]
COPY --from=first /staged /staged
RUN test "$(cat /staged)" = staged
"""


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[podman_service.PodmanService]:
    """The service; without podman or root the tests skip, unless FACTORY_TEST_PODMAN=required
    (.ci/run sets it: CI installs podman, so a skip there would hide a broken setup)."""
    missing = podman_service.missing()
    if missing is not None:
        if os.environ.get("FACTORY_TEST_PODMAN") == "required":
            pytest.fail(f"FACTORY_TEST_PODMAN=required, but {missing}")
        pytest.skip(missing)
    with podman_service.running(tmp_path_factory.mktemp("podman")) as service:
        yield service


def test_a_base_is_bootstrapped_and_built_on_through_podman(
    podman: podman_service.PodmanService, tmp_path: Path
) -> None:
    client = podman.client()
    logged: list[str] = []
    base = resolve_base(client, "debian:bookworm-slim", log=logged.append)
    assert base == "factory-bootstrap/debian:bookworm-slim"
    assert "bootstrapping Debian bookworm (minbase) with mmdebstrap" in logged[0]
    assert client.images.get(base).labels[engine.LABEL] == "true"
    again: list[str] = []
    assert resolve_base(client, "debian:bookworm-slim", log=again.append) == base
    assert again and "bootstrapped earlier" in again[0]
    version = client.containers.run(base, ["cat", "/etc/debian_version"], remove=True)
    assert bytes(version).decode().startswith("12.")

    dockerfile = tmp_path / "tiny.Dockerfile"
    dockerfile.write_text(TINY)
    planned = images.identify(
        client, dockerfile, repository="factory-test/podman", base="debian:bookworm-slim"
    )
    steps: list[str] = []
    details: list[str] = []
    built = images.build(
        client,
        planned.context,
        tag=planned.tag,
        buildargs=planned.buildargs,
        image_labels=engine.labels(role="podman-test"),
        messages=images.Messages(what="test", hint="See above.", step_prefix="test"),
        progress=steps.append,
        detail=details.append,
    )
    assert images.find(client, planned.tag) == built
    assert sum("STEP " in line for line in steps) >= 5, details  # Buildah's step lines
    # The first stage's images are gone: nothing untagged without children is left.
    assert client.images.list(filters={"dangling": True}) == []


@dataclass(frozen=True, kw_only=True)
class Run:
    done: subprocess.CompletedProcess[str]
    config: Path
    repository: str
    seconds: float


@pytest.fixture(scope="module")
def podman_run(
    podman: podman_service.PodmanService,
    client: docker.DockerClient,
    factory_builder: BuilderImage,
    tmp_path_factory: pytest.TempPathFactory,
) -> Run:
    """`factory image --push` for amd64 and arm64 through Podman, to a local registry that
    factory starts through Podman on a free loopback port."""
    moved = [
        resolve_base(client, DEFAULT_BASE),
        ensure_runtimes(client, base=DEFAULT_BASE).tag,
        factory_builder.tag,
    ]
    podman.load_from(client, moved)
    root = tmp_path_factory.mktemp("podman-run")
    config = write_config(root, ROOT / "examples" / "hello_world", TARGETS)
    repository = f"127.0.0.1:{_free_port()}/podman"
    started = time.monotonic()
    done = factory(podman.url, root, "-C", str(config), "--json", "image", "--push",
                   "--registry", repository)  # fmt: skip
    return Run(done=done, config=config, repository=repository, seconds=time.monotonic() - started)


def test_the_pipeline_runs_through_podman(
    podman_run: Run, podman: podman_service.PodmanService, factory_builder: BuilderImage
) -> None:
    done = podman_run.done
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert f"builder: reusing {factory_builder.tag}" in done.stderr
    assert "starting factory's local registry there" in done.stderr
    document: dict[str, Any] = json.loads(done.stdout)
    assert set(document["stages"]["built"]) == {f"hello-world/{t}" for t in TARGETS}
    report = json.loads((podman_run.config.parent / "dist" / "report.json").read_text())
    assert [r["smoke"]["status"] for r in report["results"]] == ["passed", "passed"], report
    port = podman_run.repository.split("/")[0].rsplit(":", 1)[1]
    registry = podman.client().containers.get(f"factory-registry-{port}")
    assert registry.status == "running" and registry.labels[engine.LABEL] == "true"

    inspected = factory(podman.url, ROOT, "--json", "inspect",
                        f"{podman_run.repository}/hello-world:latest")  # fmt: skip
    assert inspected.returncode == 0, inspected.stderr
    index = json.loads(inspected.stdout)
    assert index["digest"] == document["images"][0]["index_digest"]
    assert [m["platform"] for m in index["manifests"]] == ["linux/amd64", "linux/arm64"]


def test_a_second_run_does_nothing_and_load_runs_in_podman(
    podman_run: Run, podman: podman_service.PodmanService
) -> None:
    assert podman_run.done.returncode == 0, podman_run.done.stderr
    again = factory(podman.url, podman_run.config.parent, "-C", str(podman_run.config), "--json",
                    "image", "--push", "--load", "--registry", podman_run.repository)  # fmt: skip
    assert again.returncode == 0, again.stderr
    document = json.loads(again.stdout)
    assert document["stages"]["built"] == [] and document["stages"]["validated"] == []
    assert [p["bytes_uploaded"] for p in document["pushed"]] == [0]
    assert "building" not in again.stderr
    greeting = podman.client().containers.run(
        f"{podman_run.repository}/hello-world:latest", remove=True, network_mode="none"
    )
    assert bytes(greeting).decode().strip() == GREETING


def test_doctor_and_doctor_fix_through_podman(
    podman_run: Run, podman: podman_service.PodmanService
) -> None:
    """doctor names the engine; --fix registers QEMU from the builder in a privileged
    container (the builder is there once the pipeline ran)."""
    checked = factory(podman.url, ROOT, "--json", "doctor")
    found = {c["check"]: c for c in json.loads(checked.stdout)}
    assert found["docker engine"]["status"] == "ok", found
    assert "Podman 4." in found["docker engine"]["detail"]
    fixed = factory(podman.url, ROOT, "doctor", "--fix")
    assert fixed.returncode == 0, fixed.stderr
    assert "(privileged)" in fixed.stderr
