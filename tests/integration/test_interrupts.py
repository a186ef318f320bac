"""SIGINT and SIGTERM during `factory image --push`, and two runs on one workspace at once.

Real signals to a real `factory` process driving the real builder and registry. After every
interrupt: no container of that run is left, no half-written file is in dist/, the index tag
either does not exist or names manifests that all exist, and the next run succeeds.
"""

from __future__ import annotations

import json
import os
import random
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from factory.engine.docker_engine import LABEL
from tests.conftest import ROOT

REPOSITORY = "127.0.0.1:5000/interrupts"
TARGETS = ("amd64", "arm64")


def _project(tmp: Path) -> Path:
    """An images.toml of its own (so its own dist/) over the bundled example's workspace."""
    config = tmp / "images.toml"
    config.write_text(
        f"""
[workspace]
path = "{ROOT / "examples" / "hello_world"}"

[builder]
dockerfile = "{ROOT / "dockerfiles" / "builder.Dockerfile"}"

[registry]
repository = "{REPOSITORY}"

[[image]]
name = "hello-world"
binary = "hello_world"
targets = {json.dumps(list(TARGETS))}

[image.smoke]
stdout = '^Hello, world from Tokio: \\[1, 2, 3\\]'
"""
    )
    return config


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield _project(tmp_path_factory.mktemp("interrupts"))


def _containers() -> set[str]:
    """factory's containers, except the long-lived local registry."""
    client = docker.from_env()
    return {
        c.id
        for c in client.containers.list(all=True, filters={"label": f"{LABEL}=true"})
        if not c.name.startswith("factory-registry-")
    }


def _leftovers(dist: Path) -> list[Path]:
    if not dist.exists():
        return []
    return [p for p in dist.rglob("*") if p.name.endswith((".partial", ".tmp"))]


def _factory(config: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "factory", "-C", str(config), "image", "--push", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=config.parent,
    )


def _wait_for(proc: subprocess.Popen[str], marker: str, timeout: float = 900) -> str:
    """Read stderr until a line contains `marker`; returns what was read."""
    assert proc.stderr is not None
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stderr], [], [], 1.0)
        if not ready:
            if proc.poll() is not None:
                break
            continue
        line = proc.stderr.readline()
        if not line:
            break
        seen += line
        if marker in line:
            return seen
    raise AssertionError(f"never saw {marker!r}; stderr so far:\n{seen}")


def _interrupt(proc: subprocess.Popen[str], sig: signal.Signals, delay: float) -> tuple[int, str]:
    time.sleep(random.uniform(0.0, delay))
    if proc.poll() is None:
        proc.send_signal(sig)
    proc.wait(timeout=300)
    assert proc.stderr is not None
    return proc.returncode, proc.stderr.read()  # the rest, after what _wait_for read


def _check_registry_consistent() -> None:
    """The index tag is absent, or every manifest it names is in the registry."""
    proc = subprocess.run(
        [sys.executable, "-m", "factory", "--json", "inspect", f"{REPOSITORY}/hello-world:latest"],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:  # no index tag yet: fine, as long as it is a clean "not found"
        assert "Traceback" not in proc.stderr
        assert proc.returncode == 6, proc.stderr
        return
    # inspect GETs every manifest the index names: success means none is missing
    document = json.loads(proc.stdout)
    platforms = [m["platform"] for m in document["manifests"]]
    assert platforms == ["linux/amd64", "linux/arm64"], document


@pytest.mark.parametrize(
    ("stage", "marker", "sig"),
    [
        ("build", "build: hello-world", signal.SIGINT),
        ("validate", "validate: hello-world/", signal.SIGTERM),
        ("push", "pushing hello-world", signal.SIGINT),
        ("builder", "factory: using", signal.SIGTERM),
    ],
)
def test_an_interrupt_leaves_nothing_behind(
    project: Path, stage: str, marker: str, sig: signal.Signals
) -> None:
    dist = project.parent / "dist"
    before = _containers()
    args: list[str] = []
    if stage in ("build", "builder"):
        args = ["--recompile"]  # enough work after the marker for the signal to land mid-run
    if stage == "validate":
        (dist / "report.json").unlink(missing_ok=True)
    proc = _factory(project, *args)
    seen = _wait_for(proc, marker)
    # at the builder stage's first line, at once; elsewhere at a random point of the stage
    code, err = _interrupt(proc, sig, 0.0 if stage == "builder" else 0.8)
    err = seen + err
    if stage == "push":
        assert code in (0, 130), err  # the push may finish before the signal lands
    else:
        assert code == 130, err
        assert "interrupted" in err
    assert "Traceback" not in err
    assert _containers() <= before, "a container of the interrupted run is still there"
    assert _leftovers(dist) == []
    _check_registry_consistent()


def test_the_next_run_succeeds(project: Path) -> None:
    proc = _factory(project, "--json")
    out, err = proc.communicate(timeout=1800)
    assert proc.returncode == 0, err
    document = json.loads(out)
    assert [p["repository"] for p in document["pushed"]] == [f"{REPOSITORY}/hello-world"]
    assert _leftovers(project.parent / "dist") == []


def test_two_runs_at_once_wait_for_each_other(project: Path) -> None:
    first = _factory(project, "--recompile")
    _wait_for(first, "build: hello-world")
    second = _factory(project)
    _, second_err = second.communicate(timeout=1800)
    _, first_err = first.communicate(timeout=1800)
    assert first.returncode == 0, first_err
    assert second.returncode == 0, second_err
    assert "waiting for factory run (pid" in second_err
    assert f"pid {first.pid}" in second_err
    report = json.loads((project.parent / "dist" / "report.json").read_text())
    assert report["passed"] is True
    assert os.path.exists(project.parent / "dist" / "oci" / "hello-world" / "index.json")
