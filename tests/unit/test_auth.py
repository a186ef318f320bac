"""Credentials from the Docker client configuration: auths, credsStore, credHelpers."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from factory.distribution import auth
from factory.errors import RegistryError


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _config(tmp_path: Path, document: object) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(document))
    return path


def _no_helper(name: str, server: str) -> auth.Credentials | None:
    raise AssertionError(f"no helper expected, asked {name} about {server}")


def test_the_config_file_follows_docker_config_then_home() -> None:
    assert auth.config_path({"DOCKER_CONFIG": "/d"}) == Path("/d/config.json")
    assert auth.config_path({"HOME": "/home/ann"}) == Path("/home/ann/.docker/config.json")


@pytest.mark.parametrize(
    "key", ["reg.example:5000", "https://reg.example:5000", "http://reg.example:5000/v1/"]
)
def test_auths_entries_are_matched_by_host_whatever_their_form(tmp_path: Path, key: str) -> None:
    path = _config(tmp_path, {"auths": {key: {"auth": _b64("ann:pa:ss")}}})
    found = auth.lookup("reg.example:5000", path=path, helper=_no_helper)
    assert found is not None
    assert (found.username, found.password) == ("ann", "pa:ss")
    assert "auths" in found.source


def test_docker_hub_aliases_share_one_entry(tmp_path: Path) -> None:
    path = _config(tmp_path, {"auths": {"https://index.docker.io/v1/": {"auth": _b64("a:b")}}})
    assert auth.lookup("registry-1.docker.io", path=path, helper=_no_helper) is not None
    assert auth.lookup("docker.io", path=path, helper=_no_helper) is not None


def test_an_identity_token_is_kept_as_such(tmp_path: Path) -> None:
    path = _config(tmp_path, {"auths": {"reg.example": {"identitytoken": "idt"}}})
    found = auth.lookup("reg.example", path=path, helper=_no_helper)
    assert found is not None and found.identity_token == "idt" and not found.username


def test_no_file_and_no_entry_mean_no_credentials(tmp_path: Path) -> None:
    assert auth.lookup("reg.example", path=tmp_path / "absent.json", helper=_no_helper) is None
    path = _config(tmp_path, {"auths": {"other.example": {"auth": _b64("a:b")}}})
    assert auth.lookup("reg.example", path=path, helper=_no_helper) is None


def test_a_broken_auth_value_names_the_entry_and_file(tmp_path: Path) -> None:
    path = _config(tmp_path, {"auths": {"reg.example": {"auth": "%%%"}}})
    with pytest.raises(RegistryError) as caught:
        auth.lookup("reg.example", path=path, helper=_no_helper)
    assert "auths['reg.example']" in caught.value.message
    assert str(path) in caught.value.message


def test_invalid_json_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{\n  "auths": {,}\n}')
    with pytest.raises(RegistryError, match=r"config.json is not valid JSON \(line 2"):
        auth.lookup("reg.example", path=path)


def test_cred_helpers_win_over_creds_store_and_auths(tmp_path: Path) -> None:
    asked: list[tuple[str, str]] = []

    def helper(name: str, server: str) -> auth.Credentials | None:
        asked.append((name, server))
        return auth.Credentials(username=name, password="x", source=name)

    path = _config(
        tmp_path,
        {
            "credsStore": "store",
            "credHelpers": {"reg.example": "special"},
            "auths": {"reg.example": {"auth": _b64("a:b")}},
        },
    )
    found = auth.lookup("reg.example", path=path, helper=helper)
    assert found is not None and found.username == "special"
    assert asked == [("special", "reg.example")]


def test_the_creds_store_falls_back_to_auths_when_it_knows_nothing(tmp_path: Path) -> None:
    path = _config(
        tmp_path, {"credsStore": "store", "auths": {"reg.example": {"auth": _b64("a:b")}}}
    )
    found = auth.lookup("reg.example", path=path, helper=lambda name, server: None)
    assert found is not None and found.username == "a"


def _write_helper(directory: Path, name: str, script: str) -> None:
    path = directory / f"docker-credential-{name}"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_a_real_helper_program_gets_the_server_on_stdin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_helper(
        tmp_path,
        "fake",
        f'[ "$1" = get ] || exit 3\ncat > {tmp_path}/asked\n'
        'echo \'{"ServerURL": "x", "Username": "ann", "Secret": "s3"}\'\n',
    )
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    found = auth.run_helper("fake", "reg.example:5000")
    assert found is not None
    assert (found.username, found.password, found.source) == ("ann", "s3", "docker-credential-fake")
    assert (tmp_path / "asked").read_text() == "reg.example:5000"


def test_a_helper_token_user_means_an_identity_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_helper(tmp_path, "tok", 'echo \'{"Username": "<token>", "Secret": "refresh"}\'\n')
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    found = auth.run_helper("tok", "reg.example")
    assert found is not None and found.identity_token == "refresh"


def test_a_helper_that_knows_nothing_is_no_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_helper(tmp_path, "empty", "echo 'credentials not found in native keychain'; exit 1\n")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert auth.run_helper("empty", "reg.example") is None


def test_a_failing_or_missing_helper_is_a_registry_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_helper(tmp_path, "broken", "echo 'store locked' >&2; exit 2\n")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(RegistryError, match="store locked"):
        auth.run_helper("broken", "reg.example")
    with pytest.raises(RegistryError, match="docker-credential-nope is not on PATH"):
        auth.run_helper("nope", "reg.example")


def test_secrets_stay_out_of_repr() -> None:
    creds = auth.Credentials(username="ann", password="p4ss", identity_token="t0k", source="s")
    assert "p4ss" not in repr(creds) and "t0k" not in repr(creds)
