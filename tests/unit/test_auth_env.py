"""Registry credentials from FACTORY_REGISTRY_USERNAME/PASSWORD (CI without `docker login`)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from factory.distribution import auth
from factory.errors import RegistryError

ENV = {"FACTORY_REGISTRY_USERNAME": "ci", "FACTORY_REGISTRY_PASSWORD": "env-secret"}


def _config(tmp_path: Path) -> Path:
    token = base64.b64encode(b"ann:file-secret").decode()
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"auths": {"reg.example": {"auth": token}}}))
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
