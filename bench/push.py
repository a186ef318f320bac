"""Pushing one OCI layout: factory vs `skopeo copy --all`, into the same local registry.

    uv run python bench/push.py [--runs N]

The layout is the default images' (dist/oci/hello-world of the benchmarks' pipeline). Each run
pushes into a fresh repository, so every blob is uploaded. factory: `factory image --no-build
--push --no-sbom --registry REPO` (the layout is up to date, so this is the push; the CLI's start
is counted); and factory's push alone, `factory.registry.push_layout()` called in-process
(no CLI start). skopeo: `skopeo copy --all oci:LAYOUT:latest docker://REPO:latest`. factory also
writes one tag per target (`latest-amd64-v3`...), skopeo only the index tag.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from factory.build.job import CARGO_CACHE
from factory.distribution import push as registry


def layout_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in (directory / "blobs").rglob("*") if p.is_file())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    start = common.environment()
    config = common.pipeline_config()
    common.image_push(config, f"{common.REGISTRY}/bench-noop")  # the layout, up to date
    oci = common.layout(config)

    def factory_side() -> float:
        return common.factory(
            [
                "image",
                "--no-build",
                "--push",
                "--no-sbom",
                "--registry",
                common.unique("bench-push-f"),
            ],
            config=config,
            volume=CARGO_CACHE.volume,
        ).seconds

    def skopeo_side() -> float:
        return common.run(
            [
                "skopeo",
                "copy",
                "--all",
                "--quiet",
                "--dest-tls-verify=false",
                f"oci:{oci}:latest",
                f"docker://{common.unique('bench-push-s')}/hello-world:latest",
            ]
        ).seconds

    def in_process() -> float:
        started = time.monotonic()
        registry.push_layout(oci, f"{common.unique('bench-push-p')}/hello-world")
        return time.monotonic() - started

    samples = common.alternate(
        {"factory": factory_side, "factory push_layout()": in_process, "skopeo": skopeo_side},
        args.runs,
    )
    mine, theirs = common.median(samples["factory"]), common.median(samples["skopeo"])
    core = common.median(samples["factory push_layout()"])
    markdown = common.markdown_table(
        ["pusher", "median (s)", "runs (s)"],
        [[name, common.median(v), ", ".join(f"{x:.2f}" for x in v)] for name, v in samples.items()],
    ) + (
        f"\nLayout: {common.human_bytes(layout_bytes(oci))} of blobs. factory/skopeo time ratio "
        f"{common.ratio(mine, theirs):.2f} for the CLI, {common.ratio(core, theirs):.2f} for "
        "factory's push alone, in-process (goal: at most 1).\n"
    )
    common.write_results(
        "push",
        {
            "environment": start,
            "samples": samples,
            "layout_bytes": layout_bytes(oci),
            "ratio_factory_to_skopeo": common.ratio(mine, theirs),
        },
        markdown,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
