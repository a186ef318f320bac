"""`factory image --push` with nothing changed: wall time and bytes uploaded.

    uv run python bench/noop.py [--runs N] [--profile]

A first `factory image --push` (not timed) builds, validates, assembles and pushes the default
images; then the same command runs again --runs times. Bytes uploaded are counted twice: by
factory (its --json result) and independently, by the registry container's received bytes
(which include HTTP requests and replies, so a no-op still shows a few KiB). --profile writes a
pyinstrument profile of one no-op run to bench/results/noop_profile.txt.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from factory.build.job import CARGO_CACHE

GOAL_SECONDS = 2.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    start = common.environment()
    config = common.pipeline_config()
    repository = f"{common.REGISTRY}/bench-noop"
    first, _ = common.image_push(config, repository)
    print(f"bench: first run {first.seconds:.1f} s", file=sys.stderr)
    seconds: list[float] = []
    factory_bytes: list[int] = []
    wire_bytes: list[int] = []
    stages: list[dict[str, float]] = []
    for n in range(args.runs):
        before = common.registry_rx_bytes()
        done, document = common.image_push(config, repository)
        wire_bytes.append(common.registry_rx_bytes() - before)
        seconds.append(done.seconds)
        factory_bytes.append(sum(int(p["bytes_uploaded"]) for p in document["pushed"]))
        stages.append(document["stages"]["seconds"])
        print(f"bench: no-op {n + 1}: {done.seconds:.2f} s, {factory_bytes[-1]} B", file=sys.stderr)
    if args.profile:
        profile = common.RESULTS / "noop_profile.txt"
        common.run(
            [
                sys.executable,
                "-m",
                "pyinstrument",
                "-r",
                "text",
                "-o",
                str(profile),
                "-m",
                "bench.factory_cli",
                "--config",
                str(config),
                "image",
                "--push",
                "--registry",
                repository,
            ],
            env={"FACTORY_BENCH_CACHE_VOLUME": CARGO_CACHE.volume},
            cwd=common.ROOT,
        )
    wall = common.median(seconds)
    verdict = "met" if wall < GOAL_SECONDS and max(factory_bytes) == 0 else "MISSED"
    markdown = (
        common.markdown_table(
            ["measure", "median", "runs", "goal"],
            [
                ["wall time (s)", wall, ", ".join(f"{x:.2f}" for x in seconds), "< 2"],
                [
                    "blob bytes uploaded (factory's count)",
                    int(common.median(factory_bytes)),
                    ", ".join(map(str, factory_bytes)),
                    "0",
                ],
                [
                    "bytes received by the registry (all HTTP)",
                    int(common.median(wire_bytes)),
                    ", ".join(map(str, wire_bytes)),
                    "-",
                ],
            ],
        )
        + f"\nGoal {verdict}. Stage times of the last run (s): {stages[-1]}.\n"
    )
    common.write_results(
        "noop",
        {
            "environment": start,
            "first_run_seconds": first.seconds,
            "seconds": seconds,
            "bytes_uploaded": factory_bytes,
            "registry_rx_bytes": wire_bytes,
            "stage_seconds": stages,
            "goal_met": verdict == "met",
        },
        markdown,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
