"""The builder image before and after a change: build time without layer cache, and size.

    uv run python bench/builder_image.py [--before REV] [--runs N]

Builds dockerfiles/builder.Dockerfile (with its context) as it is at REV (default: the commit
before the real-world builder, b13cc51) and as it is in the working tree, alternated (A B, B A,
...), each with `docker build --no-cache` on the bootstrapped base. The working tree's builder
copies LLVM's C++ runtime from the runtimes image, which is built once before the runs (its own
time is reported apart, from factory's build when it had to build it). Writes
bench/results/builder_image.json and .md.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from factory.engine import builder as builder_image
from factory.engine import docker_engine as engine
from factory.model.config import DEFAULT_BASE

BASE = "factory-bootstrap/debian:trixie-slim"


def _context(directory: Path, revision: str | None) -> Path:
    """builder.Dockerfile and builder/ at `revision` (None: the working tree) in `directory`."""
    directory.mkdir(parents=True)
    if revision is None:
        shutil.copytree(common.ROOT / "dockerfiles" / "builder", directory / "builder")
        shutil.copy(common.ROOT / "dockerfiles" / "builder.Dockerfile", directory)
        return directory
    archive = subprocess.run(
        ["git", "archive", revision, "dockerfiles/builder.Dockerfile", "dockerfiles/builder"],
        cwd=common.ROOT, capture_output=True, check=True,
    ).stdout  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(directory)], input=archive, check=True)
    return directory / "dockerfiles"


def _build(context: Path, runtimes: str, tag: str) -> tuple[float, int]:
    done = common.run(
        ["docker", "build", "-q", "--no-cache", "-f", "builder.Dockerfile",
         "--build-arg", f"BASE={BASE}", "--build-arg", f"RUNTIMES={runtimes}", "-t", tag, "."],
        cwd=context,
    )  # fmt: skip
    size = int(common.run(["docker", "image", "inspect", "-f", "{{.Size}}", tag]).stdout)
    common.run(["docker", "rmi", tag])
    return done.seconds, size


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--before", default="b13cc51", help="the revision to compare with")
    parser.add_argument("--runs", type=int, default=1, help="builds of each side")
    args = parser.parse_args(argv)
    start = common.environment()
    runtimes = builder_image.ensure_runtimes(engine.client(), base=DEFAULT_BASE)
    sizes: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="factory-bench-builder-") as work:
        contexts = {
            "before": _context(Path(work) / "before", args.before),
            "after": _context(Path(work) / "after", None),
        }

        def side(name: str) -> Callable[[], float]:
            def build() -> float:
                seconds, sizes[name] = _build(contexts[name], runtimes.tag, f"factory-bench:{name}")
                return seconds

            return build

        samples = common.alternate({name: side(name) for name in contexts}, args.runs)
    rows = [
        [name, f"{common.median(samples[name]):.0f}", common.human_bytes(sizes[name])]
        for name in ("before", "after")
    ]
    ratio = common.ratio(common.median(samples["after"]), common.median(samples["before"]))
    markdown = common.markdown_table(["builder", "build, no cache (s)", "image"], rows) + (
        f"\nafter / before: {ratio:.2f}x the time, {sizes['after'] / sizes['before']:.2f}x the "
        f"size (runtimes image {runtimes.tag}, built once, not included).\n"
    )
    common.write_results(
        "builder_image",
        {"environment": start, "before": args.before, "samples": samples, "sizes": sizes},
        markdown,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
