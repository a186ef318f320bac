"""`factory doctor --fix`: QEMU registered in the host kernel's binfmt_misc, for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from factory.engine import binfmt
from tests.conftest import ROOT
from tests.elfbin import static_executable


def test_doctor_fix_lets_the_kernel_run_foreign_binaries(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "factory", "doctor", "--fix", "--json"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    findings = {f["check"]: f for f in json.loads(proc.stdout)}
    assert findings["binfmt_misc"]["status"] == "ok", (findings, proc.stderr)
    foreign = binfmt.foreign_arches()
    registered = binfmt.registered()
    for arch in foreign:
        assert registered.get(f"qemu-{arch.gnu_name}") is True, registered
        # The kernel itself now runs a binary of the other architecture through QEMU.
        program = tmp_path / f"hello-{arch.value}"
        program.write_bytes(static_executable(arch, b"hello through binfmt\n"))
        os.chmod(program, 0o755)
        ran = subprocess.run([str(program)], capture_output=True, text=True, check=False)
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout == "hello through binfmt\n"
