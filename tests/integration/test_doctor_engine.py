"""`factory doctor` against the real Docker engine."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT


def test_doctor_finds_the_engine() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "factory", "doctor", "--json"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    findings = {f["check"]: f for f in json.loads(proc.stdout)}
    assert findings["docker engine"]["status"] == "ok", findings
    assert "API 1." in findings["docker engine"]["detail"]
    assert findings["disk space"]["status"] in {"ok", "warn"}
    assert "registry" in findings
    assert proc.returncode in (0, 7), proc.stderr


def test_an_unreachable_engine_fails_the_doctor() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "factory", "doctor", "--json"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={"DOCKER_HOST": "unix:///nonexistent/docker.sock", "PATH": "/usr/bin:/bin"},
    )
    findings = {f["check"]: f for f in json.loads(proc.stdout)}
    assert findings["docker engine"]["status"] == "fail"
    assert "DOCKER_HOST" in findings["docker engine"]["fix"]
    assert proc.returncode == 7
    assert "Traceback" not in proc.stderr
