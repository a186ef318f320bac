"""`factory image --push` into factory's local registry, read back by skopeo and Docker."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from factory.engine import local_registry
from tests.imagekit import GREETING, HOST_TARGET, factory_json, make_project, run
from tests.testtools import Tools

TARGETS = ("amd64", "amd64_v3", "arm64")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def port() -> Iterator[int]:
    """A loopback port where nothing answers yet; its registry and volume are removed after."""
    chosen = _free_port()
    yield chosen
    engine = docker.from_env()
    local_registry.stop(engine, port=chosen)
    with contextlib.suppress(docker.errors.NotFound):
        engine.volumes.get(local_registry.container_name(chosen)).remove(force=True)
    for image in engine.images.list(name=f"127.0.0.1:{chosen}/it/greeter"):
        engine.images.remove(image.id, force=True)


def _push(project_root: Path, repository: str) -> tuple[dict[str, Any], str]:
    config = str(project_root / "images.toml")
    return factory_json("image", "--no-build", "-C", config, "--push", "--registry", repository)


def test_push_starts_the_local_registry_and_docker_runs_what_it_pulls(
    tmp_path: Path, port: int, tools: Tools
) -> None:
    project = make_project(tmp_path, TARGETS)
    registry = f"127.0.0.1:{port}"
    document, stderr = _push(project.root, f"{registry}/it")
    assert "starting factory's local registry" in stderr
    [image] = document["images"]
    [pushed] = document["pushed"]
    assert pushed["repository"] == f"{registry}/it/greeter"
    assert pushed["bytes_uploaded"] > 0
    by_tag = {i["tag"]: i for i in pushed["indexes"]}
    assert by_tag["latest"]["digest"] == image["index_digest"]
    assert by_tag["latest"]["reference"] == f"{registry}/it/greeter@{image['index_digest']}"

    raw = tools.run(
        "skopeo",
        "inspect",
        "--raw",
        "--tls-verify=false",
        f"docker://{registry}/it/greeter:latest",
    ).stdout
    index = json.loads(raw)
    assert index["manifests"][0]["platform"] == {"architecture": "amd64", "os": "linux"}
    layout = Path(image["layout"])
    assert (
        raw.encode()
        == (
            layout / "blobs" / "sha256" / image["index_digest"].removeprefix("sha256:")
        ).read_bytes()
    )
    v3 = json.loads(
        tools.run(
            "skopeo",
            "inspect",
            "--tls-verify=false",
            f"docker://{registry}/it/greeter:latest-amd64-v3",
        ).stdout
    )
    assert v3["Digest"] == next(
        t["manifest_digest"] for t in image["targets"] if t["target"] == "amd64_v3"
    )

    reference = f"{registry}/it/greeter:latest"
    run("docker", "pull", "-q", reference)
    assert run("docker", "run", "--rm", reference).stdout == GREETING.format(target=HOST_TARGET)
    if HOST_TARGET == "amd64":
        run("docker", "pull", "-q", "--platform", "linux/amd64/v3", reference)
        out = run("docker", "run", "--rm", "--platform", "linux/amd64/v3", reference).stdout
        assert out == GREETING.format(target="amd64_v3")

    again, stderr = _push(project.root, f"{registry}/it")
    assert "starting" not in stderr
    assert again["pushed"][0]["bytes_uploaded"] == 0
    assert again["images"][0]["index_digest"] == image["index_digest"]
