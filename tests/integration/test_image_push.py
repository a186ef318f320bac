"""`factory image --push` into factory's local registry, read back by skopeo and Docker."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from factory import local_registry
from tests.imagekit import GREETING, make_project

TARGETS = ("amd64", "amd64_v3", "arm64")
HOST_TARGET = {"x86_64": "amd64", "aarch64": "arm64"}[platform.machine()]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, capture_output=True, text=True, check=False, env=env, timeout=600)
    assert proc.returncode == 0, f"{args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


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
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1700000000"}
    proc = _run(
        sys.executable,
        "-m",
        "factory",
        "image",
        "--json",
        "-C",
        str(project_root / "images.toml"),
        "--push",
        "--registry",
        repository,
        env=env,
    )
    document: dict[str, Any] = json.loads(proc.stdout)
    return document, proc.stderr


def test_push_starts_the_local_registry_and_docker_runs_what_it_pulls(
    tmp_path: Path, port: int
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

    raw = _run(
        "skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{registry}/it/greeter:latest"
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
        _run(
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
    _run("docker", "pull", "-q", reference)
    assert _run("docker", "run", "--rm", reference).stdout == GREETING.format(target=HOST_TARGET)
    if HOST_TARGET == "amd64":
        _run("docker", "pull", "-q", "--platform", "linux/amd64/v3", reference)
        out = _run("docker", "run", "--rm", "--platform", "linux/amd64/v3", reference).stdout
        assert out == GREETING.format(target="amd64_v3")

    again, stderr = _push(project.root, f"{registry}/it")
    assert "starting" not in stderr
    assert again["pushed"][0]["bytes_uploaded"] == 0
    assert again["images"][0]["index_digest"] == image["index_digest"]
