"""Build the canary set of published crates through `factory image`: what built, cold time, size.

    uv run python bench/canary/run.py [NAME]... [-t TARGET]... [--results NAME]
    uv run python bench/canary/run.py rustls-cert-gen -t all --results canary_matrix --audit

Each canary (bench/canary/canaries.toml, fetched by fetch.py) is built unmodified, with its own
Cargo.lock, for each target (default amd64 and arm64) by `factory image -t TARGET --json` in a
cache volume of this run's own, so every build is cold: Rust's standard library, every crate and
every build script's C, C++ and assembly are compiled. Vendoring the crates (network, once per
canary) is timed apart and left out of the cold time. factory validates each binary (ELF audit,
smoke run under QEMU) before it packs it; the row says whether that passed.

--audit adds, for x86-64 targets, an instruction audit of the object files the canary's
`*-sys`/C crates compiled (ring's, for the small canary): how many instructions of each x86-64
level they hold, showing that the level's -march reached the C code. Writes
bench/results/<results>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench import common
from bench.canary import fetch
from factory.build.cargo_invocation import target_dir
from factory.build.job import CARGO_CACHE
from factory.engine import docker_engine as engine
from factory.engine.builder import BuilderImage
from factory.model import targets as target_table

_FETCH = re.compile(r"fetch: done in ([0-9.]+) s")
_INSTRUCTION = re.compile(r"^\s*[0-9a-f]+:\s+(\S[^\n]*)$", re.MULTILINE)

# Mnemonics (or operands) that only a level's -march lets clang emit, checked from the top.
LEVEL_MARKS: dict[str, re.Pattern[str]] = {
    "v4": re.compile(r"%zmm|%k[1-7]\b|\{%k"),
    "v3": re.compile(r"%ymm|\b(?:mulx|shlx|shrx|sarx|rorx|andn|bzhi|pdep|pext|movbe)[lq]?\b|^v"),
    "v2": re.compile(r"\b(?:popcnt|pshufb|pcmpgtq|ptest|pminsd|pmaxsd|pmulld|crc32[bwlq]?)\b"),
}


@dataclass(frozen=True, kw_only=True)
class Row:
    canary: str
    target: str
    passed: bool
    cold_seconds: float | None
    fetch_seconds: float
    size: int | None
    smoke: str
    audit: dict[str, int] | None = None
    error: str | None = None


def _config(canary: fetch.Canary, source: Path, target: str) -> Path:
    directory = common.WORK / "canary" / canary.name / target
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "images.toml"
    config.write_text(canary.images_toml(source, [target]))
    return config


def _audit(volume: str, workspace: Path, target: str, builder: BuilderImage) -> dict[str, int]:
    """Instructions per x86-64 level in the objects the build scripts compiled for `target`."""
    directory = target_dir(workspace, builder.id, target_table.get(target), "opt")
    # Only objects compiled from C carry clang's .comment; assembled .S files (ring's
    # pregenerated assembly holds AVX2 at every level) do not, and are left out.
    script = (
        f'for o in $(find {directory} -path "*/build/*/out/*" -name "*.o"); do '
        'llvm-readelf-21 -S "$o" | grep -q "\\.comment" && '
        'llvm-objdump-21 -d --no-show-raw-insn "$o"; done; true'
    )
    client = engine.client()
    spec = engine.ContainerSpec(
        image=builder.tag,
        purpose="bench",
        mounts=(engine.Mount(source=volume, target=CARGO_CACHE.path),),
    )
    with engine.container(client, spec) as box:
        listing = box.run(["sh", "-c", script]).stdout
    counts = {"objects": listing.count("file format elf64-x86-64")}
    lines = [m.group(1) for m in _INSTRUCTION.finditer(listing)]
    counts["instructions"] = len(lines)
    for level, pattern in LEVEL_MARKS.items():
        counts[level] = sum(1 for x in lines if pattern.search(x))
    return counts


def measure(
    canary: fetch.Canary, source: Path, target: str, volume: str, audit: BuilderImage | None
) -> Row:
    """One cold build of `canary` for `target`; `audit` is the builder to audit with."""
    config = _config(canary, source, target)
    dist = config.parent / "dist"
    shutil.rmtree(dist, ignore_errors=True)  # no stamp of an earlier run: this build is cold
    try:
        done = common.factory(["image", "-t", target, "--json"], config=config, volume=volume)
        error = None
    except RuntimeError as err:
        done, error = None, str(err)[-3000:]
    fetched = sum(float(x) for x in _FETCH.findall(done.stderr)) if done else 0.0
    entry: dict[str, object] = {}
    report = dist / "report.json"
    if report.is_file():
        results = json.loads(report.read_text())["results"]
        entry = next((r for r in results if r["target"] == target), {})
    smoke = entry.get("smoke") if isinstance(entry.get("smoke"), dict) else {}
    assert isinstance(smoke, dict)
    row = Row(
        canary=canary.name,
        target=target,
        passed=error is None and bool(entry.get("passed")),
        cold_seconds=round(done.seconds - fetched, 1) if done else None,
        fetch_seconds=round(fetched, 1),
        size=int(str(entry["size"])) if "size" in entry else None,
        smoke=str(smoke.get("status", "-")),
        audit=(
            _audit(volume, source, target, audit)
            if audit is not None and target.startswith("amd64")
            else None
        ),
        error=error,
    )
    state = "ok" if row.passed else "FAILED"
    print(f"bench: {canary.name} {target}: {state}, cold {row.cold_seconds} s", file=sys.stderr)
    return row


def markdown(rows: Sequence[Row]) -> str:
    table = [
        [
            r.canary,
            r.target,
            "yes" if r.passed else "FAILED",
            r.cold_seconds if r.cold_seconds is not None else "-",
            r.fetch_seconds,
            common.human_bytes(r.size) if r.size is not None else "-",
            r.smoke,
            ", ".join(f"{k} {v}" for k, v in r.audit.items()) if r.audit else "-",
        ]
        for r in rows
    ]
    headers = ["canary", "target", "built + validated", "cold (s)", "vendoring (s)", "binary",
               "smoke", "object audit"]  # fmt: skip
    passed = sum(r.passed for r in rows)
    return common.markdown_table(headers, table) + f"\n{passed} of {len(rows)} passed.\n"


def merge(parts: Sequence[str], results: str) -> int:
    """One table from the results of several runs (e.g. one canary a run), in their order."""
    documents = [json.loads((common.RESULTS / f"{p}.json").read_text()) for p in parts]
    rows = [Row(**r) for d in documents for r in d["rows"]]
    common.write_results(
        results,
        {
            "environment": documents[0]["environment"],
            "parts": {p: d["environment"] for p, d in zip(parts, documents, strict=True)},
            "builder": documents[0]["builder"],
            "rows": [asdict(r) for r in rows],
        },
        markdown(rows),
    )
    return 0 if all(r.passed for r in rows) else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("names", nargs="*", help="canaries (default: all)")
    parser.add_argument("--merge", nargs="+", metavar="RESULTS", help="merge these results")
    parser.add_argument("-t", "--target", action="append", default=[])
    parser.add_argument("--results", default="canary", help="results name")
    parser.add_argument("--audit", action="store_true", help="audit the x86-64 C objects")
    args = parser.parse_args(argv)
    if args.merge:
        return merge(args.merge, args.results)
    canaries = fetch.select(fetch.load_canaries(fetch.CANARIES), args.names, small=False)
    names = [t.name for t in target_table.select(args.target or ["amd64", "arm64"])]
    start = common.environment()
    volume = f"factory-canary-{time.strftime('%Y%m%d%H%M%S')}-{os.getpid()}"
    client = engine.client()
    common.ensure_volume(client, volume)
    builder = common.builder(client)
    rows: list[Row] = []
    try:
        for canary in canaries:
            _, source, _ = fetch.fetch(canary, fetch.DEFAULT_OUT, None)
            audit = builder if args.audit else None
            rows.extend(measure(canary, source, t, volume, audit) for t in names)
    finally:
        client.volumes.get(volume).remove(force=True)
    common.write_results(
        args.results,
        {"environment": start, "builder": builder.tag, "rows": [asdict(r) for r in rows]},
        markdown(rows),
    )
    return 0 if all(r.passed for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
