"""Warm starts (factory.build.warm_start) against today's cold builds, side by side.

    uv run python bench/warm_start.py [--rounds N] [-t TARGET]... [--canary NAME]

1. **std shared across workspaces**, per target: the example built cold at a new path
   (a copy of examples/hello_world, as a CI runner's new checkout) in a cache volume where
   another copy was built before, against today's cold build (a volume with no std seed and
   new target directories that start empty, FACTORY_BENCH_WARM_START=0). Goal: at most 50 %.
2. **host units shared across levels**: a canary crate (rustls-cert-gen: ring's C and
   assembly, proc-macros) built for amd64_v2 right after amd64 in the same volume, against
   amd64 built cold as today. Goal: at most 60 %.

Every build is `factory build -t TARGET` through factory's CLI in a volume of the benchmark's
own; the vendored crates are fetched before the first timed round and kept. The sides alternate
(ABBA); each records its wall time and the CPU-seconds of its containers.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import docker

from bench import common
from bench.canary import fetch
from factory.build.job import CARGO_CACHE
from factory.engine import docker_engine as engine

WORK = common.WORK / "warm_start"
EXAMPLE = common.ROOT / "examples" / "hello_world"


class Bench:
    def __init__(self, client: docker.DockerClient, name: str) -> None:
        self.client = client
        self.volume = common.unique(f"factory-bench-warm-{name}").rsplit("/", 1)[-1]
        common.ensure_volume(client, self.volume)
        self.builder = common.builder(client)
        self.paths = 0
        self.digests: dict[str, set[str]] = {}
        """The sha256 of every binary built, per target: one each when warm starts change
        nothing in the output."""

    def close(self) -> None:
        self.client.volumes.get(self.volume).remove(force=True)

    def clear(self) -> None:
        """Forget every target directory and std seed; keep the vendored crates."""
        spec = engine.ContainerSpec(
            image=self.builder.tag,
            purpose="bench",
            mounts=(engine.Mount(source=self.volume, target=CARGO_CACHE.path),),
        )
        with engine.container(self.client, spec) as box:
            box.run(["rm", "-rf", f"{CARGO_CACHE.path}/target", f"{CARGO_CACHE.path}/std"])

    def new_path(self, workspace_toml: Callable[[Path], str]) -> Path:
        """A fresh directory with an images.toml: a new checkout path for the example."""
        self.paths += 1
        directory = WORK / self.volume / f"path-{self.paths}"
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        config = directory / "images.toml"
        config.write_text(workspace_toml(directory))
        return config

    def build(self, config: Path, target: str, *, warm: bool) -> tuple[float, float]:
        """`factory build -t TARGET`: wall seconds and the containers' CPU-seconds."""
        with common.ContainerCpu(self.client, self.volume) as cpu:
            done = common.factory(
                ["build", "-t", target, "--json"],
                config=config,
                volume=self.volume,
                warm_start=warm,
            )
        for entry in json.loads(done.stdout):
            self.digests.setdefault(entry["target"], set()).add(entry["sha256"])
        return done.seconds, cpu.seconds


def _example_toml(directory: Path) -> str:
    copy = directory / "hello_world"
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns("target"))
    return (
        f'[workspace]\npath = "{copy}"\ndriver = "cargo"\n\n'
        '[[image]]\nname = "hello-world"\nbinary = "hello_world"\npackage = "hello_world"\n'
    )


def _measure(
    sides: dict[str, Callable[[], tuple[float, float]]], rounds: int
) -> dict[str, dict[str, list[float]]]:
    cpu: dict[str, list[float]] = {name: [] for name in sides}

    def timed(name: str) -> Callable[[], float]:
        def side() -> float:
            wall, used = sides[name]()
            cpu[name].append(used)
            return wall

        return side

    wall = common.alternate({name: timed(name) for name in sides}, rounds)
    return {name: {"seconds": wall[name], "cpu_seconds": cpu[name]} for name in sides}


def std_shared(client: docker.DockerClient, target: str, rounds: int) -> dict[str, object]:
    today, shared = Bench(client, "today"), Bench(client, "shared")
    try:
        today.build(today.new_path(_example_toml), target, warm=False)  # fetches, untimed
        shared.build(shared.new_path(_example_toml), target, warm=True)  # another workspace

        def before() -> tuple[float, float]:
            today.clear()
            return today.build(today.new_path(_example_toml), target, warm=False)

        def after() -> tuple[float, float]:
            return shared.build(shared.new_path(_example_toml), target, warm=True)

        samples = _measure({"today": before, "new path, std shared": after}, rounds)
    finally:
        today.close()
        shared.close()
    digests = today.digests.get(target, set()) | shared.digests.get(target, set())
    return {"target": target, "samples": samples, "binaries": sorted(digests)}


def levels_shared(client: docker.DockerClient, name: str, rounds: int) -> dict[str, object]:
    canary = fetch.select(fetch.load_canaries(fetch.CANARIES), [name], small=False)[0]
    _, source, _ = fetch.fetch(canary, fetch.DEFAULT_OUT, None)
    bench = Bench(client, "levels")
    toml = canary.images_toml(source, ["amd64", "amd64_v2"])
    try:
        config = bench.new_path(lambda _: toml)
        bench.build(config, "amd64", warm=False)  # fetches, untimed

        def first_level_today() -> tuple[float, float]:
            bench.clear()
            return bench.build(bench.new_path(lambda _: toml), "amd64", warm=False)

        def second_level() -> tuple[float, float]:
            bench.clear()
            config = bench.new_path(lambda _: toml)
            bench.build(config, "amd64", warm=True)  # the first level, untimed
            return bench.build(config, "amd64_v2", warm=True)

        samples = _measure(
            {"amd64 cold, today": first_level_today, "amd64_v2 after amd64": second_level},
            rounds,
        )
    finally:
        bench.close()
    digests = {t: sorted(d) for t, d in bench.digests.items()}
    return {"canary": name, "samples": samples, "binaries": digests}


def _identical(binaries: object) -> str:
    """ "identical" when every build of a target gave one binary."""
    sets = binaries.values() if isinstance(binaries, dict) else [binaries]
    return "identical" if all(isinstance(d, list) and len(d) == 1 for d in sets) else "differ"


def _rows(parts: Sequence[dict[str, object]]) -> list[list[object]]:
    rows: list[list[object]] = []
    for part in parts:
        samples = part["samples"]
        assert isinstance(samples, dict)
        (base, base_s), (new, new_s) = samples.items()
        what = part.get("target") or part.get("canary")
        share = common.percent(common.median(new_s["seconds"]), common.median(base_s["seconds"]))
        rows.append(
            [
                what,
                base,
                common.median(base_s["seconds"]),
                common.median(base_s["cpu_seconds"]),
                new,
                common.median(new_s["seconds"]),
                common.median(new_s["cpu_seconds"]),
                f"{share:.0f} %",
                _identical(part["binaries"]),
            ]
        )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("-t", "--target", action="append", dest="targets")
    parser.add_argument("--canary", default="rustls-cert-gen")
    parser.add_argument("--skip-levels", action="store_true")
    args = parser.parse_args(argv)
    start = common.environment()
    client = engine.client()
    parts = [std_shared(client, t, args.rounds) for t in args.targets or ["amd64", "arm64"]]
    if not args.skip_levels:
        parts.append(levels_shared(client, args.canary, args.rounds))
    table = common.markdown_table(
        ["build", "before", "s", "CPU-s", "after", "s", "CPU-s", "after / before", "binaries"],
        _rows(parts),
    )
    markdown = (
        f"{table}\nMedians of {args.rounds} alternated rounds; load at start "
        f"{start['load_average']}.\n"
    )
    common.write_results("warm_start", {"environment": start, "parts": parts}, markdown)
    print(json.dumps(start["load_average"]), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
