"""`factory image` checked by tools no one here wrote: skopeo, umoci, oci-image-tool, Docker."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.imagekit import GREETING, HOST_TARGET, Project, factory_json, make_project, run
from tests.testtools import Tools

TARGETS = ("arm64_v9a", "amd64_v3", "arm64", "amd64")


@dataclass(frozen=True, kw_only=True)
class Assembled:
    project: Project
    layout: Path
    summary: dict[str, Any]

    def manifest(self, target: str) -> dict[str, Any]:
        return next(t for t in self.summary["targets"] if t["target"] == target)


@pytest.fixture(scope="module")
def assembled(tmp_path_factory: pytest.TempPathFactory) -> Assembled:
    project = make_project(tmp_path_factory.mktemp("image"), TARGETS)
    summary, _ = factory_json("image", "--no-build", "-C", str(project.root / "images.toml"))
    [image] = summary["images"]
    return Assembled(project=project, layout=Path(image["layout"]), summary=image)


def test_skopeo_reads_the_index_and_every_target_tag(assembled: Assembled, tools: Tools) -> None:
    layout = assembled.layout

    def skopeo(*args: str) -> str:
        return tools.run("skopeo", *args, read_only=[layout]).stdout

    for tag in ("latest", "1.0"):
        raw = skopeo("inspect", "--raw", f"oci:{layout}:{tag}")
        index = json.loads(raw)
        assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
        assert [m["platform"] for m in index["manifests"]][:2] == [
            {"architecture": "amd64", "os": "linux"},
            {"architecture": "arm64", "os": "linux"},
        ]
        assert [m["digest"] for m in index["manifests"]] == [
            assembled.manifest(t)["manifest_digest"]
            for t in ("amd64", "arm64", "amd64_v3", "arm64_v9a")
        ]
    for target, variant in (("amd64", None), ("amd64_v3", "v3"), ("arm64_v9a", "v9")):
        suffix = target.replace("_", "-")
        ref = f"oci:{layout}:latest-{suffix}"
        info = json.loads(skopeo("inspect", ref))
        assert info["Digest"] == assembled.manifest(target)["manifest_digest"]
        assert info["Labels"]["org.opencontainers.image.title"] == "greeter"
        config = json.loads(skopeo("inspect", "--config", "--raw", ref))
        assert config.get("variant") == variant
        assert config["config"]["Entrypoint"] == ["/greet"]


def test_umoci_unpacks_every_target(assembled: Assembled, tools: Tools, tmp_path: Path) -> None:
    def umoci(*args: str) -> str:
        return tools.run("umoci", *args, read_only=[assembled.layout], writable=[tmp_path]).stdout

    tags = umoci("ls", "--layout", str(assembled.layout)).split()
    assert tags == [
        *(f"latest-{s}" for s in ("amd64", "arm64", "amd64-v3", "arm64-v9a")),
        *(f"1.0-{s}" for s in ("amd64", "arm64", "amd64-v3", "arm64-v9a")),
        "latest",
        "1.0",
    ]
    for target in TARGETS:
        bundle = tmp_path / target
        image = f"{assembled.layout}:latest-{target.replace('_', '-')}"
        umoci("unpack", "--rootless", "--image", image, str(bundle))
        rootfs = bundle / "rootfs"
        binary = rootfs / "greet"
        assert binary.read_bytes() == assembled.project.binary(target).read_bytes()
        assert binary.stat().st_mode & 0o777 == 0o755
        assert "nonroot:x:65532" in (rootfs / "etc" / "passwd").read_text()
        assert (rootfs / "etc/ssl/certs/ca-certificates.crt").read_bytes() == Path(
            "/etc/ssl/certs/ca-certificates.crt"
        ).read_bytes()
        process = json.loads((bundle / "config.json").read_text())["process"]
        assert process["args"] == ["/greet"]
        assert process["user"]["uid"] == 65532
        if target == HOST_TARGET:
            assert run(str(binary)).stdout == GREETING.format(target=target)


def test_oci_image_tool_validates_every_document(assembled: Assembled, tools: Tools) -> None:
    layout = assembled.layout

    def validate(kind: str, path: Path) -> None:
        argv = ("oci-image-tool", "validate", "--type", kind, str(path))
        out = tools.run(*argv, read_only=[layout]).stdout
        assert "Validation succeeded" in out

    def blob(digest: str) -> Path:
        return layout / "blobs" / "sha256" / digest.removeprefix("sha256:")

    validate("imageIndex", layout / "index.json")
    validate("imageIndex", blob(assembled.summary["index_digest"]))
    for target in assembled.summary["targets"]:
        validate("manifest", blob(target["manifest_digest"]))
        validate("config", blob(target["config_digest"]))


@pytest.fixture
def repository() -> Iterator[str]:
    name = f"factory-it/greeter-{uuid.uuid4().hex[:8]}"
    yield name
    engine = docker.from_env()
    for image in engine.images.list(name=f"{name}/greeter"):
        engine.images.remove(image.id, force=True)


def test_load_then_docker_run_prints_the_greeting(assembled: Assembled, repository: str) -> None:
    summary, _ = factory_json(
        "image",
        "--no-build",
        "-C",
        str(assembled.project.root / "images.toml"),
        "--load",
        "--registry",
        repository,
    )
    [loaded] = summary["loaded"]
    assert loaded["target"] == HOST_TARGET
    reference = f"{repository}/greeter:latest"
    assert reference in loaded["references"]
    assert f"{repository}/greeter:1.0-{HOST_TARGET}" in loaded["references"]
    [image] = summary["images"]
    host = next(t for t in image["targets"] if t["target"] == HOST_TARGET)
    assert loaded["image_id"] == host["config_digest"]
    proc = run("docker", "run", "--rm", reference)
    assert proc.stdout == GREETING.format(target=HOST_TARGET)
    user = run("docker", "image", "inspect", "--format", "{{.Config.User}}", reference).stdout
    assert user.strip() == "65532:65532"
