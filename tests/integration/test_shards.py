"""Shards and their merge against a real registry: `factory image --push --shard` from two
project directories (two "machines", each with its own dist/), `factory index merge` of what they
pushed, read back by skopeo and Docker. The binaries are the tiny static ELFs of
tests/imagekit.py: no Rust compile (tests/integration/test_shards_e2e.py has the real one)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from factory.errors import ExitCode
from tests.imagekit import Project, factory_json, factory_run, make_project, write_report
from tests.integration.registry_kit import Registry, local
from tests.testtools import Tools

TARGETS = ("amd64", "amd64_v2", "arm64")
"""images.toml's targets: what the merge expects."""
REPO = "it/greeter"


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    with local() as found:
        yield found


def machine(root: Path) -> Project:
    """A project directory standing in for one machine: its own dist/ with every target built
    and validated (a shard packs only the ones it selects)."""
    return make_project(root, TARGETS)


def shard(
    project: Project, registry: Registry, select: str, result: Path, *tags: str
) -> dict[str, Any]:
    document, _ = factory_json(
        *_image(project, registry, select, *tags), "--metadata-file", str(result)
    )
    return document


def _image(project: Project, registry: Registry, select: str, *tags: str) -> list[str]:
    """`factory image --push --shard` of the comma-separated targets ``select``."""
    targets = [a for name in select.split(",") for a in ("-t", name)]
    return push(project, registry, "--shard", *targets, *(a for t in tags for a in ("--tag", t)))


def push(project: Project, registry: Registry, *args: str, repository: str = "it") -> list[str]:
    """`factory image --push` of what the project's dist/ holds."""
    config = str(project.root / "images.toml")
    address = f"{registry.address}/{repository}"
    return ["image", "--no-build", "-C", config, "--push", "--registry", address, *args]


def merge(project: Project, registry: Registry, *args: str) -> list[str]:
    return [
        "index",
        "merge",
        "-C",
        str(project.root / "images.toml"),
        "--registry",
        f"{registry.address}/it",
        *args,
    ]


def factory_fails(*args: str) -> tuple[int, str]:
    """Run the real CLI expecting a failure: its exit code and its stderr."""
    proc = factory_run(*args)
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stderr


def test_two_shards_merge_into_the_index_a_one_machine_push_makes(
    tmp_path: Path, registry: Registry, tools: Tools
) -> None:
    one, two = machine(tmp_path / "one"), machine(tmp_path / "two")
    first = shard(one, registry, "amd64,amd64_v2", tmp_path / "amd64.json")
    second = shard(two, registry, "arm64", tmp_path / "arm64.json")
    assert first["pushed"][0]["indexes"] == []
    assert [t["target"] for t in first["shard"]["images"][0]["targets"]] == ["amd64", "amd64_v2"]
    result = json.loads((tmp_path / "arm64.json").read_text())
    assert result == second["shard"]
    [arm64] = result["images"][0]["targets"]
    assert list(arm64) == [
        "target",
        "platform",
        "manifest_digest",
        "manifest_size",
        "media_type",
        "tags",
    ]
    assert arm64["platform"] == "linux/arm64"
    assert arm64["tags"] == ["latest-arm64", "1.0-arm64"]
    assert registry.tag_digest(REPO, "latest") is None, "a shard wrote the index tag"
    assert registry.tag_digest(REPO, "latest-arm64") == arm64["manifest_digest"]

    merged, _ = factory_json(
        *merge(one, registry, str(tmp_path / "amd64.json"), str(tmp_path / "arm64.json"))
    )
    assert list(merged) == ["schema", "images", "pushed", "attached"]
    assert merged["schema"] == "factory.merge/v1"
    [image] = merged["images"]
    assert list(image) == [
        "image",
        "repository",
        "tags",
        "index_digest",
        "index_size",
        "targets",
        "notes",
    ]
    assert list(image["targets"][0]) == [
        "target",
        "platform",
        "manifest_digest",
        "manifest_size",
        "source",
    ]
    digest = image["index_digest"]
    assert registry.tag_digest(REPO, "latest") == digest
    assert registry.tag_digest(REPO, "1.0") == digest
    registry.assert_complete(REPO, "latest")
    assert [a["artifact_type"] for a in merged["attached"]] == ["application/spdx+json"]
    assert merged["attached"][0]["subject"] == digest

    raw = tools.run(
        "skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{registry.address}/{REPO}"
    ).stdout
    platforms = [m["platform"] for m in json.loads(raw)["manifests"]]
    assert platforms == [
        {"architecture": "amd64", "os": "linux"},
        {"architecture": "arm64", "os": "linux"},
        {"architecture": "amd64", "os": "linux", "variant": "v2"},
    ]

    # The same targets pushed from one machine: the same index, byte for byte.
    single = machine(tmp_path / "single")
    pushed, _ = factory_json(*push(single, registry, repository="single"))
    assert pushed["images"][0]["index_digest"] == digest

    # Without result files: from the per-target tags alone, the same index; nothing written.
    again, _ = factory_json(*merge(two, registry))
    assert again["images"][0]["index_digest"] == digest
    assert {t["source"] for t in again["images"][0]["targets"]} == {
        f"the tag {registry.address}/{REPO}:latest-{s}" for s in ("amd64", "arm64", "amd64-v2")
    }
    assert again["pushed"][0]["manifests_written"] == 0


def test_a_failed_or_missing_shard_leaves_the_previous_index(
    tmp_path: Path, registry: Registry
) -> None:
    repo = "it/greeter"
    one, two = machine(tmp_path / "one"), machine(tmp_path / "two")
    shard(one, registry, "amd64,amd64_v2", tmp_path / "a1.json", "r1", "stable")
    shard(two, registry, "arm64", tmp_path / "b1.json", "r1", "stable")
    done, _ = factory_json(
        *merge(one, registry, "--tag", "r1", "--tag", "stable"),
        str(tmp_path / "a1.json"),
        str(tmp_path / "b1.json"),
    )
    previous = done["images"][0]["index_digest"]

    # The next revision: machine one's shard pushes; machine two's fails validation.
    for target in ("amd64", "amd64_v2"):
        one.binary(target).write_bytes(one.binary(target).read_bytes() + b"\0")
    write_report(one, _results(one, passed=True))
    write_report(two, _results(two, passed=False))
    shard(one, registry, "amd64,amd64_v2", tmp_path / "a2.json", "r2", "stable")
    code, stderr = factory_fails(*_image(two, registry, "arm64", "r2", "stable"))
    assert code == ExitCode.VALIDATION
    code, stderr = factory_fails(
        *merge(one, registry, "--tag", "r2", "--tag", "stable"),
        str(tmp_path / "a2.json"),
        str(tmp_path / "b2.json"),
    )
    assert code == ExitCode.MERGE
    assert "b2.json" in stderr and "failed or did not run" in stderr
    code, stderr = factory_fails(
        *merge(one, registry, "--tag", "r2", "--tag", "stable"), str(tmp_path / "a2.json")
    )
    assert code == ExitCode.MERGE
    assert "arm64 is missing" in stderr and "r2-arm64" in stderr, stderr
    assert "Nothing was written" in stderr
    inspected, _ = factory_json("inspect", f"{registry.address}/{repo}:stable")
    assert inspected["digest"] == previous
    assert registry.tag_digest(repo, "r2") is None


def _results(project: Project, *, passed: bool) -> list[dict[str, object]]:
    return [
        {
            "image": "greeter",
            "target": name,
            "path": str(project.binary(name).relative_to(project.root)),
            "sha256": hashlib.sha256(project.binary(name).read_bytes()).hexdigest(),
            "passed": passed,
        }
        for name in TARGETS
    ]


def test_a_per_target_tag_that_names_another_platform_is_refused(
    tmp_path: Path, registry: Registry
) -> None:
    one, two = machine(tmp_path / "one"), machine(tmp_path / "two")
    first = shard(one, registry, "amd64,amd64_v2", tmp_path / "a.json", "r3")
    shard(two, registry, "arm64", tmp_path / "b.json", "r3")
    amd64 = first["shard"]["images"][0]["targets"][0]["manifest_digest"]
    served = registry.get(f"/v2/{REPO}/manifests/{amd64}")
    retagged = requests.put(
        f"http://{registry.address}/v2/{REPO}/manifests/r3-arm64",
        data=served.content,
        headers={"Content-Type": served.headers["Content-Type"]},
        timeout=30,
    )
    assert retagged.status_code == 201
    code, stderr = factory_fails(*merge(one, registry, "--tag", "r3"))
    assert code == ExitCode.MERGE
    assert f"{amd64} for arm64" in stderr and "linux/amd64 by its config" in stderr, stderr
    assert registry.tag_digest(REPO, "r3") is None


def test_shards_of_another_cargo_lock_are_refused(tmp_path: Path, registry: Registry) -> None:
    one, two = machine(tmp_path / "one"), machine(tmp_path / "two")
    (two.root / "ws" / "Cargo.lock").write_text("version = 4\n")
    shard(one, registry, "amd64,amd64_v2", tmp_path / "a.json", "r4")
    shard(two, registry, "arm64", tmp_path / "b.json", "r4")
    code, stderr = factory_fails(
        *merge(one, registry, "--tag", "r4"), str(tmp_path / "a.json"), str(tmp_path / "b.json")
    )
    assert code == ExitCode.MERGE
    assert "different Cargo.lock files (org.factory.cargo-lock)" in stderr, stderr
    assert "arm64 from sha256:" in stderr and "amd64, amd64_v2 from (none)" in stderr, stderr
    assert registry.tag_digest(REPO, "r4") is None
