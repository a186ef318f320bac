"""`factory image --push` with nothing changed: wall time, bytes uploaded, registry writes.

    uv run python bench/noop.py [--runs N] [--profile]

A first `factory image --push` (not timed) builds, validates, assembles and pushes the default
images; then the README's command, `uv run factory image --push` (with --registry and --json),
runs again --runs times, each timed from the shell's side, so `uv run`'s own start counts as it
does for a person; `uv run true` is timed alongside to show that share. Per run, bytes
uploaded are counted twice: by factory (its --json result) and independently, by the registry
container's received bytes (which include HTTP requests and replies, so a no-op still shows a
few KiB); and the write requests (PUT, POST, PATCH, DELETE) the registry logged for the
repository, which a no-op must not make. --profile writes a pyinstrument profile of one no-op
run to bench/results/noop_profile.txt.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from factory.build.job import CARGO_CACHE

GOAL_SECONDS = 0.5


def readme_command(config: Path, repository: str) -> tuple[common.Timed, dict[str, Any]]:
    """`uv run factory image --push`, as the README has it, on the benchmarks' images.toml."""
    argv = ["uv", "run", "factory", "--config", str(config), "image", "--push"]
    done = common.run([*argv, "--registry", repository, "--json"], cwd=common.ROOT)
    return done, json.loads(done.stdout)


def profile(config: Path, repository: str) -> None:
    output = common.RESULTS / "noop_profile.txt"
    pyinstrument = [sys.executable, "-m", "pyinstrument", "-r", "text", "-o", str(output)]
    factory = ["-m", "bench.factory_cli", "--config", str(config), "image", "--push"]
    common.run(
        [*pyinstrument, *factory, "--registry", repository],
        env={"FACTORY_BENCH_CACHE_VOLUME": CARGO_CACHE.volume},
        cwd=common.ROOT,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    start = common.environment()
    config = common.pipeline_config()
    repository = f"{common.REGISTRY}/bench-noop"
    first, _ = common.image_push(config, repository)
    print(f"bench: first run {first.seconds:.1f} s", file=sys.stderr)
    seconds: list[float] = []
    uv_seconds: list[float] = []
    factory_bytes: list[int] = []
    wire_bytes: list[int] = []
    writes: list[int] = []
    written: list[int] = []
    stages: list[dict[str, float]] = []
    for n in range(args.runs):
        uv_seconds.append(common.run(["uv", "run", "true"], cwd=common.ROOT).seconds)
        before, logged = common.registry_rx_bytes(), common.registry_writes(repository)
        done, document = readme_command(config, repository)
        wire_bytes.append(common.registry_rx_bytes() - before)
        writes.append(common.registry_writes(repository) - logged)
        seconds.append(done.seconds)
        factory_bytes.append(sum(int(p["bytes_uploaded"]) for p in document["pushed"]))
        written.append(
            sum(int(x["manifests_written"]) for x in document["pushed"] + document["attached"])
        )
        stages.append(document["stages"]["seconds"])
        print(
            f"bench: no-op {n + 1}: {done.seconds:.2f} s, {factory_bytes[-1]} B, "
            f"{writes[-1]} write request(s) logged by the registry",
            file=sys.stderr,
        )
    if args.profile:
        profile(config, repository)
    wall = common.median(seconds)
    met = wall <= GOAL_SECONDS and max(factory_bytes) == 0 and max(writes) == 0
    markdown = (
        common.markdown_table(
            ["measure", "median", "runs", "goal"],
            [
                [
                    "wall time of `uv run factory image --push` (s)",
                    wall,
                    ", ".join(f"{x:.2f}" for x in seconds),
                    f"<= {GOAL_SECONDS}",
                ],
                [
                    "of which `uv run` itself (`uv run true`, s)",
                    common.median(uv_seconds),
                    ", ".join(f"{x:.2f}" for x in uv_seconds),
                    "-",
                ],
                _row("blob bytes uploaded (factory's count)", factory_bytes, "0"),
                _row("write requests the registry logged (PUT/POST/PATCH/DELETE)", writes, "0"),
                _row("manifests and tags written (factory's count)", written, "0"),
                _row("bytes received by the registry (all HTTP)", wire_bytes, "-"),
            ],
        )
        + f"\nLoad average at start: {start['load_average']}. Goal {'met' if met else 'MISSED'}. "
        f"Stage times of the last run (s): {stages[-1]}.\n"
    )
    common.write_results(
        "noop",
        {
            "environment": start,
            "first_run_seconds": first.seconds,
            "seconds": seconds,
            "uv_run_seconds": uv_seconds,
            "bytes_uploaded": factory_bytes,
            "registry_write_requests": writes,
            "manifests_written": written,
            "registry_rx_bytes": wire_bytes,
            "stage_seconds": stages,
            "goal_seconds": GOAL_SECONDS,
            "goal_met": met,
        },
        markdown,
    )
    return 0


def _row(measure: str, values: Sequence[int], goal: str) -> list[object]:
    return [measure, int(common.median(values)), ", ".join(map(str, values)), goal]


if __name__ == "__main__":
    raise SystemExit(main())
