"""A registry password never shows in the output of a failed credential lookup or login, at
-vv --debug, where the traceback shows every kept cause: a credential helper that refuses (and
one that answers garbage), a malformed config.json, an `auth` that is not UTF-8 and a 401 from
the registry. No Docker engine: `factory inspect` against an in-process registry that answers
every request with a Basic challenge."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fake_http import Reply, Request, Server, serve

USER = "ci-user"


def _challenge(_: Request) -> Reply:
    return Reply(status=401, headers={"WWW-Authenticate": 'Basic realm="factory-test"'})


@pytest.fixture
def registry() -> Iterator[Server]:
    with serve(_challenge) as server:
        yield server


@pytest.fixture
def canary() -> str:
    return f"canary-{uuid.uuid4().hex}"


def _needles(password: str) -> list[str]:
    pair = f"{USER}:{password}".encode()
    return [password, base64.b64encode(pair).decode(), base64.urlsafe_b64encode(pair).decode()]


def _helper(bin_dir: Path, name: str, script: str) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / f"docker-credential-{name}"
    path.write_text(f"#!/bin/sh\ncat >/dev/null\n{script}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def _inspect(tmp_path: Path, address: str, config: str) -> tuple[int, str, str]:
    """`factory -vv --debug inspect` of a tag on ``address`` with ``config`` as config.json."""
    docker_config = tmp_path / "docker"
    docker_config.mkdir(exist_ok=True)
    (docker_config / "config.json").write_text(config)
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("FACTORY_REGISTRY_", "DOCKER_"))
    }
    env["DOCKER_CONFIG"] = str(docker_config)
    env["PATH"] = f"{tmp_path / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["COLUMNS"] = "1000"  # no line wrapped in the middle of a leaked secret
    argv = [sys.executable, "-m", "factory", "-vv", "--debug", "inspect"]
    proc = subprocess.run(
        [*argv, f"{address}/secret:v1"], capture_output=True, text=True, env=env, timeout=120
    )
    return proc.returncode, proc.stdout, proc.stderr


def _assert_hidden(password: str, out: str, err: str) -> None:
    for needle in _needles(password):
        assert needle not in out + err


def test_a_refusing_credential_helper_does_not_show_the_secret_it_printed(
    tmp_path: Path, registry: Server, canary: str
) -> None:
    answer = json.dumps({"Username": USER, "Secret": canary})
    _helper(tmp_path / "bin", "locked", f"echo '{answer}'; echo 'the store is locked' >&2; exit 1")
    config = json.dumps({"credHelpers": {registry.address: "locked"}})
    code, out, err = _inspect(tmp_path, registry.address, config)
    assert code == 6, err
    assert "docker-credential-locked get failed" in err
    assert "the store is locked" in err
    _assert_hidden(canary, out, err)


def test_a_credential_helper_answering_garbage_shows_the_cause_not_the_secret(
    tmp_path: Path, registry: Server, canary: str
) -> None:
    _helper(tmp_path / "bin", "odd", f"echo 'Secret={canary}'")
    config = json.dumps({"credHelpers": {registry.address: "odd"}})
    code, out, err = _inspect(tmp_path, registry.address, config)
    assert code == 6, err
    assert "JSONDecodeError" in err and "direct cause" in err
    _assert_hidden(canary, out, err)


def test_a_malformed_config_json_shows_the_cause_not_the_secret(
    tmp_path: Path, registry: Server, canary: str
) -> None:
    token = base64.b64encode(f"{USER}:{canary}".encode()).decode()
    config = json.dumps({"auths": {registry.address: {"auth": token}}})[:-1] + ",}"
    code, out, err = _inspect(tmp_path, registry.address, config)
    assert code == 6, err
    assert "is not valid JSON" in err
    assert "JSONDecodeError" in err and "direct cause" in err
    _assert_hidden(canary, out, err)


def test_an_auth_that_is_not_utf8_keeps_a_cause_without_its_bytes(
    tmp_path: Path, registry: Server, canary: str
) -> None:
    token = base64.b64encode(f"{USER}:{canary}".encode() + b"\xff\xfe").decode()
    config = json.dumps({"auths": {registry.address: {"auth": token}}})
    code, out, err = _inspect(tmp_path, registry.address, config)
    assert code == 6, err
    assert "is not base64 of `user:password`" in err
    assert "not UTF-8" in err and "direct cause" in err
    assert "0xff" not in err
    _assert_hidden(canary, out, err)


def test_a_401_from_the_registry_does_not_show_the_credentials(
    tmp_path: Path, registry: Server, canary: str
) -> None:
    token = base64.b64encode(f"{USER}:{canary}".encode()).decode()
    config = json.dumps({"auths": {registry.address: {"auth": token}}})
    code, out, err = _inspect(tmp_path, registry.address, config)
    assert code == 6, err
    assert "refused the credentials" in err
    assert "Traceback" in err
    sent = [r.headers.get("authorization", "") for r in registry.requests]
    assert any(token in header for header in sent), "the credentials were really sent"
    _assert_hidden(canary, out, err)
