"""Shards of the real Rust example on two "machines", merged: the index a one-machine push makes.

Each machine is a directory of its own (its own copy of the workspace, its own dist/) with a
Cargo cache volume of its own (FACTORY_CACHE_VOLUME): machine one builds amd64, machine two
arm64, each pushes its shard; `factory index merge` of their result files must give the digest a
one-machine push of amd64 + arm64 gives, and skopeo, umoci and Docker (an arm64 pull that runs)
read it. Three cold compiles: amd64 and arm64 on machine one, arm64 on machine two.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from tests.conftest import ROOT
from tests.integration.conftest import doctor_fix
from tests.integration.registry_kit import Registry, local
from tests.integration.test_main_job import GREETING, _docker_run, factory, write_config
from tests.testtools import Tools

EPOCH = "1700000000"


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    with local() as found:
        yield found


@pytest.fixture
def machines(tmp_path: Path) -> Iterator[list[tuple[Path, dict[str, str]]]]:
    """Two machines: (images.toml, environment), each with its own workspace copy and cache
    volume; the volumes are removed after."""
    made = []
    for name in ("one", "two"):
        workspace = tmp_path / name / "hello_world"
        shutil.copytree(ROOT / "examples" / "hello_world", workspace, ignore=_ignored)
        volume = f"factory-test-shard-{name}-{uuid.uuid4().hex[:8]}"
        env = {"SOURCE_DATE_EPOCH": EPOCH, "FACTORY_CACHE_VOLUME": volume}
        made.append((write_config(tmp_path / name, workspace, ("amd64", "arm64")), env))
    yield made
    client = docker.from_env()
    for _, env in made:
        with contextlib.suppress(docker.errors.NotFound):
            client.volumes.get(env["FACTORY_CACHE_VOLUME"]).remove(force=True)


def _ignored(directory: str, names: list[str]) -> list[str]:
    return [n for n in names if n in ("target", "dist", "bazel-out")]


def test_shards_on_two_machines_merge_into_the_one_machine_index(
    machines: list[tuple[Path, dict[str, str]]], registry: Registry, tools: Tools, tmp_path: Path
) -> None:
    (one, env_one), (two, env_two) = machines
    address = registry.address
    single = factory(one, "image", "--push", "--registry", f"{address}/single", env=env_one)
    expected = single["images"][0]["index_digest"]

    results = [tmp_path / "amd64.json", tmp_path / "arm64.json"]
    for (config, env), target, result in zip(machines, ("amd64", "arm64"), results, strict=True):
        pushed = factory(
            config,
            "image",
            "--push",
            "--shard",
            "-t",
            target,
            "--registry",
            f"{address}/shards",
            "--metadata-file",
            str(result),
            env=env,
        )
        assert pushed["pushed"][0]["indexes"] == []
    assert registry.tag_digest("shards/hello-world", "latest") is None
    arm64 = json.loads(results[1].read_text())["images"][0]["targets"][0]

    merged = factory(
        two, "index", "merge", *map(str, results), "--registry", f"{address}/shards", env=env_two
    )
    [image] = merged["images"]
    print(f"one-machine index {expected}, merged index {image['index_digest']}")  # the evidence
    assert image["index_digest"] == expected, "the merged index differs from the one-machine one"
    assert [t["target"] for t in image["targets"]] == ["amd64", "arm64"]
    reference = f"{address}/shards/hello-world:latest"
    registry.assert_complete("shards/hello-world", "latest")

    raw = tools.run("skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{reference}")
    index: dict[str, Any] = json.loads(raw.stdout)
    assert [m["platform"]["architecture"] for m in index["manifests"]] == ["amd64", "arm64"]
    _umoci_unpacks_the_arm64_image(tools, tmp_path, reference, arm64["manifest_digest"])

    fixed = doctor_fix()
    assert "qemu-aarch64 enabled" in fixed or "qemu-x86_64 enabled" in fixed, fixed
    try:
        assert _docker_run(reference, "linux/arm64").strip() == GREETING
    finally:
        client = docker.from_env()
        for found in client.images.list(name=f"{address}/shards/hello-world"):
            client.images.remove(found.id, force=True)


def _umoci_unpacks_the_arm64_image(tools: Tools, root: Path, reference: str, digest: str) -> None:
    """skopeo takes the arm64 image through the merged index into a layout; umoci unpacks it."""
    layout = root / "copied"
    tools.run(
        "skopeo",
        "copy",
        "--src-tls-verify=false",
        "--override-arch",
        "arm64",
        "--preserve-digests",
        f"docker://{reference}",
        f"oci:{layout}:arm64",
        writable=[root],
    )
    top = json.loads((layout / "index.json").read_text())
    assert [m["digest"] for m in top["manifests"]] == [digest]
    bundle = root / "bundle"
    tools.run(
        "umoci", "unpack", "--rootless", "--image", f"{layout}:arm64", str(bundle), writable=[root]
    )
    assert (bundle / "rootfs" / "hello_world").stat().st_size > 100_000
