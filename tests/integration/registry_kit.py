"""A real registry for the fault and secret tests: factory's local registry on a free port,
layouts with incompressible layers, and checks that read the registry directly."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import os
import re
import socket
import tarfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import docker
import docker.errors
import requests

from factory import resources
from factory.distribution import media_types
from factory.distribution import plan as push_plan
from factory.engine import local_registry
from factory.engine.docker_engine import labels
from factory.image.assemble import assemble
from tests.imagekit import make_project
from tests.token_issuer import ISSUER, SERVICE, TokenIssuer

INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
ACCEPT = f"{INDEX_TYPE}, {MANIFEST_TYPE}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_REPOSITORY_OF = re.compile(r"^/v2/(.+?)/(?:manifests|blobs|tags|referrers)/")
CONFIG_DIR = "/etc/factory-registry"


@dataclass(frozen=True, kw_only=True)
class Registry:
    engine: docker.DockerClient
    port: int
    authorize: Callable[[str], str] | None = None
    """repository -> the Authorization header the checks send (a registry with auth)."""

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def kill(self) -> None:
        container = self.engine.containers.get(local_registry.container_name(self.port))
        container.kill()

    def restart(self) -> None:
        local_registry.start(self.engine, port=self.port, log=lambda _: None)

    def _headers(self, path: str) -> dict[str, str]:
        repository = _REPOSITORY_OF.match(path)
        if self.authorize is None or repository is None:
            return {"Accept": ACCEPT}
        return {"Accept": ACCEPT, "Authorization": self.authorize(repository.group(1))}

    def get(self, path: str) -> requests.Response:
        url = f"http://{self.address}{path}"
        return requests.get(url, headers=self._headers(path), timeout=30)

    def head(self, path: str) -> int:
        url = f"http://{self.address}{path}"
        return requests.head(url, headers=self._headers(path), timeout=30).status_code

    def logs(self) -> str:
        container = self.engine.containers.get(local_registry.container_name(self.port))
        return bytes(container.logs()).decode(errors="replace")

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


def _tar(files: Mapping[str, bytes]) -> bytes:
    """A tar of ``files`` (name -> bytes), readable by the registry's unprivileged user."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 1700000000
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _config_with(auth: str) -> bytes:
    """The local registry's own config.yml with an ``auth:`` section appended."""
    shipped = (resources.dockerfiles() / "registry" / "config.yml").read_text()
    return (shipped + auth).encode()


@contextlib.contextmanager
def _configured(
    files: Mapping[str, bytes], *, authorize: Callable[[str], str] | None = None
) -> Iterator[Registry]:
    """The registry image run with ``files`` put in its config folder (``config.yml`` among
    them) on a free loopback port, under the local registry's container name; removed after."""
    engine = docker.from_env()
    port = free_port()
    container = engine.containers.create(
        local_registry.ensure_image(engine, log=lambda _: None),
        command=[f"{CONFIG_DIR}/test.yml"],
        name=local_registry.container_name(port),
        ports={"5000/tcp": ("127.0.0.1", port)},
        labels=labels(purpose="test-registry"),
    )
    try:
        container.put_archive(CONFIG_DIR, _tar(files))
        container.start()
        deadline = time.monotonic() + 30
        while not local_registry.answers(f"127.0.0.1:{port}", timeout=1.0):
            assert time.monotonic() < deadline, container.logs().decode(errors="replace")
            time.sleep(0.2)
        yield Registry(engine=engine, port=port, authorize=authorize)
    finally:
        container.remove(force=True, v=True)


@contextlib.contextmanager
def local_htpasswd(root: Path, user: str, password: str) -> Iterator[Registry]:
    """The registry image with htpasswd (bcrypt ``user:password``) authentication."""
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(5)).decode()
    auth = f"auth:\n  htpasswd:\n    realm: factory-registry\n    path: {CONFIG_DIR}/htpasswd\n"
    files = {"test.yml": _config_with(auth), "htpasswd": f"{user}:{hashed}\n".encode()}
    basic = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    with _configured(files, authorize=lambda _: basic) as registry:
        yield registry


@contextlib.contextmanager
def local_token(issuer: TokenIssuer) -> Iterator[Registry]:
    """The registry image with Bearer token authentication: tokens from ``issuer`` (running),
    verified against its root certificate. The checks use the issuer's admin tokens."""
    auth = (
        "auth:\n  token:\n"
        f"    realm: {issuer.realm}\n    service: {SERVICE}\n    issuer: {ISSUER}\n"
        f"    rootcertbundle: {CONFIG_DIR}/token-root.pem\n"
    )
    files = {"test.yml": _config_with(auth), "token-root.pem": issuer.root_pem}
    with _configured(files, authorize=lambda repo: "Bearer " + issuer.admin_token(repo)) as reg:
        yield reg


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
