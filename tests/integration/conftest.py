"""Fixtures shared by the integration tests: a real registry in a testcontainers container.

The Ryuk reaper image cannot be pulled here, so Ryuk is off and every container is removed by
its context manager (and labelled org.factory.managed=true, so leftovers can be found).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from testcontainers.core.config import testcontainers_config
from testcontainers.core.container import DockerContainer

from factory import resources
from factory.engine import docker_engine as engine
from factory.engine import images, local_registry
from factory.engine.builder import BuilderImage, ensure_builder
from factory.model.config import DEFAULT_BASE
from tests.conftest import ROOT
from tests.testtools import Tools, ensure_image

testcontainers_config.ryuk_disabled = True
VALIDATE_FIXTURES = Path(__file__).parent / "validate_fixtures"


def dangling_managed_images() -> set[str]:
    """The untagged images that carry factory's label: what a failed or replaced build leaves."""
    found = engine.client().images.list(filters={"dangling": True, "label": engine.LABEL})
    return {image.id for image in found}


@pytest.fixture(scope="session", autouse=True)
def _no_dangling_managed_images() -> Iterator[None]:
    """The suite leaves no untagged factory image behind (a CI runner's disk is not free)."""
    before = dangling_managed_images()
    yield
    left = dangling_managed_images() - before
    assert not left, (
        f"the tests left {len(left)} untagged factory image(s) behind: {sorted(left)}; "
        "`docker history` of each names the build that committed it"
    )


@pytest.fixture(scope="session")
def tools(tmp_path_factory: pytest.TempPathFactory) -> Tools:
    """skopeo, umoci, oci-image-tool, gcc, musl-gcc and openssl, from the test-tools image."""
    client = engine.client()
    return Tools(client=client, image=ensure_image(client), compiled=tmp_path_factory.mktemp("cc"))


@pytest.fixture(scope="session")
def client() -> docker.DockerClient:
    return engine.client()


@pytest.fixture(scope="session")
def factory_builder(client: docker.DockerClient) -> BuilderImage:
    """factory's own builder on the default base: reused when present, else built (with the
    runtimes image it copies its C++ runtime from)."""
    return ensure_builder(client, dockerfile=resources.dockerfile("builder"), base=DEFAULT_BASE)


@pytest.fixture(scope="session")
def qemu_image(client: docker.DockerClient) -> str:
    """The validation test image (validate_fixtures/Dockerfile: qemu-user and C compilers for
    musl and glibc): reused while its Dockerfile and base are unchanged; built through factory's
    own image builds (one build per tag at a time, nothing left dangling)."""
    planned = images.identify(
        client,
        VALIDATE_FIXTURES / "Dockerfile",
        repository="factory-test/validate",
        base="debian:trixie-slim",
    )
    images.build(
        client,
        planned.context,
        tag=planned.tag,
        buildargs=planned.buildargs,
        image_labels=engine.labels(role="validate-test"),
        messages=images.Messages(
            what="validation test", hint="See the step's output above.", step_prefix="test image"
        ),
    )
    return planned.tag


@pytest.fixture(scope="session")
def fixtures(
    client: docker.DockerClient, qemu_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """Every fixture binary of validate_fixtures/make.sh, compiled in the test image into a host
    folder (used by test_validate.py and test_pagesize_e2e.py)."""
    out = tmp_path_factory.mktemp("validate-fixtures")
    client.containers.run(
        qemu_image,
        ["/src/make.sh", "/out"],
        volumes={
            str(VALIDATE_FIXTURES): {"bind": "/src", "mode": "ro"},
            str(out): {"bind": "/out", "mode": "rw"},
        },
        network_mode="none",
        labels=engine.labels(purpose="test-fixtures"),
        remove=True,
    )
    return out


@pytest.fixture(scope="module")
def registry_image() -> str:
    return local_registry.ensure_image(engine.client())


def wait_until_it_answers(address: str, container: DockerContainer) -> None:
    deadline = time.monotonic() + 30
    while not local_registry.answers(address, timeout=1.0):
        if time.monotonic() > deadline:
            logs = container.get_wrapped_container().logs().decode(errors="replace")
            raise AssertionError(f"the registry did not answer on {address}:\n{logs[-3000:]}")
        time.sleep(0.2)


@contextlib.contextmanager
def running_registry(registry_image: str) -> Iterator[tuple[str, DockerContainer]]:
    """A registry container (no auth) on a free loopback port: its address and container."""
    container = (
        DockerContainer(registry_image)
        .with_exposed_ports(5000)
        .with_kwargs(labels=engine.labels(purpose="test-registry"))
    )
    with container:
        address = f"127.0.0.1:{container.get_exposed_port(5000)}"
        wait_until_it_answers(address, container)
        yield address, container


@pytest.fixture()
def open_registry(registry_image: str) -> Iterator[tuple[str, DockerContainer]]:
    with running_registry(registry_image) as opened:
        yield opened


def doctor_fix() -> str:
    """`factory doctor --fix` (QEMU in binfmt_misc, so Docker runs the other architecture's
    images); its stderr, which names each handler it enabled."""
    fixed = subprocess.run(
        [sys.executable, "-m", "factory", "doctor", "--fix"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    return fixed.stderr
