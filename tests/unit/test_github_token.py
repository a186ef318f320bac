"""GitHub Actions' GITHUB_TOKEN, end to end through the CLI: `factory image --push` to ghcr.io
sends it (as GITHUB_ACTOR's password, to the token service) and to no other registry, and it
shows nowhere at -vv --debug. No network: ghcr.io is an in-process Bearer-token registry
reached through HTTP_PROXY (with --insecure, so after HTTPS fails factory speaks plain HTTP to
the proxy, which is what lets a test stand in for ghcr.io)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fake_http import Reply, Request, Server, serve
from tests.fake_registry import FakeRegistry
from tests.imagekit import make_project

ACTOR = "octocat"


@pytest.fixture
def canary() -> str:
    return f"ghs_canary{uuid.uuid4().hex}"


@pytest.fixture
def proxy(canary: str) -> Iterator[Server]:
    """Every host behind it is one registry whose token service takes ACTOR:canary only."""
    registry = FakeRegistry()
    good = "Basic " + base64.b64encode(f"{ACTOR}:{canary}".encode()).decode()

    def handler(request: Request) -> Reply:
        host = request.headers.get("host", "")
        if request.path == "/token":
            if request.headers.get("authorization") != good:
                return Reply(status=401, body=b'{"errors":[{"code":"UNAUTHORIZED"}]}')
            return Reply(status=200, body=json.dumps({"token": f"tok-{host}"}).encode())
        if request.headers.get("authorization") == f"Bearer tok-{host}":
            return registry(request)
        challenge = f'Bearer realm="http://{host}/token",service="{host}"'
        return Reply(status=401, headers={"WWW-Authenticate": challenge})

    with serve(handler) as server:
        yield server


def _push(tmp_path: Path, proxy: Server, repository: str, **variables: str) -> tuple[int, str]:
    """`factory -vv --debug image --push` of a small project to ``repository``; exit code and
    everything it printed."""
    project = make_project(tmp_path / uuid.uuid4().hex, ("amd64",))
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FACTORY_REGISTRY_", "DOCKER_", "GITHUB_"))
        and k.lower() not in ("no_proxy", "http_proxy", "https_proxy", "all_proxy")
    }
    (tmp_path / "docker").mkdir(exist_ok=True)
    env |= {
        "DOCKER_CONFIG": str(tmp_path / "docker"),
        "HTTP_PROXY": proxy.url,
        "HTTPS_PROXY": proxy.url,
        "SOURCE_DATE_EPOCH": "1700000000",
        "COLUMNS": "1000",
        **variables,
    }
    argv = [sys.executable, "-m", "factory", "-vv", "--debug", "image", "--no-build", "--insecure"]
    argv += ["-C", str(project.root / "images.toml"), "--push", "--no-sbom"]
    proc = subprocess.run(
        [*argv, "--registry", repository], capture_output=True, text=True, env=env, timeout=120
    )
    return proc.returncode, proc.stdout + proc.stderr


def _needles(token: str) -> list[str]:
    pair = f"{ACTOR}:{token}".encode()
    return [token, base64.b64encode(pair).decode(), base64.urlsafe_b64encode(pair).decode()]


def test_github_token_pushes_to_ghcr_and_shows_nowhere(
    tmp_path: Path, proxy: Server, canary: str
) -> None:
    code, said = _push(tmp_path, proxy, "ghcr.io/octo", GITHUB_TOKEN=canary, GITHUB_ACTOR=ACTOR)
    assert code == 0, said
    tokens = [r for r in proxy.requests if r.path == "/token"]
    assert tokens and all(r.headers["host"] == "ghcr.io" for r in tokens)
    assert any(r.method == "PUT" and r.path.endswith("/manifests/latest") for r in proxy.requests)
    assert "blob" in said  # -vv logged each request
    for needle in _needles(canary):
        assert needle not in said


def test_github_token_is_not_sent_to_another_registry(
    tmp_path: Path, proxy: Server, canary: str
) -> None:
    code, said = _push(
        tmp_path, proxy, "registry.example/octo", GITHUB_TOKEN=canary, GITHUB_ACTOR=ACTOR
    )
    assert code == 6, said
    assert "requires authentication" in said and "Traceback" in said  # --debug: all shown
    sent = [v for r in proxy.requests for k, v in r.headers.items() if k == "authorization"]
    assert not any(n in header for n in _needles(canary) for header in sent)
    for needle in _needles(canary):
        assert needle not in said


def test_github_token_without_github_actor_is_not_used_and_the_error_says_so(
    tmp_path: Path, proxy: Server, canary: str
) -> None:
    code, said = _push(tmp_path, proxy, "ghcr.io/octo", GITHUB_TOKEN=canary)
    assert code == 6, said
    assert "GITHUB_ACTOR" in said and "not used" in said
    assert all("authorization" not in r.headers for r in proxy.requests if r.path == "/token")
    for needle in _needles(canary):
        assert needle not in said
