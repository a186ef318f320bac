"""The benchmarks' pure helpers: statistics, alternation order, tables, output parsers."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest

from bench import common, overhead, report, runtime


def test_median_of_odd_and_even_counts() -> None:
    assert common.median([3.0, 1.0, 2.0]) == 2.0
    assert common.median([4.0, 1.0, 3.0, 2.0]) == 2.5


def test_median_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError):
        common.median([])


def test_ratio_and_percent() -> None:
    assert common.ratio(10.0, 4.0) == 2.5
    assert common.ratio(0.0, 0.0) == 0.0
    assert math.isinf(common.ratio(1.0, 0.0))
    assert common.percent(5.0, 200.0) == 2.5


def test_human_bytes() -> None:
    assert common.human_bytes(512) == "512 B"
    assert common.human_bytes(1536) == "1.5 KiB"
    assert common.human_bytes(3 * 1024 * 1024) == "3.0 MiB"


def test_markdown_table_aligns_numeric_columns_right() -> None:
    text = common.markdown_table(
        ["target", "seconds", "note"], [["amd64", 1.234, "x"], ["arm64", 25.0, 7]]
    )
    assert text.splitlines() == [
        "| target | seconds | note |",
        "|---|---:|---|",
        "| amd64 | 1.23 | x |",
        "| arm64 | 25.0 | 7 |",
    ]


def test_markdown_table_rejects_ragged_rows() -> None:
    with pytest.raises(ValueError, match="expected 2"):
        common.markdown_table(["a", "b"], [["only one"]])


def test_alternate_reverses_the_order_every_other_round() -> None:
    calls: list[str] = []

    def side(name: str, value: float) -> Callable[[], float]:
        def measure() -> float:
            calls.append(name)
            return value

        return measure

    samples = common.alternate({"a": side("a", 1.0), "b": side("b", 2.0)}, runs=3)
    assert calls == ["a", "b", "b", "a", "a", "b"]
    assert samples == {"a": [1.0, 1.0, 1.0], "b": [2.0, 2.0, 2.0]}


def test_runtime_parses_the_workloads_output() -> None:
    out = (
        "alloc threads=4 seconds=0.608639 checksum=131450292\n"
        "dot_i32 seconds=0.18 checksum=7\nnoise\n"
    )
    assert runtime.parse(out) == {"alloc": (0.608639, "131450292"), "dot_i32": (0.18, "7")}


def test_overhead_sums_the_compile_times_factory_logs() -> None:
    log = (
        "build: hello-world amd64 (opt) ...\n"
        "build: hello-world amd64 done in 190.5 s (598 KiB)\n"
        "build: hello-world arm64 done in 10.0 s (520 KiB)\n"
        "validate: hello-world amd64 done in 3.0 s\n"
    )
    assert overhead.compile_seconds(log) == 200.5


def test_report_fills_marked_blocks_and_keeps_the_prose(tmp_path: Path) -> None:
    (tmp_path / "noop.md").write_text("| a |\n")
    (tmp_path / "noop.png").write_bytes(b"png")
    text = (
        "intro\n<!-- bench:noop -->\nold\n<!-- /bench:noop -->\n"
        "after\n<!-- bench:push -->\n<!-- /bench:push -->\n"
    )
    assert report.fill(text, tmp_path) == (
        "intro\n<!-- bench:noop -->\n| a |\n\n![noop](bench/results/noop.png)\n"
        "<!-- /bench:noop -->\nafter\n"
        "<!-- bench:push -->\n(not measured yet)\n<!-- /bench:push -->\n"
    )
