"""The whole 21-target matrix of the example, cold, in one `factory build` run.

    uv run python bench/matrix_at_once.py [--jobs N]

One `factory build -t all` (factory's default --jobs, or N) in a new cache volume of the
benchmark's own, so every std seed, host unit, crate and binary is compiled and the crates are
vendored (the fetch's own time, from its `fetch: done in` line, is recorded apart). Records the
wall time, the containers' CPU-seconds, the load before and after, the plan (-v) and each
target's done line. Goal: at most 12 minutes on 2 cores, idle (measured before warm starts
and targets side by side, serial and idle: about 20 minutes).
"""

from __future__ import annotations

import argparse
import re
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from factory.engine import docker_engine as engine
from factory.model import targets as target_table

_DONE = re.compile(r"build: (\S+) (\S+) done in ([0-9.]+) s")
_FETCH = re.compile(r"fetch: done in ([0-9.]+) s")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--jobs", type=int, default=None)
    args = parser.parse_args(argv)
    start = common.environment()
    client = engine.client()
    volume = f"factory-bench-matrix-{uuid.uuid4().hex[:8]}"
    common.ensure_volume(client, volume)
    config = common.bench_config(common.WORK / "matrix_at_once", targets=["all"])
    jobs = ["--jobs", str(args.jobs)] if args.jobs else []
    try:
        with common.ContainerCpu(client, volume) as cpu:
            done = common.factory(["-v", "build", "-t", "all", *jobs], config=config, volume=volume)
    finally:
        client.volumes.get(volume).remove(force=True)
    end = common.environment()
    per_target = {m[2]: float(m[3]) for m in _DONE.findall(done.stderr)}
    fetch = [float(x) for x in _FETCH.findall(done.stderr)]
    plan = next((x.strip() for x in done.stderr.splitlines() if "at once" in x), "-")
    minutes = done.seconds / 60
    table = common.markdown_table(
        ["targets", "wall", "CPU-s", "fetch (s)", "per target (s, min to max)"],
        [
            [
                len(per_target),
                f"{minutes:.1f} min",
                cpu.seconds,
                sum(fetch),
                f"{min(per_target.values()):.0f} to {max(per_target.values()):.0f}",
            ]
        ],
    )
    markdown = (
        f"{table}\n{plan}; load at start {start['load_average']}, at end "
        f"{end['load_average']}. Goal: at most 12 min on an idle machine.\n"
    )
    expected = len(target_table.TARGETS)
    common.write_results(
        "matrix_at_once",
        {
            "environment": start,
            "seconds": done.seconds,
            "cpu_seconds": cpu.seconds,
            "fetch_seconds": fetch,
            "plan": plan,
            "per_target_seconds": per_target,
        },
        markdown,
    )
    return 0 if len(per_target) == expected else 1


if __name__ == "__main__":
    raise SystemExit(main())
