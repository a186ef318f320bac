"""Registry credentials from FACTORY_REGISTRY_USERNAME/PASSWORD (CI without `docker login`)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from factory.distribution import auth
from factory.errors import RegistryError

ENV = {"FACTORY_REGISTRY_USERNAME": "ci", "FACTORY_REGISTRY_PASSWORD": "env-secret"}


def _config(tmp_path: Path, host: str = "reg.example", pair: bytes = b"ann:file-secret") -> Path:
    token = base64.b64encode(pair).decode()
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"auths": {host: {"auth": token}}}))
    return path


def test_the_environment_wins_over_the_docker_config(tmp_path: Path) -> None:
    found = auth.lookup("reg.example", path=_config(tmp_path), environ=ENV)
    assert found is not None
    assert (found.username, found.password) == ("ci", "env-secret")
    assert "FACTORY_REGISTRY_USERNAME" in found.source
    assert "env-secret" not in repr(found)


def test_without_the_variables_the_docker_config_answers(tmp_path: Path) -> None:
    found = auth.lookup("reg.example", path=_config(tmp_path), environ={})
    assert found is not None
    assert found.password == "file-secret"


def test_factory_registry_host_limits_them_to_one_registry(tmp_path: Path) -> None:
    env = {**ENV, "FACTORY_REGISTRY_HOST": "https://other.example:5000/"}
    found = auth.lookup("reg.example", path=_config(tmp_path), environ=env)
    assert found is not None and found.password == "file-secret"
    assert auth.from_environment("other.example:5000", env) is not None
    assert auth.from_environment("elsewhere.example", env) is None


@pytest.mark.parametrize("missing", ["FACTORY_REGISTRY_USERNAME", "FACTORY_REGISTRY_PASSWORD"])
def test_one_variable_without_the_other_is_an_error(missing: str) -> None:
    env = {k: v for k, v in ENV.items() if k != missing}
    with pytest.raises(RegistryError, match=f"{missing} is not"):
        auth.from_environment("reg.example", env)


GITHUB = {"GITHUB_TOKEN": "ghs-secret", "GITHUB_ACTOR": "octocat"}


def test_github_token_goes_to_ghcr_as_github_actor(tmp_path: Path) -> None:
    found = auth.lookup("ghcr.io", path=tmp_path / "none.json", environ=GITHUB)
    assert found is not None
    assert (found.username, found.password) == ("octocat", "ghs-secret")
    assert "GITHUB_TOKEN" in found.source
    assert "ghs-secret" not in repr(found)


@pytest.mark.parametrize(
    "host", ["docker.io", "127.0.0.1:5000", "ghcr.io.example", "ghcr.io:5000", "pkg.github.com"]
)
def test_github_token_goes_to_no_other_registry(tmp_path: Path, host: str) -> None:
    assert auth.lookup(host, path=tmp_path / "none.json", environ=GITHUB) is None


def test_factory_variables_win_over_github_token(tmp_path: Path) -> None:
    found = auth.lookup("ghcr.io", path=tmp_path / "none.json", environ={**GITHUB, **ENV})
    assert found is not None and found.password == "env-secret"
    # ...unless FACTORY_REGISTRY_HOST sends them elsewhere
    elsewhere = {**GITHUB, **ENV, "FACTORY_REGISTRY_HOST": "reg.example"}
    found = auth.lookup("ghcr.io", path=tmp_path / "none.json", environ=elsewhere)
    assert found is not None and found.password == "ghs-secret"


def test_a_docker_login_to_ghcr_wins_over_github_token(tmp_path: Path) -> None:
    found = auth.lookup(
        "ghcr.io", path=_config(tmp_path, "ghcr.io", b"pat-user:pat-secret"), environ=GITHUB
    )
    assert found is not None
    assert (found.username, found.password) == ("pat-user", "pat-secret")


def test_github_token_without_github_actor_is_not_used_and_says_why(tmp_path: Path) -> None:
    alone = {"GITHUB_TOKEN": "ghs-secret"}
    assert auth.lookup("ghcr.io", path=tmp_path / "none.json", environ=alone) is None
    said = auth.unused_github_token("ghcr.io", alone)
    assert "GITHUB_ACTOR" in said and "not used" in said and "ghs-secret" not in said
    assert auth.unused_github_token("ghcr.io", GITHUB) == ""
    assert auth.unused_github_token("reg.example", alone) == ""
