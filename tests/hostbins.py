"""Test binaries compiled with the host's C compilers (gcc, musl-gcc): no Docker needed.

`.ci/run` installs gcc, libc6-dev and musl-tools; on a machine without them the tests that need
these binaries are skipped with the command to install them.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

HELLO = r"""
#include <stdio.h>
int main(int argc, char **argv) { printf("hello from %d args\n", argc - 1); return 0; }
"""
# A loop that GCC vectorises: AVX2 at -march=x86-64-v3, AVX-512 at x86-64-v4.
VECTOR = r"""
#include <stdio.h>
float a[4096], b[4096];
int main(int argc, char **argv) {
    float s = 0;
    for (int i = 0; i < 4096; i++) { a[i] = (float)(i * argc); b[i] = (float)i; }
    for (int i = 0; i < 4096; i++) s += a[i] * b[i];
    printf("%f\n", s);
    return 0;
}
"""


def compiler(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (apt-get install gcc libc6-dev musl-tools)")
    return path


def compile_c(out: Path, source: str, *, cc: str, flags: list[str]) -> Path:
    """Compile `source` to `out` with `cc` (a compiler name on PATH) and `flags`."""
    src = out.with_suffix(".c")
    src.write_text(source)
    subprocess.run([compiler(cc), *flags, str(src), "-o", str(out)], check=True)
    return out
