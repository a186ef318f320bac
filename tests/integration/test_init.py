"""`factory init` on a host without cargo: `cargo metadata` runs in the builder container
(factory-builder:<hash>, reused when present) with the workspace mounted read-only."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def _path_without_cargo() -> str:
    """This Python's directory and the system's: no cargo (rustup's lives in ~/.cargo/bin)."""
    path = os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"])
    assert shutil.which("cargo", path=path) is None, f"cargo is on {path}"
    return path


def _factory(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PATH": _path_without_cargo()}
    return subprocess.run(
        [sys.executable, "-m", "factory", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )


def test_init_without_host_cargo_reads_the_workspace_in_the_builder(tmp_path: Path) -> None:
    workspace = tmp_path / "hello"
    shutil.copytree(
        ROOT / "examples" / "hello_world",
        workspace,
        ignore=shutil.ignore_patterns("target", "dist", "bazel-*"),
    )
    member = workspace / "rust" / "hello_world"
    done = _factory(member, "init", "--json")
    assert done.returncode == 0, done.stderr
    assert "no cargo on PATH: running cargo metadata in the builder container" in done.stderr
    document = json.loads(done.stdout)
    assert document["metadata"].startswith("factory-builder:")
    assert document["workspace"] == str(workspace)  # the container's /src mapped back
    assert document["path"] == str(workspace / "images.toml")
    assert [(i["name"], i["binary"]) for i in document["images"]] == [
        ("hello-world", "hello_world"),
        ("workloads", "workloads"),
    ]
    checked = _factory(workspace, "config", "--json")
    assert checked.returncode == 0, checked.stderr
    resolved = json.loads(checked.stdout)
    assert resolved["workspace"]["path"] == str(workspace)
    assert [i["name"] for i in resolved["image"]] == ["hello-world", "workloads"]
    # the mount was read-only and cargo wrote nothing into the workspace
    assert not (workspace / "target").exists()


def test_init_outside_a_workspace_exits_2_without_the_engine(tmp_path: Path) -> None:
    done = _factory(tmp_path, "init")
    assert done.returncode == 2
    assert "is not in a Cargo workspace" in done.stderr
