"""What every benchmark shares: statistics, alternation, tables, results files, factory runs.

Pure helpers (median, ratio, percent, markdown_table, human sizes) are unit-tested in
tests/test_bench_common.py; the rest runs real commands.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import docker
import docker.errors

from factory.build.cargo_invocation import target_dir
from factory.build.job import CACHE_VARIABLE, CARGO_CACHE
from factory.engine import docker_engine as engine
from factory.engine.builder import BuilderImage, ensure_builder
from factory.model import targets as target_table

ROOT: Final = Path(__file__).resolve().parent.parent
RESULTS: Final = ROOT / "bench" / "results"
WORK: Final = Path(os.environ.get("FACTORY_BENCH_WORK", "/tmp/factory-bench"))
BENCH_VOLUME: Final = "factory-bench-cache"
"""The Cargo cache volume of the benchmarks (cold builds empty parts of it)."""
REGISTRY: Final = "127.0.0.1:5000"


# ---- pure helpers ---------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("median of no values")
    return float(statistics.median(values))


def ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator; infinite when the denominator is 0 and the numerator is not."""
    if denominator == 0:
        return 0.0 if numerator == 0 else float("inf")
    return numerator / denominator


def percent(part: float, whole: float) -> float:
    return 100.0 * ratio(part, whole)


def human_bytes(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(size) < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub Markdown table; columns whose cells are all numbers are right-aligned."""
    cells = [[_cell(value) for value in row] for row in rows]
    for row in cells:
        if len(row) != len(headers):
            raise ValueError(f"row {row} has {len(row)} cells, expected {len(headers)}")
    numeric = [
        bool(rows) and all(isinstance(row[i], int | float) for row in rows)
        for i in range(len(headers))
    ]
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---:" if right else "---" for right in numeric) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines) + "\n"


def _cell(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return str(value)
        return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def alternate(sides: Mapping[str, Callable[[], float]], runs: int) -> dict[str, list[float]]:
    """Run each side `runs` times, alternating, the order reversed every other round (ABBA...),
    so slow drifts of a shared machine's load hit both sides alike. Each side returns its
    measurement (seconds); returns the measurements per side."""
    samples: dict[str, list[float]] = {name: [] for name in sides}
    names = list(sides)
    for round_ in range(runs):
        for name in names if round_ % 2 == 0 else reversed(names):
            value = sides[name]()
            samples[name].append(value)
            print(f"bench: round {round_ + 1}/{runs} {name}: {value:.3f}", file=sys.stderr)
    return samples


# ---- the machine and the results files ----------------------------------------------------


def environment() -> dict[str, Any]:
    load = os.getloadavg()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": platform.machine(),
        "cpus": len(os.sched_getaffinity(0)),
        "load_average": [round(x, 2) for x in load],
        "commit": commit,
    }


def write_results(
    name: str, document: Mapping[str, Any], markdown: str, *, echo: bool = True
) -> Path:
    """bench/results/<name>.json (with the environment at start and end) and <name>.md."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    full = {"benchmark": name, "version": 1, **document, "environment_end": environment()}
    path.write_text(json.dumps(full, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(markdown)
    if echo:
        sys.stdout.write(markdown)
    return path


# ---- commands ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Timed:
    seconds: float
    stdout: str
    stderr: str


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    check: bool = True,
) -> Timed:
    """Run a command, timed (wall clock); raise with its stderr when it fails."""
    started = time.monotonic()
    proc = subprocess.run(
        list(argv),
        env={**os.environ, **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
    )
    seconds = time.monotonic() - started
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}"
        )
    return Timed(seconds=seconds, stdout=proc.stdout, stderr=proc.stderr)


def factory(
    args: Sequence[str], *, config: Path, volume: str = BENCH_VOLUME, warm_start: bool = True
) -> Timed:
    """`factory --config CONFIG ARGS`, timed, with the benchmarks' cache volume (and, with
    ``warm_start=False``, new target directories that start empty)."""
    return run(
        [sys.executable, "-m", "bench.factory_cli", "--config", str(config), *args],
        env={
            CACHE_VARIABLE: volume,
            "FACTORY_BENCH_WARM_START": "1" if warm_start else "0",
        },
        cwd=ROOT,
    )


def bench_config(directory: Path, *, targets: Sequence[str] | None = None) -> Path:
    """A copy of images.toml in `directory` (so dist/ lands there, not in the repository's),
    with the workspace still pointing into the repository (the builder is factory's own)."""
    text = (ROOT / "images.toml").read_text()
    replacements = {
        'path = "examples/hello_world"': f'path = "{ROOT / "examples/hello_world"}"',
    }
    for old, new in replacements.items():
        if old not in text:
            raise RuntimeError(f"images.toml changed: {old!r} not found; update bench/common.py")
        text = text.replace(old, new)
    if targets is not None:
        line = next(x for x in text.splitlines() if x.startswith("targets = ["))
        text = text.replace(line, "targets = [" + ", ".join(f'"{t}"' for t in targets) + "]")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "images.toml"
    path.write_text(text)
    return path


def ensure_volume(client: docker.DockerClient, name: str = BENCH_VOLUME) -> None:
    """The benchmarks' cache volume, labelled like factory's own (`factory clean` finds it)."""
    engine.ensure_volume(client, name)


def clear_targets(
    client: docker.DockerClient,
    builder: BuilderImage,
    names: Sequence[str],
    *,
    volume: str = BENCH_VOLUME,
) -> None:
    """Delete the cargo target directories of these targets (opt) in the benchmarks' volume:
    the next build compiles std, the crates and the example from scratch."""
    workspace = (ROOT / "examples/hello_world").resolve()
    directories = [target_dir(workspace, builder.id, target_table.get(n), "opt") for n in names]
    spec = engine.ContainerSpec(
        image=builder.tag,
        purpose="bench",
        mounts=(engine.Mount(source=volume, target=CARGO_CACHE.path),),
    )
    with engine.container(client, spec) as box:
        box.run(["rm", "-rf", *directories])


# ---- a pipeline of the default images, for the push, no-op and size benchmarks ----------------

PIPELINE: Final = WORK / "pipeline"
REGISTRY_CONTAINER: Final = "factory-registry-5000"


def pipeline_config() -> Path:
    return bench_config(PIPELINE)


def layout(config: Path, image: str = "hello-world") -> Path:
    return config.parent / "dist" / "oci" / image


def image_push(config: Path, repository: str, *extra: str) -> tuple[Timed, dict[str, Any]]:
    """`factory image --push --registry REPOSITORY --json` in the shared cache (warm builds)."""
    done = factory(
        ["image", "--push", "--registry", repository, "--json", *extra],
        config=config,
        volume=CARGO_CACHE.volume,
    )
    return done, json.loads(done.stdout)


def registry_rx_bytes() -> int:
    """Bytes the local registry's container has received on its network interface."""
    done = run(
        ["docker", "exec", REGISTRY_CONTAINER, "cat", "/sys/class/net/eth0/statistics/rx_bytes"]
    )
    return int(done.stdout.strip())


WRITE_METHODS: Final = ("PUT", "POST", "PATCH", "DELETE")


def registry_writes(repository: str) -> int:
    """Write requests (PUT, POST, PATCH, DELETE) the local registry has logged so far for the
    repository ``host/path`` (its access log names each request's method and path)."""
    path = repository.split("/", 1)[1]
    done = run(["docker", "logs", REGISTRY_CONTAINER])
    pattern = re.compile(rf'"(?:{"|".join(WRITE_METHODS)}) /v2/{re.escape(path)}/')
    return len(pattern.findall(done.stdout + done.stderr))


def unique(prefix: str) -> str:
    return f"{REGISTRY}/{prefix}-{time.strftime('%H%M%S')}-{os.getpid()}-{time.monotonic_ns()}"


def builder(client: docker.DockerClient) -> BuilderImage:
    """The builder image of images.toml's defaults (reused when up to date)."""
    return ensure_builder(
        client, dockerfile=ROOT / "dockerfiles/builder.Dockerfile", base="debian:trixie-slim"
    )


# ---- CPU-seconds of the containers that use a volume ----------------------------------------


def _container_cpu_ns(container_id: str) -> int | None:
    """What the kernel has charged the container so far (cgroup v1 or v2), in nanoseconds."""
    v1 = Path(f"/sys/fs/cgroup/cpuacct/docker/{container_id}/cpuacct.usage")
    v2 = Path(f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope/cpu.stat")
    try:
        if v1.is_file():
            return int(v1.read_text())
        if v2.is_file():
            for line in v2.read_text().splitlines():
                if line.startswith("usage_usec "):
                    return int(line.split()[1]) * 1000
    except (OSError, ValueError):
        return None
    return None


class ContainerCpu:
    """Samples, twice a second, the CPU time of every container that mounts ``volume`` (the
    benchmark's own cache volume, so other people's containers are not counted); the sum of
    each container's last sample is the side's CPU-seconds (a container's last half second can
    be missed)."""

    def __init__(self, client: docker.DockerClient, volume: str) -> None:
        self._client = client
        self._volume = volume
        self._seen: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(docker.errors.DockerException):
                for found in self._client.containers.list(filters={"volume": self._volume}):
                    used = _container_cpu_ns(str(found.id))
                    if used is not None:
                        self._seen[str(found.id)] = max(used, self._seen.get(str(found.id), 0))
            self._stop.wait(0.5)

    def __enter__(self) -> ContainerCpu:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def seconds(self) -> float:
        return sum(self._seen.values()) / 1e9
