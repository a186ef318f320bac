"""`factory image --push` with nothing changed: wall time, bytes uploaded, registry writes.

    uv run python bench/noop.py [--runs N] [--profile] [--baseline CHECKOUT]

A first `factory image --push` (not timed) builds, validates, assembles and pushes the default
images; then the README's command, `uv run factory image --push` (with --registry and --json),
runs again --runs times, each timed from the shell's side, so `uv run`'s own start counts as it
does for a person; `uv run true` is timed alongside to show that share. Per run, bytes
uploaded are counted twice: by factory (its --json result) and independently, by the registry
container's received bytes (which include HTTP requests and replies, so a no-op still shows a
few KiB); and the write requests (PUT, POST, PATCH, DELETE) the registry logged for the
repository, which a no-op must not make. --baseline names another checkout of factory (say
`git worktree add /tmp/factory-main main`, then `uv sync` there): its `uv run factory` runs
the same no-op, alternating with this checkout's (A B, B A, ...), so both see the same load.
--profile writes a pyinstrument profile of one no-op run to bench/results/noop_profile.txt.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from factory.build.job import CACHE_VARIABLE, CARGO_CACHE

GOAL_SECONDS = 0.5


@dataclass(kw_only=True)
class Side:
    """One checkout's no-op runs (filled as they happen)."""

    name: str
    checkout: Path
    seconds: list[float] = field(default_factory=list)
    bytes_uploaded: list[int] = field(default_factory=list)
    writes: list[int] = field(default_factory=list)
    written: list[int] = field(default_factory=list)
    wire_bytes: list[int] = field(default_factory=list)
    stages: list[dict[str, float]] = field(default_factory=list)

    def run(self, config: Path, repository: str) -> None:
        """`uv run factory image --push`, as the README has it, once, with what it sent."""
        before, logged = common.registry_rx_bytes(), common.registry_writes(repository)
        argv = ["uv", "run", "--project", str(self.checkout), "factory", "--config", str(config)]
        done = common.run(
            [*argv, "image", "--push", "--registry", repository, "--json"], cwd=self.checkout
        )
        document = json.loads(done.stdout)
        self.wire_bytes.append(common.registry_rx_bytes() - before)
        self.writes.append(common.registry_writes(repository) - logged)
        self.seconds.append(done.seconds)
        self.bytes_uploaded.append(sum(int(p["bytes_uploaded"]) for p in document["pushed"]))
        # -1: a factory that does not count them (older than the count).
        counts = [x.get("manifests_written") for x in document["pushed"] + document["attached"]]
        self.written.append(-1 if None in counts else sum(int(c) for c in counts))
        self.stages.append(document["stages"]["seconds"])
        print(
            f"bench: {self.name} no-op {len(self.seconds)}: {done.seconds:.2f} s, "
            f"{self.bytes_uploaded[-1]} B, {self.writes[-1]} write request(s) logged",
            file=sys.stderr,
        )

    def rows(self) -> list[list[object]]:
        label = f" ({self.name})" if self.name != "this checkout" else ""
        return [
            [
                f"wall time of `uv run factory image --push`{label} (s)",
                common.median(self.seconds),
                ", ".join(f"{x:.2f}" for x in self.seconds),
                f"<= {GOAL_SECONDS}",
            ],
            _row(f"blob bytes uploaded (factory's count){label}", self.bytes_uploaded, "0"),
            _row(f"write requests the registry logged{label}", self.writes, "0"),
            _row(
                f"manifests and tags written (factory's count; -1: not counted){label}",
                self.written,
                "0",
            ),
            _row(f"bytes received by the registry (all HTTP){label}", self.wire_bytes, "-"),
        ]

    def to_json(self) -> dict[str, object]:
        return {
            "checkout": str(self.checkout),
            "seconds": self.seconds,
            "bytes_uploaded": self.bytes_uploaded,
            "registry_write_requests": self.writes,
            "manifests_written": self.written,
            "registry_rx_bytes": self.wire_bytes,
            "stage_seconds": self.stages,
        }


def _row(measure: str, values: Sequence[int], goal: str) -> list[object]:
    return [measure, int(common.median(values)), ", ".join(map(str, values)), goal]


def profile(config: Path, repository: str) -> None:
    output = common.RESULTS / "noop_profile.txt"
    pyinstrument = [sys.executable, "-m", "pyinstrument", "-r", "text", "-o", str(output)]
    factory = ["-m", "bench.factory_cli", "--config", str(config), "image", "--push"]
    common.run(
        [*pyinstrument, *factory, "--registry", repository],
        env={CACHE_VARIABLE: CARGO_CACHE.volume},
        cwd=common.ROOT,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--baseline", type=Path, metavar="CHECKOUT")
    args = parser.parse_args(argv)
    start = common.environment()
    config = common.pipeline_config()
    repository = f"{common.REGISTRY}/bench-noop"
    first, _ = common.image_push(config, repository)
    print(f"bench: first run {first.seconds:.1f} s", file=sys.stderr)
    sides = [Side(name="this checkout", checkout=common.ROOT)]
    if args.baseline is not None:
        sides.append(Side(name=f"baseline {args.baseline.name}", checkout=args.baseline))
    load_before = [round(x, 2) for x in os.getloadavg()]
    uv_seconds: list[float] = []
    for round_ in range(args.runs):
        uv_seconds.append(common.run(["uv", "run", "true"], cwd=common.ROOT).seconds)
        for side in sides if round_ % 2 == 0 else reversed(sides):
            side.run(config, repository)
    load_after = [round(x, 2) for x in os.getloadavg()]
    if args.profile:
        profile(config, repository)
    ours = sides[0]
    met = (
        common.median(ours.seconds) <= GOAL_SECONDS
        and max(ours.bytes_uploaded) == 0
        and max(ours.writes) == 0
    )
    uv_row: list[object] = [
        "`uv run true` (uv's own start, s)",
        common.median(uv_seconds),
        ", ".join(f"{x:.2f}" for x in uv_seconds),
        "-",
    ]
    markdown = (
        common.markdown_table(
            ["measure", "median", "runs", "goal"],
            [row for side in sides for row in side.rows()] + [uv_row],
        )
        + f"\nLoad average (1, 5, 15 min) before the timed runs {load_before}, after "
        f"{load_after}. Goal {'met' if met else 'MISSED'}. Stage times of this checkout's "
        f"last run (s): {ours.stages[-1]}.\n"
    )
    common.write_results(
        "noop",
        {
            "environment": start,
            "first_run_seconds": first.seconds,
            "load_average_before_runs": load_before,
            "load_average_after_runs": load_after,
            "uv_run_seconds": uv_seconds,
            "sides": [side.to_json() for side in sides],
            "goal_seconds": GOAL_SECONDS,
            "goal_met": met,
        },
        markdown,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
