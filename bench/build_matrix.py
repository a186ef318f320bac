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
from factory import engine
from factory import targets as target_table

_FETCH = re.compile(r"fetch: done in ([0-9.]+) s")


@dataclass(frozen=True, kw_only=True)
class Row:
    target: str
    cold_seconds: float | None
    warm_seconds: float | None
    size: int | None
    sha256: str | None
    error: str | None = None


def _build(config: Path, target: str) -> tuple[float, dict[str, object]]:
    done = common.factory(["build", "-t", target, "--json"], config=config)
    fetch = sum(float(x) for x in _FETCH.findall(done.stderr))
    (artifact,) = json.loads(done.stdout)
    return done.seconds - fetch, artifact


def measure(target: str, config: Path, clear: Callable[[Sequence[str]], None]) -> Row:
    try:
        clear([target])
        cold, _ = _build(config, target)
        warm, artifact = _build(config, target)
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("-t", "--target", action="append", default=[])
    args = parser.parse_args(argv)
    names = [t.name for t in target_table.select(args.target or ["all"])]
    start = common.environment()
    config = common.bench_config(common.WORK / "build_matrix")
    client = engine.client()
    common.ensure_volume(client)
    builder = common.builder(client)

    def clear(names: Sequence[str]) -> None:
        common.clear_targets(client, builder, names)

    rows: list[Row] = []
    for name in names:  # results written after every target: a long run keeps what it measured
        rows.append(measure(name, config, clear))
        document = {
            "environment": start,
            "builder": builder.tag,
            "profile": "opt",
            "rows": [asdict(r) for r in rows],
        }
        common.write_results("build_matrix", document, markdown(rows), echo=name == names[-1])
    return 0 if all(r.error is None for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
