"""The instruction-set audit on real vectorised binaries, compiled by musl-gcc in the test-tools
image at each x86-64 level."""

from __future__ import annotations

from pathlib import Path

import pytest

from factory.validate import isa
from tests.testtools import VECTOR, Tools


@pytest.fixture(scope="module")
def levels(tools: Tools, tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    d = tmp_path_factory.mktemp("isa")
    made = {}
    for level in (1, 2, 3, 4):
        march = "x86-64" if level == 1 else f"x86-64-v{level}"
        made[level] = tools.compile_c(
            d / f"v{level}", VECTOR, cc="musl-gcc", flags=["-static", "-O3", f"-march={march}"]
        )
    return made


def test_each_level_build_uses_its_level(levels: dict[int, Path]) -> None:
    reports = {level: isa.audit(path) for level, path in levels.items()}
    assert reports[1].counts["AVX"] == reports[1].counts["AVX2"] == 0
    assert reports[1].counts["AVX-512"] == 0
    assert reports[3].counts["AVX"] > 0
    assert reports[3].counts["AVX-512"] == 0
    assert reports[4].counts["AVX-512"] > 0
    assert reports[3].x86_level == 3
    assert reports[4].x86_level == 4
    assert all(r.instructions > 1000 for r in reports.values())
    assert reports[4].summary().startswith("v4: ")
