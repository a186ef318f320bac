"""factory as a user installs it: its wheel and sdist built from this checkout, and the wheel
installed into a fresh virtual environment outside the checkout.

The commands are uv's (the README's requirement). Their environment drops the checkout's own
virtual environment, and every command that imports factory runs outside the checkout, so that
what answers is the installed copy and not the source tree.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.conftest import ROOT

TIMEOUT = 300.0


def clean_env() -> Mapping[str, str]:
    """This process's environment without the checkout's virtual environment."""
    return {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}


def run(
    argv: Sequence[str], *, cwd: Path, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command (with `env` added to `clean_env()`); a failure raises with its output."""
    proc = subprocess.run(
        list(argv),
        cwd=cwd,
        env={**clean_env(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def build(out: Path, *, wheel_only: bool = False) -> tuple[Path, ...]:
    """`uv build` of the checkout into `out`: the wheel (and first the sdist, from which the
    wheel is then built, unless `wheel_only`). Returns the files it wrote."""
    run(["uv", "build", *(["--wheel"] if wheel_only else []), "-o", str(out)], cwd=ROOT)
    return tuple(sorted(p for p in out.iterdir() if p.suffix in (".whl", ".gz")))


def wheel_of(files: Sequence[Path]) -> Path:
    (wheel,) = (p for p in files if p.suffix == ".whl")
    return wheel


def install(wheel: Path, directory: Path, *, deps: bool = True) -> Path:
    """A fresh virtual environment `directory/venv` with the wheel installed; its bin folder."""
    venv = directory / "venv"
    run(["uv", "venv", "-q", str(venv)], cwd=directory)
    python = venv / "bin" / "python"
    no_deps = [] if deps else ["--no-deps"]
    argv = ["uv", "pip", "install", "-q", "--python", str(python), *no_deps, str(wheel)]
    run(argv, cwd=directory)
    return venv / "bin"


def tool_install(wheel: Path, directory: Path) -> Path:
    """`uv tool install` of the wheel with uv's tool and bin folders in `directory`; the bin."""
    bin_dir = directory / "bin"
    env = {"UV_TOOL_DIR": str(directory / "tools"), "UV_TOOL_BIN_DIR": str(bin_dir)}
    run(["uv", "tool", "install", "-q", str(wheel)], cwd=directory, env=env)
    return bin_dir
