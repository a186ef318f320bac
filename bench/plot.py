"""Draw the PNG plots of BENCHMARKS.md from bench/results/*.json (whichever exist).

uv run python bench/plot.py
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

Document = dict[str, Any]


def build_matrix(doc: Document, out: Path) -> None:
    rows = [r for r in doc["rows"] if r["cold_seconds"] is not None]
    names = [r["target"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 6), sharey=True)
    left.barh(names, [r["cold_seconds"] for r in rows], label="cold (std included)")
    left.barh(names, [r["warm_seconds"] for r in rows], label="warm")
    left.set_xlabel("seconds")
    left.invert_yaxis()
    left.legend()
    left.set_title("factory build, per target")
    right.barh(names, [r["size"] / 1024 for r in rows], color="tab:green")
    right.set_xlabel("KiB")
    right.set_title("binary size")
    fig.tight_layout()
    fig.savefig(out)


def emulated(doc: Document, out: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 3))
    labels = ["factory (cross)", "emulated arm64 (QEMU)"]
    values = [doc["median_factory_seconds"], doc["median_emulated_seconds"]]
    ax.barh(labels, values, color=["tab:blue", "tab:red"])
    ax.set_xlabel("seconds, cold build of the example for arm64 (median)")
    bound = ">= " if doc["speedup_is_lower_bound"] else ""
    ax.set_title(f"factory is {bound}{doc['speedup']:.1f}x faster")
    fig.tight_layout()
    fig.savefig(out)


def runtime(doc: Document, out: Path) -> None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    alloc = {k: common.median(v) for k, v in doc["alloc_seconds"].items()}
    left.bar(list(alloc), list(alloc.values()), color=["tab:gray", "tab:blue"])
    left.set_ylabel("seconds (median)")
    left.set_title(f"allocation-heavy threads: mimalloc {doc['alloc_speedup_mimalloc']:.1f}x")
    simd: dict[str, dict[str, float]] = doc["simd_median_seconds"]
    levels = list(simd)
    kernels = sorted(simd[levels[0]])
    width = 0.8 / len(levels)
    for i, level in enumerate(levels):
        speedups = [simd[levels[0]][k] / simd[level][k] for k in kernels]
        right.bar([x + i * width for x in range(len(kernels))], speedups, width, label=level)
    right.set_xticks([x + width * (len(levels) - 1) / 2 for x in range(len(kernels))], kernels)
    right.set_ylabel("speed-up over amd64 (x86-64-v1)")
    right.set_title("vectorisable loops per x86-64 level")
    right.legend()
    fig.tight_layout()
    fig.savefig(out)


def size(doc: Document, out: Path) -> None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.5))
    left.bar(
        ["musl", "glibc (static)"], [doc["musl_bytes"] / 1024, doc["glibc_static_bytes"] / 1024]
    )
    left.set_ylabel("KiB")
    left.set_title("static binary, amd64")
    bases = doc["bases"]
    right.bar(
        [b["base"] for b in bases], [b["compressed"] / 1024 for b in bases], color="tab:orange"
    )
    right.set_yscale("log")
    right.set_ylabel("KiB, gzip layers (log scale)")
    right.set_title("the same binary: scratch vs debian:trixie-slim")
    fig.tight_layout()
    fig.savefig(out)


PLOTS: dict[str, Callable[[Document, Path], None]] = {
    "build_matrix": build_matrix,
    "emulated": emulated,
    "runtime": runtime,
    "size": size,
}


def main() -> int:
    for name, draw in PLOTS.items():
        source = common.RESULTS / f"{name}.json"
        if not source.exists():
            print(f"plot: no {source.name}, skipped", file=sys.stderr)
            continue
        draw(json.loads(source.read_text()), common.RESULTS / f"{name}.png")
        plt.close("all")
        print(f"plot: {name}.png", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
