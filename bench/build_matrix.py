"""Build the example for every target with `factory build`, cold then warm: time and size.

    uv run python bench/build_matrix.py [-t TARGET]...

Cold: the target's cargo target directory in the benchmarks' own cache volume is deleted first,
so the time includes compiling Rust's standard library (-Zbuild-std), the crates and the example.
Warm: `factory build` again with nothing changed (cargo finds everything fresh and relinks
nothing). Crate vendoring (network, once per Cargo.lock) is not counted. Every run goes through
factory's CLI with its own images.toml copy, so dist/ of the repository is left alone.
Writes bench/results/build_matrix.json and .md.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from factory.engine import docker_engine as engine
from factory.model import targets as target_table

_FETCH = re.compile(r"fetch: done in ([0-9.]+) s")


@dataclass(frozen=True, kw_only=True)
class Row:
    target: str
    cold_seconds: float | None
    warm_seconds: float | None
    size: int | None
    sha256: str | None
    error: str | None = None


def _build(config: Path, target: str, volume: str) -> tuple[float, dict[str, object]]:
    done = common.factory(["build", "-t", target, "--json"], config=config, volume=volume)
    fetch = sum(float(x) for x in _FETCH.findall(done.stderr))
    (artifact,) = json.loads(done.stdout)
    return done.seconds - fetch, artifact


def measure(target: str, config: Path, clear: Callable[[Sequence[str]], None], volume: str) -> Row:
    try:
        clear([target])
        cold, _ = _build(config, target, volume)
        warm, artifact = _build(config, target, volume)
    except RuntimeError as err:
        print(f"bench: {target} FAILED:\n{err}", file=sys.stderr)
        return Row(
            target=target,
            cold_seconds=None,
            warm_seconds=None,
            size=None,
            sha256=None,
            error=str(err)[-3000:],
        )
    print(f"bench: {target}: cold {cold:.1f} s, warm {warm:.1f} s", file=sys.stderr)
    return Row(
        target=target,
        cold_seconds=round(cold, 2),
        warm_seconds=round(warm, 2),
        size=int(str(artifact["size"])),
        sha256=str(artifact["sha256"]),
    )


def markdown(rows: Sequence[Row]) -> str:
    table = [
        [
            r.target,
            r.cold_seconds if r.cold_seconds is not None else "FAILED",
            r.warm_seconds if r.warm_seconds is not None else "-",
            r.size if r.size is not None else "-",
            common.human_bytes(r.size) if r.size is not None else "-",
        ]
        for r in rows
    ]
    built = [r for r in rows if r.cold_seconds is not None]
    summary = (
        f"\n{len(built)} of {len(rows)} targets built; median cold "
        f"{common.median([r.cold_seconds or 0.0 for r in built]):.1f} s, median warm "
        f"{common.median([r.warm_seconds or 0.0 for r in built]):.1f} s.\n"
        if built
        else f"\nNone of {len(rows)} targets built.\n"
    )
    headers = ["target", "cold (s)", "warm (s)", "binary (bytes)", "binary"]
    return common.markdown_table(headers, table) + summary


def merge(parts: Sequence[str]) -> int:
    """Combine the rows of several parts (run side by side on separate volumes)."""
    documents = [json.loads((common.RESULTS / f"{p}.json").read_text()) for p in parts]
    found: dict[str, Row] = {}
    for document in documents:  # a measured row wins over a failed (or interrupted) one
        for row in (Row(**r) for r in document["rows"]):
            if row.target not in found or found[row.target].error is not None:
                found[row.target] = row
    rows = [found[t.name] for t in target_table.TARGETS if t.name in found]
    common.write_results(
        "build_matrix",
        {
            "environment": documents[0]["environment"],
            "parts": {p: d["environment"] for p, d in zip(parts, documents, strict=True)},
            "builder": documents[0]["builder"],
            "profile": "opt",
            "rows": [asdict(r) for r in rows],
        },
        markdown(rows),
    )
    return 0 if len(rows) == len(target_table.TARGETS) else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("-t", "--target", action="append", default=[])
    parser.add_argument("--volume", default=common.BENCH_VOLUME, help="the cache volume")
    parser.add_argument("--results", default="build_matrix", help="results name (a part)")
    parser.add_argument(
        "--merge",
        nargs="+",
        metavar="NAME",
        help="merge these parts' results into build_matrix, in table order",
    )
    args = parser.parse_args(argv)
    if args.merge:
        return merge(args.merge)
    names = [t.name for t in target_table.select(args.target or ["all"])]
    start = common.environment()
    config = common.bench_config(common.WORK / args.results)
    client = engine.client()
    common.ensure_volume(client)
    builder = common.builder(client)

    def clear(names: Sequence[str]) -> None:
        common.clear_targets(client, builder, names, volume=args.volume)

    rows: list[Row] = []
    for name in names:  # results written after every target: a long run keeps what it measured
        rows.append(measure(name, config, clear, args.volume))
        document = {
            "environment": start,
            "builder": builder.tag,
            "profile": "opt",
            "rows": [asdict(r) for r in rows],
        }
        common.write_results(args.results, document, markdown(rows), echo=name == names[-1])
    return 0 if all(r.error is None for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
