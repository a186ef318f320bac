"""A canary registry password, given through a Docker config or the environment, leaks nowhere:
not in stdout or stderr at -vv --debug (success and failure), not in any process's arguments
during the push, not in any file under dist/ (OCI layout blobs, gzip layers unpacked, the SBOM,
report.json). A canary GITHUB_TOKEN in the environment (sent to ghcr.io only, so unused here)
leaks nowhere either."""

from __future__ import annotations

import base64
import gzip
import json
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from tests.imagekit import make_project
from tests.integration.registry_kit import local_htpasswd

USER = "ci-user"


def _needles(password: str) -> list[bytes]:
    pair = f"{USER}:{password}".encode()
    return [password.encode(), base64.b64encode(pair), base64.urlsafe_b64encode(pair)]


def _environment(
    tmp_path: Path, source: str, address: str, password: str, github_token: str
) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FACTORY_REGISTRY_", "DOCKER_", "GITHUB_"))
    }
    env["SOURCE_DATE_EPOCH"] = "1700000000"
    env["GITHUB_TOKEN"], env["GITHUB_ACTOR"] = github_token, USER
    docker_config = tmp_path / f"docker-{source}"
    docker_config.mkdir(parents=True)
    env["DOCKER_CONFIG"] = str(docker_config)
    if source == "docker config":
        token = base64.b64encode(f"{USER}:{password}".encode()).decode()
        (docker_config / "config.json").write_text(
            json.dumps({"auths": {address: {"auth": token}}})
        )
    else:
        env["FACTORY_REGISTRY_USERNAME"] = USER
        env["FACTORY_REGISTRY_PASSWORD"] = password
    return env


def _process_arguments() -> list[bytes]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                found.append((entry / "cmdline").read_bytes())
            except OSError:
                continue
    return found


def _run_watched(
    argv: list[str], env: dict[str, str], needles: list[bytes]
) -> tuple[int, str, str, int]:
    """Run ``argv``; while it runs, read every process's arguments for each of ``needles``.
    Returns the exit code, stdout, stderr and how many scans of /proc were made."""
    hits: list[bytes] = []
    scans = 0
    done = threading.Event()

    def watch() -> None:
        nonlocal scans
        while not done.is_set():
            hits.extend(a for a in _process_arguments() if any(n in a for n in needles))
            scans += 1
            done.wait(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    finally:
        done.set()
        watcher.join(timeout=10)
    assert not hits, f"a process's arguments hold the password: {hits[0][:200]!r}"
    return proc.returncode, proc.stdout, proc.stderr, scans


def _files_holding(root: Path, needles: list[bytes]) -> list[str]:
    holding = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data += gzip.decompress(data)
        if any(n in data for n in needles):
            holding.append(str(path))
    return holding


@pytest.mark.parametrize("source", ["docker config", "environment"])
def test_a_canary_password_leaks_nowhere(tmp_path: Path, source: str) -> None:
    canary = f"canary-{uuid.uuid4().hex}"
    github_token = f"ghs_canary{uuid.uuid4().hex}"
    needles = [*_needles(canary), *_needles(github_token)]
    with local_htpasswd(tmp_path, USER, canary) as registry:
        project = make_project(tmp_path / "p", ("amd64", "arm64"))
        env = _environment(tmp_path, source, registry.address, canary, github_token)
        argv = [sys.executable, "-m", "factory", "-vv", "--debug", "--json", "image", "--no-build"]
        argv += ["-C", str(project.root / "images.toml"), "--push"]
        argv += ["--registry", f"{registry.address}/secret"]
        code, out, err, scans = _run_watched(argv, env, [canary.encode(), github_token.encode()])
        assert code == 0, err
        assert scans > 3
        assert json.loads(out)["pushed"][0]["bytes_uploaded"] > 0
        assert "blob" in err  # -vv really logged each request
        for needle in needles:
            assert needle.decode() not in out + err
        assert _files_holding(project.dist, needles) == []
        assert (project.dist / "report.json").is_file()
        assert any(project.dist.rglob("blobs/sha256/*"))

        # refused: a wrong password (a second canary) with tracebacks on
        wrong = f"canary-{uuid.uuid4().hex}"
        env = _environment(tmp_path / "wrong", source, registry.address, wrong, github_token)
        code, out, err, _ = _run_watched(argv, env, [wrong.encode(), github_token.encode()])
        assert code == 6, err
        assert "refused the credentials" in err
        for needle in [*_needles(wrong), *_needles(github_token)]:
            assert needle.decode() not in out + err
