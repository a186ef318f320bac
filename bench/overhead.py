"""factory's own share of a cold `factory image --push`, against the raw compile commands.

    uv run python bench/overhead.py [-t TARGET]... [--runs N]

Side "factory": the targets' cargo target directories are deleted, then `factory image --push`
runs end to end in a fresh directory (builder check, cold compile, validation with the QEMU
smoke run, assembly, SBOM, push to a fresh repository of the local registry).
Side "raw": the same target directories are deleted, then the very `cargo build` commands
factory runs (same argv and environment, from its Cargo driver) run in one builder container;
only the commands are timed. factory's share = factory - raw, in percent of raw (goal: at most
5 % of a cold build). A second estimate from inside the factory run: its wall time minus the
compile times it logs. Uses its own cache volume.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common, rawbuild
from factory.engine import docker_engine as engine
from factory.model import targets as target_table

VOLUME = "factory-bench-overhead"
_COMPILED = re.compile(r"build: \S+ (\S+) done in ([0-9.]+) s")


def compile_seconds(stderr: str) -> float:
    """The per-target compile times factory logged ("build: IMAGE TARGET done in N s")."""
    return sum(float(seconds) for _, seconds in _COMPILED.findall(stderr))


def cold_seconds(names: Sequence[str]) -> float | None:
    """The summed cold `factory build` times of these targets from the build matrix results."""
    found: dict[str, float] = {}
    for path in sorted(common.RESULTS.glob("build_matrix*.json")):
        for row in json.loads(path.read_text())["rows"]:
            if row.get("cold_seconds") is not None:
                found[row["target"]] = float(row["cold_seconds"])
    return sum(found[n] for n in names) if all(n in found for n in names) else None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("-t", "--target", action="append", default=[])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument(
        "--warm",
        action="store_true",
        help="keep the caches (the build matrix's volume): measure factory's share on warm builds "
        "and relate it to the cold build times of bench/results/build_matrix*.json",
    )
    args = parser.parse_args(argv)
    default = ["amd64"] if not args.warm else list(target_table.DEFAULT_TARGETS)
    names = [t.name for t in target_table.select(args.target or default)]
    # Warm: the build matrix's volume, where these targets were just built.
    volume = common.BENCH_VOLUME if args.warm else VOLUME
    start = common.environment()
    client = engine.client()
    builder = common.builder(client)

    def clear() -> None:
        if not args.warm:
            common.clear_targets(client, builder, names, volume=volume)

    with rawbuild.builder_box(client, builder, volume):
        pass  # vendors the crates into the volume (network, not timed)
    if args.warm:  # make sure every target is warm (not timed)
        common.factory(
            ["build", *[x for n in names for x in ("-t", n)]],
            config=common.bench_config(common.WORK / "overhead" / "warm-up", targets=names),
            volume=volume,
        )
    inside: list[float] = []
    stages: list[dict[str, float]] = []
    counter = iter(range(1000))

    def factory_side() -> float:
        clear()
        config = common.bench_config(
            common.WORK / "overhead" / f"run-{next(counter)}", targets=names
        )
        target_args = [x for n in names for x in ("-t", n)]
        done = common.factory(
            [
                "image",
                "--push",
                "--registry",
                common.unique("bench-overhead"),
                "--json",
                *target_args,
            ],
            config=config,
            volume=VOLUME,
        )
        inside.append(done.seconds - compile_seconds(done.stderr))
        stages.append(json.loads(done.stdout)["stages"]["seconds"])
        return done.seconds

    def raw_side() -> float:
        clear()
        with rawbuild.builder_box(client, builder, volume) as box:
            return sum(
                rawbuild.compile_binary(
                    box, target_table.get(n), common.WORK / "overhead" / "raw" / n / "hello_world"
                ).seconds
                for n in names
            )

    samples = common.alternate({"factory": factory_side, "raw": raw_side}, args.runs)
    whole, raw = common.median(samples["factory"]), common.median(samples["raw"])
    share = whole - raw
    kind = "warm" if args.warm else "cold"
    cold = cold_seconds(names) if args.warm else None
    base = cold if cold is not None else raw
    markdown = common.markdown_table(
        ["measure", "median (s)", "runs (s)"],
        [
            [
                f"factory image --push, end to end ({kind})",
                whole,
                ", ".join(f"{x:.1f}" for x in samples["factory"]),
            ],
            [
                f"raw cargo build commands ({kind})",
                raw,
                ", ".join(f"{x:.1f}" for x in samples["raw"]),
            ],
            ["factory's share (difference)", share, "-"],
            [
                "factory's share, inside each run (wall - logged compiles)",
                common.median(inside),
                ", ".join(f"{x:.1f}" for x in inside),
            ],
        ],
    )
    of = f"the cold builds ({base:.0f} s, build matrix)" if cold is not None else "the raw build"
    markdown += (
        f"\nTargets: {', '.join(names)}. factory's share: {common.percent(share, base):.1f} % of "
        f"{of} by difference, {common.percent(common.median(inside), base):.1f} % inside "
        f"the runs (goal: at most 5 % of a cold build). Stage times of the last run (s): "
        f"{stages[-1]}.\n"
    )
    common.write_results(
        "overhead",
        {
            "environment": start,
            "targets": names,
            "samples": samples,
            "inside_share_seconds": inside,
            "stage_seconds": stages,
            "share_percent": common.percent(share, base),
            "warm": args.warm,
            "cold_build_seconds": cold,
            "inside_share_percent": common.percent(common.median(inside), raw),
        },
        markdown,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
