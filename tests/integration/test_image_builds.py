"""Builds from a Dockerfile leave no untagged image behind, in the real engine.

A tiny Dockerfile on the bootstrapped Debian base stands in for the 3 GB builder: the same
`images.build` makes the builder, its Bazel stage and the local registry's image. Each test's
images carry a label of their own, so builds by anything else sharing the engine do not count.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from factory.engine import docker_engine as engine
from factory.engine import images
from factory.engine.bootstrap import resolve_base
from factory.errors import EngineError

MESSAGES = images.Messages(what="test", hint="Fix the test Dockerfile.", step_prefix="test")


@pytest.fixture
def client() -> docker.DockerClient:
    return engine.client()


@pytest.fixture
def token() -> str:
    return uuid.uuid4().hex[:12]


@pytest.fixture
def tag(client: docker.DockerClient, token: str) -> Iterator[str]:
    name = f"factory-test/images:{token}"
    yield name
    for image in client.images.list(filters={"label": f"org.factory.test={token}"}):
        with contextlib.suppress(docker.errors.APIError):  # gone already, with its child
            client.images.remove(image.id, force=True)


def _dangling(client: docker.DockerClient, token: str) -> list[str]:
    """`docker images -q -f dangling=true -f label=org.factory.managed=true`, this test's only."""
    found = client.images.list(
        filters={
            "dangling": True,
            "label": [f"{engine.LABEL}=true", f"org.factory.test={token}"],
        }
    )
    return [str(image.id) for image in found]


def _context(tmp_path: Path, token: str, *steps: str) -> images.BuildContext:
    dockerfile = tmp_path / "tiny.Dockerfile"
    dockerfile.write_text(
        "ARG BASE\nFROM ${BASE}\n"
        f"LABEL {engine.LABEL}=true org.factory.test={token}\n" + "".join(f"{s}\n" for s in steps)
    )
    return images.load_context(dockerfile)


def _build(
    client: docker.DockerClient, context: images.BuildContext, tag: str, *, rebuild: bool = False
) -> images.Found:
    base = resolve_base(client, "debian:trixie-slim", log=lambda _: None)
    return images.build(
        client,
        context,
        tag=tag,
        buildargs={"BASE": base},
        image_labels=engine.labels(role="images-test"),
        messages=MESSAGES,
        rebuild=rebuild,
        progress=lambda _: None,
        detail=lambda _: None,
    )


def test_a_failed_build_leaves_no_dangling_image(
    client: docker.DockerClient, tmp_path: Path, token: str, tag: str
) -> None:
    context = _context(tmp_path, token, f"RUN echo {token} > /one", "RUN exit 3")
    with pytest.raises(EngineError) as caught:
        _build(client, context, tag)
    assert "Building the test image" in str(caught.value)
    assert _dangling(client, token) == []
    assert images.find(client, tag) is None


def test_a_rebuild_under_the_same_tag_leaves_no_dangling_image(
    client: docker.DockerClient, tmp_path: Path, token: str, tag: str
) -> None:
    context = _context(tmp_path, token, f"RUN echo {token} > /one")
    first = _build(client, context, tag)
    assert _build(client, context, tag).id == first.id  # present: reused, not built again
    second = _build(client, context, tag, rebuild=True)
    assert second.id != first.id
    assert _dangling(client, token) == []
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get(first.id)
