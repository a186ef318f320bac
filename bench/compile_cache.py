"""A fresh runner with a warm remote compile cache (sccache on Redis) against one without.

    uv run python bench/compile_cache.py [--rounds N] [-t TARGET]...

Each side is what a CI runner that starts empty does: `factory build` of the targets (default:
the example's five) through factory's CLI in a cache volume of its own that is new for every
build (so the crates are fetched and std is compiled again), from the same checkout path. One
side has `[cache] backend = "redis"`, with a Redis (Debian's redis-server, in the test-tools
image) that one untimed build filled first; the other has no `[cache]`. Both use the same
builder, examples/builders/sccache-redis.Dockerfile (factory's plus an sccache with Redis), and
the compile container joins the Redis container's network namespace. The sides alternate and
each records its wall time, the CPU-seconds of its containers and sccache's hits.
Goal: at least 3x.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import docker

from bench import common
from factory.engine import docker_engine as engine
from factory.model import targets as target_table
from tests import testtools

WORK = common.WORK / "compile_cache"
DOCKERFILE = common.ROOT / "examples" / "builders" / "sccache-redis.Dockerfile"
_HITS = re.compile(r"sccache (\d+) hits, (\d+) misses")


@contextmanager
def redis(client: docker.DockerClient) -> Iterator[str]:
    """A Redis on its container's loopback only; yields the container's name."""
    name = f"factory-bench-redis-{uuid.uuid4().hex[:8]}"
    box = client.containers.run(
        testtools.ensure_image(client),
        ["redis-server", "--port", "6379", "--save", ""],
        name=name,
        network_mode="none",
        labels=engine.labels(purpose="bench-redis"),
        detach=True,
    )
    try:
        while box.exec_run(["redis-cli", "ping"]).output.strip() != b"PONG":
            time.sleep(0.2)
        yield name
    finally:
        box.remove(force=True)


def _config(directory: Path, cache: str, targets: Sequence[str]) -> Path:
    """images.toml for the example at WORK/hello_world (one checkout path for every build)."""
    listed = ", ".join(f'"{t}"' for t in targets)
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "images.toml"
    config.write_text(
        f'[workspace]\npath = "{WORK / "hello_world"}"\n\n'
        f'[builder]\ndockerfile = "{DOCKERFILE}"\n\n{cache}\n'
        '[[image]]\nname = "hello-world"\nbinary = "hello_world"\npackage = "hello_world"\n'
        f"targets = [{listed}]\n"
    )
    return config


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("-t", "--target", action="append", dest="targets")
    args = parser.parse_args(argv)
    targets = args.targets or list(target_table.DEFAULT_TARGETS)
    start = common.environment()
    client = engine.client()
    shutil.rmtree(WORK / "hello_world", ignore_errors=True)
    shutil.copytree(
        common.ROOT / "examples" / "hello_world",
        WORK / "hello_world",
        ignore=shutil.ignore_patterns("target"),
    )
    cpu: dict[str, list[float]] = {}
    hits: dict[str, list[int]] = {}
    misses: dict[str, list[int]] = {}
    done_lines: dict[str, list[list[str]]] = {}
    digests: dict[str, set[str]] = {}

    def build(name: str, config: Path) -> float:
        volume = f"factory-bench-cc-{uuid.uuid4().hex[:8]}"
        common.ensure_volume(client, volume)
        try:
            with common.ContainerCpu(client, volume) as used:
                done = common.factory(["build", "--json"], config=config, volume=volume)
        finally:
            client.volumes.get(volume).remove(force=True)
        cpu.setdefault(name, []).append(used.seconds)
        counted = _HITS.findall(done.stderr)
        hits.setdefault(name, []).append(sum(int(found) for found, _ in counted))
        misses.setdefault(name, []).append(sum(int(missed) for _, missed in counted))
        lines = [x for x in done.stderr.splitlines() if " done in " in x or "sccache" in x]
        done_lines.setdefault(name, []).append(lines)
        for entry in json.loads(done.stdout):
            digests.setdefault(entry["target"], set()).add(entry["sha256"])
        return done.seconds

    with redis(client) as server:
        remote = _config(
            WORK / "redis",
            f'[cache]\nbackend = "redis"\nendpoint = "redis://127.0.0.1:6379"\n'
            f'network = "container:{server}"\n',
            targets,
        )
        plain = _config(WORK / "none", "", targets)
        fill = build("fill", remote)  # the cache's first runner, untimed in the comparison
        samples = common.alternate(
            {
                "no compile cache": lambda: build("no compile cache", plain),
                "warm Redis": lambda: build("warm Redis", remote),
            },
            args.rounds,
        )
    before = common.median(samples["no compile cache"])
    after = common.median(samples["warm Redis"])
    identical = all(len(d) == 1 for d in digests.values())
    rows = [
        [
            name,
            common.median(seconds),
            common.median(cpu[name]),
            common.median([float(h) for h in hits[name]]),
            common.median([float(m) for m in misses[name]]),
        ]
        for name, seconds in samples.items()
    ]
    table = common.markdown_table(["fresh runner", "s", "CPU-s", "sccache hits", "misses"], rows)
    markdown = (
        f"{table}\n{len(targets)} targets ({', '.join(targets)}); medians of {args.rounds} "
        f"alternated rounds; the cache was filled in {fill:.1f} s. Speed-up "
        f"**{common.ratio(before, after):.2f}x**; binaries "
        f"{'identical' if identical else 'DIFFER'} across every build. Load at start "
        f"{start['load_average']}.\n"
    )
    common.write_results(
        "compile_cache",
        {
            "environment": start,
            "targets": targets,
            "samples": samples,
            "cpu_seconds": cpu,
            "hits": hits,
            "misses": misses,
            "done_lines": done_lines,
            "fill_seconds": fill,
            "binaries": {t: sorted(d) for t, d in digests.items()},
        },
        markdown,
    )
    print(markdown)
    return 0 if identical else 1


if __name__ == "__main__":
    raise SystemExit(main())
