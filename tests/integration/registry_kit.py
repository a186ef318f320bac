"""A real registry for the fault and secret tests: factory's local registry on a free port,
layouts with incompressible layers, and checks that read the registry directly."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import docker
import docker.errors
import requests

from factory.distribution import media_types
from factory.distribution import plan as push_plan
from factory.engine import local_registry
from factory.engine.docker_engine import labels
from factory.image.assemble import assemble
from tests.imagekit import make_project

INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
ACCEPT = f"{INDEX_TYPE}, {MANIFEST_TYPE}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True, kw_only=True)
class Registry:
    engine: docker.DockerClient
    port: int

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def kill(self) -> None:
        container = self.engine.containers.get(local_registry.container_name(self.port))
        container.kill()

    def restart(self) -> None:
        local_registry.start(self.engine, port=self.port, log=lambda _: None)

    def get(self, path: str) -> requests.Response:
        return requests.get(f"http://{self.address}{path}", headers={"Accept": ACCEPT}, timeout=30)

    def head(self, path: str) -> int:
        return requests.head(f"http://{self.address}{path}", timeout=30).status_code

    def tag_digest(self, repository: str, tag: str) -> str | None:
        """The digest of what ``tag`` serves now; None when the tag does not exist."""
        response = self.get(f"/v2/{repository}/manifests/{tag}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return "sha256:" + hashlib.sha256(response.content).hexdigest()

    def assert_complete(self, repository: str, tag: str) -> None:
        """The tag's index, every manifest it lists and every blob those list are all there."""
        response = self.get(f"/v2/{repository}/manifests/{tag}")
        assert response.status_code == 200, f"{repository}:{tag}: HTTP {response.status_code}"
        index = response.json()
        assert index["mediaType"] == INDEX_TYPE
        for child in index["manifests"]:
            served = self.get(f"/v2/{repository}/manifests/{child['digest']}")
            assert served.status_code == 200, f"{tag} lists the missing manifest {child['digest']}"
            manifest = served.json()
            for blob in [manifest["config"], *manifest["layers"]]:
                status = self.head(f"/v2/{repository}/blobs/{blob['digest']}")
                assert status == 200, f"{tag} needs the missing blob {blob['digest']}"

    def missing_bytes(self, repository: str, layout: Path) -> int:
        """Bytes of the layout's blobs that the repository lacks (what a push must upload)."""
        return sum(
            blob.size
            for blob in push_plan.read(layout).blobs
            if self.head(f"/v2/{repository}/blobs/{blob.digest}") != 200
        )


@contextlib.contextmanager
def local(*, config: str | None = None) -> Iterator[Registry]:
    """factory's local registry on a free loopback port; removed with its volume after."""
    engine = docker.from_env()
    port = free_port()
    try:
        local_registry.start(engine, port=port, log=lambda _: None)
        yield Registry(engine=engine, port=port)
    finally:
        local_registry.stop(engine, port=port)
        with contextlib.suppress(docker.errors.NotFound):
            engine.volumes.get(local_registry.container_name(port)).remove(force=True)


@contextlib.contextmanager
def local_htpasswd(root: Path, user: str, password: str) -> Iterator[Registry]:
    """The registry image with its htpasswd configuration (bcrypt ``user:password``), on a free
    loopback port; removed after."""
    engine = docker.from_env()
    htpasswd = root / "htpasswd"
    htpasswd.write_text(f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(5)).decode()}\n")
    htpasswd.chmod(0o644)
    port = free_port()
    container = engine.containers.run(
        local_registry.ensure_image(engine, log=lambda _: None),
        command=["/etc/factory-registry/htpasswd.yml"],
        detach=True,
        ports={"5000/tcp": ("127.0.0.1", port)},
        volumes={str(htpasswd): {"bind": "/etc/factory-registry/htpasswd", "mode": "ro"}},
        labels=labels(purpose="test-registry"),
    )
    try:
        deadline = time.monotonic() + 30
        while not local_registry.answers(f"127.0.0.1:{port}", timeout=1.0):
            assert time.monotonic() < deadline, container.logs().decode(errors="replace")
            time.sleep(0.2)
        yield Registry(engine=engine, port=port)
    finally:
        container.remove(force=True, v=True)


def layout(
    root: Path, *, padding: int = 700 << 10, targets: tuple[str, ...] = ("amd64", "arm64")
) -> Path:
    """An assembled layout whose binaries carry ``padding`` random bytes each (incompressible
    layers big enough to be cut in the middle, and unique to this call)."""
    project = make_project(root, targets)
    report_path = project.dist / "report.json"
    report = json.loads(report_path.read_text())
    for result in report["results"]:
        path = project.binary(result["target"])
        data = path.read_bytes() + os.urandom(padding)
        path.write_bytes(data)
        result["sha256"] = hashlib.sha256(data).hexdigest()
    report_path.write_text(json.dumps(report))
    config = project.config
    [result] = assemble(
        config,
        config.image,
        None,
        root / "oci",
        environ={"SOURCE_DATE_EPOCH": "1700000000"},
    )
    return result.path


def index_digest(layout_dir: Path, tag: str = "latest") -> str:
    top = json.loads((layout_dir / "index.json").read_text())
    for entry in top["manifests"]:
        if entry.get("annotations", {}).get(media_types.REF_NAME) == tag:
            return str(entry["digest"])
    raise AssertionError(f"{layout_dir} has no tag {tag}")
