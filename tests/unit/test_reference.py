"""Image references."""

from __future__ import annotations

import pytest

from factory.distribution import reference
from factory.errors import UsageError


def test_a_local_registry_reference() -> None:
    ref = reference.parse("127.0.0.1:5000/factory/hello:latest-amd64-v3")
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (
        "127.0.0.1:5000",
        "factory/hello",
        "latest-amd64-v3",
        None,
    )
    assert ref.api_host == "127.0.0.1:5000"


def test_defaults_and_docker_hub() -> None:
    ref = reference.parse("hello")
    assert str(ref) == "docker.io/library/hello:latest"
    assert ref.api_host == "registry-1.docker.io"
    assert reference.parse("localhost/x").registry == "localhost"


def test_a_digest_is_preferred_to_a_tag() -> None:
    digest = "sha256:" + "ab" * 32
    ref = reference.parse(f"reg.example/a/b:v1@{digest}")
    assert ref.target == digest and ref.tag == "v1"


@pytest.mark.parametrize("text", ["Reg/UPPER", "reg.example/a:bad tag", "x@sha256:zz", ""])
def test_bad_references_say_how_to_write_one(text: str) -> None:
    with pytest.raises(UsageError, match="is not an image reference"):
        reference.parse(text)


def test_a_destination_repository_has_no_tag() -> None:
    assert reference.repository("127.0.0.1:5000/factory/hello").tag is None
    with pytest.raises(UsageError, match="--tag"):
        reference.repository("127.0.0.1:5000/factory/hello:v1")
