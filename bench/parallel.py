"""Targets side by side (`--jobs`) against one after the other, cold, alternated.

    uv run python bench/parallel.py [--rounds N] [-t TARGET]... [--jobs N]

Each side runs `factory build` for the targets (default: the example's five) through factory's
CLI in the benchmark's own volume after every target directory and std seed in it was removed
(the vendored crates stay): `--jobs 1` against `--jobs N` (default: factory's own default,
printed with -v). Records the wall time and the CPU-seconds of each side's containers.
Goal: at least 1.3x on 2 cores.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from bench.warm_start import Bench
from factory.engine import docker_engine as engine
from factory.model import targets as target_table


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("-t", "--target", action="append", dest="targets")
    parser.add_argument("--jobs", type=int, default=None)
    args = parser.parse_args(argv)
    targets = args.targets or list(target_table.DEFAULT_TARGETS)
    start = common.environment()
    client = engine.client()
    bench = Bench(client, "parallel")
    config = common.bench_config(common.WORK / "parallel" / bench.volume, targets=targets)
    cpu: dict[str, list[float]] = {"serial": [], "parallel": []}
    plan: dict[str, str] = {}

    def side(name: str, jobs: list[str]) -> float:
        bench.clear()
        selection = [x for t in targets for x in ("-t", t)]
        with common.ContainerCpu(client, bench.volume) as used:
            done = common.factory(
                ["-v", "build", *selection, *jobs], config=config, volume=bench.volume
            )
        cpu[name].append(used.seconds)
        plan[name] = next((x for x in done.stderr.splitlines() if "at once" in x), "-").strip()
        return done.seconds

    parallel_jobs = ["--jobs", str(args.jobs)] if args.jobs else []
    try:
        common.factory(["build", "-t", targets[0]], config=config, volume=bench.volume)  # fetch
        samples = common.alternate(
            {
                "serial": lambda: side("serial", ["--jobs", "1"]),
                "parallel": lambda: side("parallel", parallel_jobs),
            },
            args.rounds,
        )
    finally:
        bench.close()
    serial, side_by_side = common.median(samples["serial"]), common.median(samples["parallel"])
    rows = [
        ["--jobs 1", serial, common.median(cpu["serial"]), "1.00x"],
        [
            " ".join(parallel_jobs) or "default",
            side_by_side,
            common.median(cpu["parallel"]),
            f"{common.ratio(serial, side_by_side):.2f}x",
        ],
    ]
    table = common.markdown_table(["build", "wall (s)", "CPU-s", "speed-up"], rows)
    markdown = (
        f"{table}\n{len(targets)} targets cold ({', '.join(targets)}), medians of "
        f"{args.rounds} alternated rounds; the default side's plan: {plan.get('parallel', '-')}; "
        f"load at start {start['load_average']}.\n"
    )
    common.write_results(
        "parallel",
        {"environment": start, "targets": targets, "samples": samples, "cpu_seconds": cpu},
        markdown,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
