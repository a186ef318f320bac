"""A small project on disk for assembly tests: images.toml, built binaries, report.json."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from factory.model import config as cfg
from factory.model import targets as target_table
from tests.conftest import ROOT
from tests.elfbin import static_executable

IMAGES_TOML = """\
[workspace]
path = "ws"

[registry]
repository = "127.0.0.1:5000/factory-test"

[[image]]
name = "greeter"
binary = "greet"
targets = {targets}
tags = ["latest", "1.0"]
user = "65532:65532"
env = {{ GREETING = "hello" }}
labels = {{ "org.example.team" = "tools" }}
annotations = {{ "org.opencontainers.image.licenses" = "Apache-2.0" }}

[image.files]
ca_certificates = true
passwd = true
"""

WORKSPACE_TOML = """\
[workspace]
members = ["crates/*"]

[workspace.package]
version = "2.3.4"
"""

PACKAGE_TOML = """\
[package]
name = "greet"
version.workspace = true
repository = "https://example.org/greet"
"""

GREETING = "Hello from {target}\n"
HOST_TARGET = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), "amd64")
"""The baseline target this machine runs natively."""


@dataclass(frozen=True, kw_only=True)
class Project:
    root: Path
    config: cfg.Config

    @property
    def dist(self) -> Path:
        return self.root / "dist"

    def binary(self, target: str) -> Path:
        return self.dist / "bin" / "greeter" / target / "greet"


def make_project(root: Path, targets: tuple[str, ...], *, validated: bool = True) -> Project:
    """A project whose `targets` are built (tiny static ELFs) and, if asked, validated."""
    (root / "ws" / "crates" / "greet").mkdir(parents=True)
    (root / "ws" / "Cargo.toml").write_text(WORKSPACE_TOML)
    (root / "ws" / "crates" / "greet" / "Cargo.toml").write_text(PACKAGE_TOML)
    toml = IMAGES_TOML.format(targets=json.dumps(list(targets)))
    (root / "images.toml").write_text(toml)
    config = cfg.load(root / "images.toml")
    project = Project(root=root, config=config)
    results = []
    for name in targets:
        target = target_table.get(name)
        path = project.binary(name)
        path.parent.mkdir(parents=True)
        data = static_executable(target.arch, GREETING.format(target=name).encode())
        path.write_bytes(data)
        path.chmod(0o755)
        results.append(
            {
                "image": "greeter",
                "target": name,
                "path": str(path.relative_to(root)),
                "sha256": hashlib.sha256(data).hexdigest(),
                "passed": validated,
            }
        )
    write_report(project, results)
    return project


def signing_project(root: Path) -> tuple[Project, Path]:
    """A two-target project under ``root`` with the example workspace's Cargo.lock (its SBOM
    lists crates) and a key pair made by `factory keygen`: the project and the keys' prefix
    (``<prefix>.key``, ``<prefix>.pub``)."""
    project = make_project(root / "p", ("amd64", "arm64"))
    shutil.copy(ROOT / "examples" / "hello_world" / "Cargo.lock", project.root / "ws")
    keys = root / "keys" / "cosign"
    run(sys.executable, "-m", "factory", "keygen", str(keys))
    return project, keys


def write_report(project: Project, results: list[dict[str, object]]) -> None:
    document = {
        "schema": "factory.report/v1",
        "passed": all(r["passed"] for r in results),
        "results": results,
    }
    (project.dist / "report.json").write_text(json.dumps(document, indent=2))


def write_ca_bundle(path: Path) -> Path:
    path.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    return path


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command that must succeed; a failure shows its output."""
    proc = subprocess.run(args, capture_output=True, text=True, check=False, env=env, timeout=600)
    assert proc.returncode == 0, f"{args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


def factory_run(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the real CLI (SOURCE_DATE_EPOCH fixed), whatever its exit code."""
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1700000000"}
    return subprocess.run(
        [sys.executable, "-m", "factory", *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=600,
    )


def factory_json(*args: str) -> tuple[dict[str, Any], str]:
    """Run the real CLI with --json (SOURCE_DATE_EPOCH fixed): its document and its stderr."""
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1700000000"}
    proc = run(sys.executable, "-m", "factory", "--json", *args, env=env)
    document: dict[str, Any] = json.loads(proc.stdout)
    return document, proc.stderr
