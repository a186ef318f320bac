"""The registry client against Debian's docker-registry, checked with skopeo (a client no one
here wrote). The registries run in testcontainers made from dockerfiles/registry.Dockerfile.

The Ryuk reaper image cannot be pulled here, so Ryuk is off and every container is removed by
its context manager (and labelled org.factory.managed=true, so `docker ps -a --filter` finds
leftovers of a killed run).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import requests
from testcontainers.core.config import testcontainers_config
from testcontainers.core.container import DockerContainer

from factory.distribution import push as registry
from factory.engine import docker_engine as engine
from factory.engine import local_registry
from factory.errors import ExitCode, RegistryError
from tests.conftest import ROOT
from tests.integration.conftest import wait_until_it_answers
from tests.oci_layouts import Built, write_layout
from tests.testtools import Tools

# The reaper's image cannot be pulled here; containers are removed by their context managers.
testcontainers_config.ryuk_disabled = True

USER, PASSWORD = "ann", "correct horse battery staple"


@pytest.fixture(autouse=True)
def _forget_blob_locations() -> Iterator[None]:
    registry._KNOWN_BLOBS.clear()
    yield
    registry._KNOWN_BLOBS.clear()


@pytest.fixture()
def auth_registry(registry_image: str, tmp_path: Path) -> Iterator[str]:
    htpasswd = tmp_path / "htpasswd"
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=5)).decode()
    htpasswd.write_text(f"{USER}:{hashed}\n")
    htpasswd.chmod(0o644)
    container = (
        DockerContainer(registry_image)
        .with_exposed_ports(5000)
        .with_volume_mapping(str(htpasswd), "/etc/factory-registry/htpasswd", "ro")
        .with_command(["/etc/factory-registry/htpasswd.yml"])
        .with_kwargs(labels=engine.labels(purpose="test-registry"))
    )
    with container:
        address = f"127.0.0.1:{container.get_exposed_port(5000)}"
        wait_until_it_answers(address, container)
        yield address


def _skopeo_raw(tools: Tools, reference: str) -> bytes:
    argv = ("skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{reference}")
    return tools.run(*argv).stdout.encode()


def _skopeo_copy(tools: Tools, reference: str, destination: Path) -> dict[str, Any]:
    """Copy every image of `reference` into an OCI layout (skopeo checks each blob's digest)."""
    destination.mkdir()
    tools.run(
        "skopeo",
        "copy",
        "--all",
        "--preserve-digests",
        "--src-tls-verify=false",
        f"docker://{reference}",
        f"oci:{destination}:latest",
        writable=[destination],
    )
    document: dict[str, Any] = json.loads((destination / "index.json").read_text())
    return document


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _factory(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "factory", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )


def _layout(tmp_path: Path, *, payload_size: int = 1024) -> Built:
    return write_layout(tmp_path / "layout", payload_size=payload_size)


def test_skopeo_sees_the_pushed_index_with_amd64_first(
    open_registry: tuple[str, DockerContainer], tools: Tools, tmp_path: Path
) -> None:
    address, _ = open_registry
    built = _layout(tmp_path)
    result = registry.push_layout(built.path, f"{address}/factory/hello")
    raw = _skopeo_raw(tools, f"{address}/factory/hello:latest")
    index = json.loads(raw)
    assert _sha256(raw) == built.index_digest == result.indexes[0].digest
    assert index["manifests"][0]["platform"] == {"architecture": "amd64", "os": "linux"}
    assert index["manifests"][1]["platform"] == {"architecture": "arm64", "os": "linux"}
    v3 = _skopeo_raw(tools, f"{address}/factory/hello:latest-amd64-v3")
    assert _sha256(v3) == built.manifest_digests["amd64-v3"]
    assert result.bytes_uploaded == built.blob_bytes
    # skopeo can fetch every blob, and they match their digests (it checks as it copies).
    copied = _skopeo_copy(tools, f"{address}/factory/hello:latest", tmp_path / "copy")
    assert copied["manifests"][0]["digest"] == built.index_digest


def test_a_second_push_uploads_zero_blob_bytes(
    open_registry: tuple[str, DockerContainer], tmp_path: Path
) -> None:
    address, _ = open_registry
    built = _layout(tmp_path)
    first = registry.push_layout(built.path, f"{address}/factory/again")
    registry._KNOWN_BLOBS.clear()
    second = registry.push_layout(built.path, f"{address}/factory/again")
    assert first.bytes_uploaded > 0
    assert second.bytes_uploaded == 0
    assert second.blobs_skipped == 6 and second.blobs_uploaded == 0
    assert second.indexes == first.indexes


def test_blobs_are_mounted_across_repositories(
    open_registry: tuple[str, DockerContainer], tools: Tools, tmp_path: Path
) -> None:
    address, container = open_registry
    built = _layout(tmp_path)
    registry.push_layout(built.path, f"{address}/factory/source")
    registry._KNOWN_BLOBS.clear()
    mounted = registry.push_layout(
        built.path, f"{address}/factory/target", mount_from=["factory/source"]
    )
    assert mounted.blobs_mounted == 6
    assert mounted.bytes_uploaded == 0
    assert _sha256(_skopeo_raw(tools, f"{address}/factory/target:latest")) == built.index_digest
    logs = container.get_wrapped_container().logs().decode(errors="replace")
    assert re.search(r'"POST /v2/factory/target/blobs/uploads/\?[^"]*from=factory%2Fsource', logs)


def test_a_chunked_upload_is_served_back_intact(
    open_registry: tuple[str, DockerContainer], tools: Tools, tmp_path: Path
) -> None:
    address, container = open_registry
    built = _layout(tmp_path, payload_size=300_000)
    result = registry.push_layout(built.path, f"{address}/factory/big", chunk_size=64 << 10)
    assert result.bytes_uploaded == built.blob_bytes > 900_000
    logs = container.get_wrapped_container().logs().decode(errors="replace")
    assert logs.count('"PATCH /v2/factory/big/blobs/uploads/') >= 15
    copied = _skopeo_copy(tools, f"{address}/factory/big:latest", tmp_path / "copy")
    assert copied["manifests"][0]["digest"] == built.index_digest


def test_the_index_tag_is_written_after_every_manifest(
    open_registry: tuple[str, DockerContainer], tmp_path: Path
) -> None:
    address, container = open_registry
    built = _layout(tmp_path)
    registry.push_layout(built.path, f"{address}/factory/order")
    logs = container.get_wrapped_container().logs().decode(errors="replace")
    puts = re.findall(r'"PUT /v2/factory/order/(blobs/uploads/\S*|manifests/\S+) HTTP', logs)
    manifest_puts = [p.removeprefix("manifests/") for p in puts if p.startswith("manifests/")]
    assert manifest_puts[-1] == "latest", manifest_puts
    assert set(manifest_puts[:3]) == set(built.manifest_digests.values())
    first_manifest = next(i for i, p in enumerate(puts) if p.startswith("manifests/"))
    assert all(p.startswith("manifests/") for p in puts[first_manifest:]), "blobs first"
    after = logs[logs.index('"PUT /v2/factory/order/manifests/latest ') :]
    assert '"GET /v2/factory/order/manifests/latest ' in after, "verified after the push"


@pytest.fixture()
def tls_registry(registry_image: str, tools: Tools, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A registry serving HTTPS with a self-signed certificate for 127.0.0.1."""
    certs = tmp_path / "certs"
    certs.mkdir()
    tools.run(
        "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        "-keyout", str(certs / "key.pem"), "-out", str(certs / "cert.pem"),
        writable=[certs],
    )  # fmt: skip
    certs.chmod(0o755)
    for pem in certs.iterdir():
        pem.chmod(0o644)  # the registry runs as an unprivileged user
    container = (
        DockerContainer(registry_image)
        .with_exposed_ports(5000)
        .with_volume_mapping(str(certs), "/certs", "ro")
        .with_env("REGISTRY_HTTP_TLS_CERTIFICATE", "/certs/cert.pem")
        .with_env("REGISTRY_HTTP_TLS_KEY", "/certs/key.pem")
        .with_kwargs(labels=engine.labels(purpose="test-registry"))
    )
    with container:
        address = f"127.0.0.1:{container.get_exposed_port(5000)}"
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"https://{address}/v2/", verify=False, timeout=1)
                break
            except requests.RequestException:
                assert time.monotonic() < deadline, "the TLS registry did not answer"
                time.sleep(0.2)
        yield address, certs / "cert.pem"


def test_tls_is_verified_and_an_unknown_certificate_needs_insecure(
    tls_registry: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    address, cert = tls_registry
    built = _layout(tmp_path)
    with pytest.raises(RegistryError) as caught:
        registry.push_layout(built.path, f"{address}/factory/tls")
    assert f"TLS with {address} failed" in caught.value.message
    assert "--insecure" in str(caught.value)

    insecure = registry.push_layout(built.path, f"{address}/factory/tls", insecure=True)
    assert insecure.indexes[0].digest == built.index_digest

    # Trusted through the CA bundle requests uses: verified HTTPS, no --insecure.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    registry._KNOWN_BLOBS.clear()
    verified = registry.push_layout(built.path, f"{address}/factory/tls")
    assert verified.bytes_uploaded == 0 and verified.blobs_skipped == 6


def _docker_config(directory: Path, address: str, password: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    token = base64.b64encode(f"{USER}:{password}".encode()).decode()
    (directory / "config.json").write_text(json.dumps({"auths": {address: {"auth": token}}}))
    return directory


def test_an_htpasswd_registry_takes_a_push_with_docker_config_credentials(
    auth_registry: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = _layout(tmp_path)
    config = _docker_config(tmp_path / "docker", auth_registry, PASSWORD)
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    result = registry.push_layout(built.path, f"{auth_registry}/factory/private")
    assert result.indexes[0].digest == built.index_digest
    proc = _factory("inspect", f"{auth_registry}/factory/private", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["digest"] == built.index_digest


def test_an_htpasswd_registry_refuses_a_push_without_credentials(
    auth_registry: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = _layout(tmp_path)
    empty = tmp_path / "empty-docker-config"
    empty.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(empty))
    with pytest.raises(RegistryError) as caught:
        registry.push_layout(built.path, f"{auth_registry}/factory/private")
    assert caught.value.exit_code == ExitCode.REGISTRY
    assert int(caught.value.exit_code) == 6
    assert "requires authentication" in caught.value.message
    assert f"docker login {auth_registry}" in str(caught.value)
    proc = _factory("inspect", f"{auth_registry}/factory/private")
    assert proc.returncode == 6
    assert "requires authentication" in proc.stderr and "Traceback" not in proc.stderr


def test_wrong_credentials_are_refused_and_not_shown(
    auth_registry: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = _layout(tmp_path)
    config = _docker_config(tmp_path / "docker", auth_registry, "not-the-password")
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    with pytest.raises(RegistryError) as caught:
        registry.push_layout(built.path, f"{auth_registry}/factory/private")
    assert "refused the credentials" in caught.value.message
    assert "not-the-password" not in str(caught.value)


def test_a_push_to_a_silent_loopback_port_starts_the_local_registry(
    tools: Tools, tmp_path: Path
) -> None:
    port = _free_port()
    repository = f"127.0.0.1:{port}/factory/local"
    name = local_registry.container_name(port)
    try:
        said: list[str] = []
        assert local_registry.ensure_local_registry(repository, log=said.append)
        assert "nothing answers" in said[0] and f"{name} answers" in said[-1]
        assert not local_registry.ensure_local_registry(repository, log=said.append)
        built = _layout(tmp_path)
        registry.push_layout(built.path, repository)

        status = _factory("registry", "status", "--json")
        assert status.returncode == 0, status.stderr
        mine = next(s for s in json.loads(status.stdout) if s["name"] == name)
        assert mine["state"] == "running" and mine["answers"] is True
        assert mine["address"] == f"127.0.0.1:{port}"

        # stop keeps the volume: after a restart the image is still there.
        stopped = _factory("registry", "stop", "--port", str(port), "--json")
        assert stopped.returncode == 0 and json.loads(stopped.stdout)["stopped"] is True
        assert not local_registry.answers(f"127.0.0.1:{port}")
        started = _factory("registry", "start", "--port", str(port))
        assert started.returncode == 0, started.stderr
        assert _sha256(_skopeo_raw(tools, f"{repository}:latest")) == built.index_digest
        labels = engine.client().containers.get(name).labels
        assert labels[engine.LABEL] == "true"
    finally:
        client = engine.client()
        local_registry.stop(client, port=port)
        try:
            client.volumes.get(name).remove(force=True)
        except Exception as exc:  # pragma: no cover - report, do not hide the test's own failure
            print(f"could not remove volume {name}: {exc}")
