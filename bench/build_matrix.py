"""Build every target of the example, cold then warm, and record time and binary size.

    uv run python -m bench.build_matrix [-t TARGET]... [--out bench/results] [--no-cold]

Cold: the target's cache directory (its compiled std and crates) is deleted first, so the time
includes compiling the standard library with -Zbuild-std. Warm: the same build again with
nothing changed (the vendored crates are fetched once, before the first target, and not timed).
Writes build_matrix.json and build_matrix.md under --out; progress goes to stderr.

The bench compiles a private copy of the example (its cache directories are keyed by the
workspace's path), so clearing them never disturbs a `factory build` running at the same time.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import docker

from factory import config as cfg
from factory import console, engine
from factory import targets as target_table
from factory.builder import BuilderImage, ensure_builder
from factory.drivers import Artifact, cargo
from factory.errors import FactoryError

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, kw_only=True)
class Row:
    target: str
    cold_seconds: float | None
    warm_seconds: float
    size: int
    sha256: str


def _clear(
    client: docker.DockerClient, builder: BuilderImage, workspace: Path, target: str
) -> None:
    directory = cargo.target_dir(workspace, target_table.get(target), "opt")
    spec = engine.ContainerSpec(
        image=builder.tag,
        purpose="bench",
        mounts=(engine.Mount(source=cargo.CACHE_VOLUME, target=cargo.CACHE),),
    )
    with engine.container(client, spec) as box:
        box.run(["rm", "-rf", directory])


def _build(
    client: docker.DockerClient, builder: BuilderImage, config: cfg.Config, target: str
) -> tuple[float, Artifact]:
    image = config.image[0]
    started = time.monotonic()
    (artifact,) = cargo.build(
        client,
        builder,
        workspace_path=config.workspace_path,
        images=[image],
        targets_of=lambda _: (target_table.get(target),),
        profile="opt",
        dist=config.root / "dist",
    )
    return time.monotonic() - started, artifact


def _private_copy(config: cfg.Config) -> cfg.Config:
    """The config with its workspace copied to a fixed private path."""
    copy = Path(tempfile.gettempdir()) / "factory-bench-workspace"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(config.workspace_path, copy, ignore=shutil.ignore_patterns("target"))
    workspace = dataclasses.replace(config.workspace, path=str(copy))
    return dataclasses.replace(config, workspace=workspace)


def markdown(rows: Sequence[Row]) -> str:
    lines = [
        "| target | cold (s) | warm (s) | size (bytes) |",
        "|---|---:|---:|---:|",
    ]
    for row in rows:
        cold = f"{row.cold_seconds:.1f}" if row.cold_seconds is not None else "-"
        lines.append(f"| {row.target} | {cold} | {row.warm_seconds:.1f} | {row.size} |")
    return "\n".join(lines) + "\n"


def run(targets: Sequence[str], out: Path, cold: bool) -> list[Row]:
    config = _private_copy(cfg.load(ROOT / "images.toml"))
    client = engine.client()
    builder = ensure_builder(client, dockerfile=config.dockerfile_path, base=config.builder.base)
    rows: list[Row] = []
    for name in targets:
        cold_seconds: float | None = None
        if cold:
            _clear(client, builder, config.workspace_path, name)
            cold_seconds, _ = _build(client, builder, config, name)
        warm_seconds, artifact = _build(client, builder, config, name)
        rows.append(
            Row(
                target=name,
                cold_seconds=cold_seconds,
                warm_seconds=warm_seconds,
                size=artifact.size,
                sha256=artifact.sha256,
            )
        )
        console.info(f"bench: {name}: cold {cold_seconds} s, warm {warm_seconds:.1f} s")
        _write(rows, out, builder)
    return rows


def _write(rows: Sequence[Row], out: Path, builder: BuilderImage) -> None:
    out.mkdir(parents=True, exist_ok=True)
    document = {
        "version": 1,
        "builder": builder.tag,
        "host": {"machine": platform.machine(), "cpus": _cpus()},
        "profile": "opt",
        "rows": [asdict(row) for row in rows],
    }
    (out / "build_matrix.json").write_text(json.dumps(document, indent=2) + "\n")
    (out / "build_matrix.md").write_text(markdown(rows))


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("-t", "--target", action="append", default=[])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--no-cold", action="store_true")
    args = parser.parse_args(argv)
    try:
        chosen = target_table.select(args.target or ["all"])
        rows = run([t.name for t in chosen], args.out, cold=not args.no_cold)
    except FactoryError as err:
        console.error(str(err))
        return int(err.exit_code)
    sys.stdout.write(markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
