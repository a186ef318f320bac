"""The whole pipeline against a "remote" engine: this host's, reached over TCP on loopback
through tests/engine_proxy.py, which refuses every container that mounts a host path. A bind
mount anywhere in factory (workspace, CA bundle, smoke runs, cargo metadata) makes the run fail
here, and the first test proves the proxy can refuse one.
"""

from __future__ import annotations

import json
import os
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

from factory.engine.builder import BuilderImage
from tests import engine_proxy
from tests.conftest import ROOT
from tests.integration.test_main_job import GREETING, write_config

TARGETS = ("amd64", "arm64")
PLAIN_TCP = "is plain TCP: anyone who can reach that port has root"


@pytest.fixture(scope="module")
def proxy() -> Iterator[engine_proxy.EngineProxy]:
    with engine_proxy.running() as running:
        yield running


def factory(
    proxy: engine_proxy.EngineProxy | str,
    cwd: Path,
    *args: str,
    env: dict[str, str | None] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`factory ARGS` with DOCKER_HOST at the proxy (or the URL given); ``env`` sets variables,
    or unsets those given as None."""
    url = proxy if isinstance(proxy, str) else proxy.url
    merged: dict[str, str | None] = {**os.environ, "DOCKER_HOST": url}
    merged.update({"FACTORY_REMOTE_ENGINE": None, **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "factory", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        env={name: value for name, value in merged.items() if value is not None},
    )


def test_the_proxy_refuses_a_bind_mount_and_relays_exec(
    factory_builder: BuilderImage, tmp_path: Path
) -> None:
    with engine_proxy.running() as proxy:
        _refuses_binds_and_relays_exec(proxy, factory_builder, tmp_path)
    assert [c.refused is not None for c in proxy.creates] == [True, True, False]


def _refuses_binds_and_relays_exec(
    proxy: engine_proxy.EngineProxy, factory_builder: BuilderImage, tmp_path: Path
) -> None:
    client = docker.DockerClient(base_url=proxy.url, timeout=120)
    for kwargs in (
        {"volumes": {str(tmp_path): {"bind": "/x", "mode": "ro"}}},
        {"mounts": [docker.types.Mount(target="/x", source=str(tmp_path), type="bind")]},
    ):
        with pytest.raises(docker.errors.APIError) as refused:
            client.containers.create(factory_builder.tag, ["true"], **kwargs)
        assert refused.value.status_code == 403
        assert "mounts host paths" in str(refused.value.explanation)
    box = client.containers.create(
        factory_builder.tag, ["sleep", "60"], labels={"org.factory.managed": "true"}
    )
    try:
        box.start()
        ran = box.exec_run(["sh", "-c", "echo out; echo err >&2"], demux=True)
        assert (ran.exit_code, ran.output) == (0, (b"out\n", b"err\n"))
    finally:
        box.remove(force=True)


@pytest.fixture(scope="module")
def remote_run(
    proxy: engine_proxy.EngineProxy,
    factory_builder: BuilderImage,
    tmp_path_factory: pytest.TempPathFactory,
    registry_image: str,
) -> Iterator[tuple[subprocess.CompletedProcess[str], Path, str]]:
    from tests.integration.conftest import running_registry

    root = tmp_path_factory.mktemp("remote")
    config = write_config(root, ROOT / "examples" / "hello_world", TARGETS)
    registry: DockerContainer
    with running_registry(registry_image) as (address, registry):
        done = factory(
            proxy, root, "-C", str(config), "--json", "image", "--push", "--load",
            "--registry", f"{address}/remote",
        )  # fmt: skip
        yield done, config, address
        assert registry is not None
    client = docker.from_env()
    for image in client.images.list(name=f"{address}/remote/hello-world"):
        client.images.remove(image.id, force=True)


def test_the_pipeline_runs_on_a_remote_engine_without_host_mounts(
    remote_run: tuple[subprocess.CompletedProcess[str], Path, str],
    proxy: engine_proxy.EngineProxy,
) -> None:
    done, config, _ = remote_run
    assert done.returncode == 0, done.stderr
    assert PLAIN_TCP in done.stderr
    assert "engine: remote; uploaded hello_world:" in done.stderr
    assert proxy.refused() == []
    kinds = {kind for create in proxy.creates for kind, _ in create.mounts}
    assert kinds <= {"volume"}, proxy.creates
    document: dict[str, Any] = json.loads(done.stdout)
    assert set(document["stages"]["built"]) == {f"hello-world/{t}" for t in TARGETS}
    for target in TARGETS:
        binary = config.parent / "dist" / "bin" / "hello-world" / target / "hello_world"
        assert binary.stat().st_size > 100_000
    report = json.loads((config.parent / "dist" / "report.json").read_text())
    assert [r["smoke"]["status"] for r in report["results"]] == ["passed", "passed"], report


def test_the_upload_volume_is_gone_and_load_reached_the_engine(
    remote_run: tuple[subprocess.CompletedProcess[str], Path, str],
) -> None:
    done, _, address = remote_run
    assert done.returncode == 0, done.stderr
    client = docker.from_env()
    left = [v.name for v in client.volumes.list() if v.name.startswith("factory-upload-")]
    assert left == []
    reference = f"{address}/remote/hello-world:latest"
    image = client.images.get(reference)  # loaded, not pulled: nothing here pulls it
    assert image.attrs["Architecture"] == "amd64"
    assert bytes(client.containers.run(image.id, remove=True)).decode().strip() == GREETING


def test_factory_refuses_to_start_a_registry_the_push_could_not_reach(
    proxy: engine_proxy.EngineProxy, tmp_path: Path
) -> None:
    before = len(proxy.creates)
    done = factory(proxy, tmp_path, "registry", "start", "--port", "5999")
    assert done.returncode == 3, done.stderr
    assert "Starting factory's local registry on 127.0.0.1:5999 is not possible with a " \
        "remote engine" in " ".join(done.stderr.split())  # fmt: skip
    assert len(proxy.creates) == before


def test_doctor_fix_refuses_and_doctor_does_not_check_this_hosts_binfmt(
    proxy: engine_proxy.EngineProxy,
) -> None:
    fixed = factory(proxy, ROOT, "doctor", "--fix")
    assert fixed.returncode == 3, fixed.stderr
    assert "binfmt_misc is a setting of the kernel that runs the containers" in " ".join(
        fixed.stderr.split()
    )
    checked = factory(proxy, ROOT, "--json", "doctor")
    found = {c["check"]: c for c in json.loads(checked.stdout)}
    assert found["docker engine"]["status"] == "warn"
    assert "remote at tcp://127.0.0.1" in found["docker engine"]["detail"]
    assert found["binfmt_misc"]["detail"].startswith("not checked")


def test_cargo_metadata_runs_in_the_builder_on_an_uploaded_workspace(
    proxy: engine_proxy.EngineProxy, factory_builder: BuilderImage, tmp_path: Path
) -> None:
    workspace = tmp_path / "hello"
    shutil.copytree(ROOT / "examples" / "hello_world", workspace)
    no_cargo = os.pathsep.join(
        p for p in os.environ["PATH"].split(os.pathsep) if not (Path(p) / "cargo").exists()
    )
    done = factory(proxy, workspace, "init", env={"PATH": no_cargo})
    assert done.returncode == 0, done.stderr
    assert "no cargo on PATH" in done.stderr and "engine: remote; uploaded hello:" in done.stderr
    assert 'binary = "hello_world"' in (workspace / "images.toml").read_text()
    assert proxy.refused() == []


def test_a_tls_engine_with_a_client_certificate_builds_without_the_warning(
    remote_run: tuple[subprocess.CompletedProcess[str], Path, str],
    proxy: engine_proxy.EngineProxy,
    tmp_path: Path,
) -> None:
    _, config, _ = remote_run
    engine_proxy.write_certificates(tmp_path)
    tls = {"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(tmp_path)}
    bundles: dict[str, str | None] = {"REQUESTS_CA_BUNDLE": None, "CURL_CA_BUNDLE": None}
    with engine_proxy.tls_front(proxy.address, tmp_path) as url:
        done = factory(
            url, config.parent, "-C", str(config), "--json", "image", "--recompile",
            "-t", "amd64", env={**tls, **bundles},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "plain TCP" not in done.stderr
        assert "engine: remote; uploaded hello_world:" in done.stderr
        assert json.loads(done.stdout)["stages"]["built"] == ["hello-world/amd64"]
        foreign = factory(url, tmp_path, "--json", "doctor", env={**tls, **bundles,
                          "REQUESTS_CA_BUNDLE": str(tmp_path / "server-cert.pem")})  # fmt: skip
    found = {c["check"]: c for c in json.loads(foreign.stdout)}
    assert found["docker engine"]["status"] == "fail"
    assert "REQUESTS_CA_BUNDLE is set, and replaces DOCKER_CERT_PATH's ca.pem" in " ".join(
        found["docker engine"]["fix"].split()
    )
    assert proxy.refused() == []
