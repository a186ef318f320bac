"""Registry credentials in factory's environment never reach a builder container's environment:
the drivers pass an allow-list (proxy variables, CA path, Cargo settings), nothing else."""

from __future__ import annotations

import pytest

from factory.build import vendor
from factory.build.cargo_invocation import build_environment
from factory.model import targets

CANARY = "canary-builder-env-5f1e"


@pytest.fixture(autouse=True)
def _secrets_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACTORY_REGISTRY_USERNAME", "ci")
    monkeypatch.setenv("FACTORY_REGISTRY_PASSWORD", CANARY)
    monkeypatch.setenv("COSIGN_PASSWORD", CANARY)
    monkeypatch.setenv("DOCKER_CONFIG", f"/tmp/{CANARY}")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")


def _clean(environment: dict[str, str]) -> None:
    assert not [k for k, v in environment.items() if CANARY in v or CANARY in k]


def test_the_fetch_container_gets_proxies_but_no_secret() -> None:
    environment = vendor.fetch_environment()
    assert environment["HTTPS_PROXY"] == "http://proxy.invalid:3128"
    _clean(environment)


@pytest.mark.parametrize("target", ["amd64", "arm64_v9a"])
def test_the_compile_environment_holds_no_secret(target: str) -> None:
    environment = build_environment(targets.get(target), "opt")
    assert environment
    _clean(environment)
