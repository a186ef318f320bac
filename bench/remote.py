"""What a remote engine costs: the workspace upload, and `factory image` local vs remote mode.

    uv run python bench/remote.py [--runs N] [--targets amd64,arm64]

1. The upload alone (factory.engine.transfer): the example's workspace and this repository as
   a larger one, each uploaded --runs times into a fresh volume that is then removed: files,
   bytes of tar, seconds.
2. `factory --json image -t ...` (builder present, Cargo cache warm, a fresh dist/ each run, so
   build, validate and assemble all run) on the same engine in three modes, alternated ABC CBA:
   `local` (the workspace bind-mounted), `remote` (FACTORY_REMOTE_ENGINE=1 on the same socket:
   upload and copies, no proxy) and `proxy` (DOCKER_HOST=tcp://127.0.0.1 through
   tests/engine_proxy.py, which refuses host mounts; its Python relay adds its own cost).
   Wall time of the command and factory's own stage seconds.

Writes bench/results/remote.json and remote.md.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from factory import resources
from factory.engine import docker_engine as engine
from factory.engine import transfer
from factory.engine.builder import ensure_builder
from factory.model.config import DEFAULT_BASE
from tests import engine_proxy

WORKSPACES = {"example": common.ROOT / "examples" / "hello_world", "repository": common.ROOT}


def upload_costs(runs: int) -> dict[str, dict[str, Any]]:
    client = engine.client()
    image = ensure_builder(client, dockerfile=resources.dockerfile("builder"), base=DEFAULT_BASE)
    found: dict[str, dict[str, Any]] = {}
    for name, top in WORKSPACES.items():
        done = []
        for _ in range(runs):
            volume = f"factory-upload-bench-{uuid.uuid4().hex[:6]}"
            try:
                done.append(transfer.upload(client, image.tag, volume, top))
            finally:
                client.volumes.get(volume).remove(force=True)
        found[name] = {
            "files": done[0].files,
            "bytes": done[0].size,
            "seconds": [round(d.seconds, 3) for d in done],
        }
    return found


def pipeline(mode: str, targets: list[str], proxy: engine_proxy.EngineProxy) -> dict[str, Any]:
    env = {"DOCKER_HOST": "", "FACTORY_REMOTE_ENGINE": ""}
    if mode == "remote":
        env["FACTORY_REMOTE_ENGINE"] = "1"
    elif mode == "proxy":
        env["DOCKER_HOST"] = proxy.url
    with tempfile.TemporaryDirectory(prefix="factory-bench-remote-") as folder:
        config = common.bench_config(Path(folder), targets=targets)
        argv = [sys.executable, "-m", "factory", "--config", str(config), "--json", "image"]
        done = common.run(argv, env=env, cwd=common.ROOT)
    stages = json.loads(done.stdout)["stages"]["seconds"]
    return {"seconds": done.seconds, "stages": stages}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--targets", default="amd64,arm64")
    args = parser.parse_args(argv)
    targets = args.targets.split(",")
    started = common.environment()
    uploads = upload_costs(args.runs)
    results: dict[str, list[dict[str, Any]]] = {"local": [], "remote": [], "proxy": []}
    with engine_proxy.running() as proxy:

        def side(mode: str) -> float:
            result = pipeline(mode, targets, proxy)
            results[mode].append(result)
            return float(result["seconds"])

        common.alternate({m: functools.partial(side, m) for m in results}, args.runs)
        assert proxy.refused() == [], proxy.refused()
    rows = [
        [name, u["files"], common.human_bytes(u["bytes"]), f"{common.median(u['seconds']):.2f} s"]
        for name, u in uploads.items()
    ]
    table = common.markdown_table(["workspace", "files", "tar", "upload (median)"], rows)
    runs = [
        [
            mode,
            f"{common.median([r['seconds'] for r in done]):.1f} s",
            f"{common.median([r['stages'].get('build', 0.0) for r in done]):.1f} s",
            f"{common.median([r['stages'].get('validate', 0.0) for r in done]):.1f} s",
        ]
        for mode, done in results.items()
    ]
    timing = common.markdown_table(["mode", "factory image (median)", "build", "validate"], runs)
    heading = f"`factory image -t {args.targets}`, warm"
    markdown = f"{table}\n\n{heading}:\n\n{timing}\n"
    common.write_results(
        "remote",
        {"environment": started, "targets": targets, "uploads": uploads, "pipeline": results},
        markdown,
    )


if __name__ == "__main__":
    main()
