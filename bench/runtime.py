"""Runtime of factory's choices: mimalloc vs musl's malloc, and the x86-64 levels.

    uv run python bench/runtime.py [--runs N] [--threads T] [--rounds R] [--reps R]

Builds the example workspace's `workloads` binary with factory's compile command (static musl,
-Zbuild-std, the opt profile) in the builder, then runs it natively on this host, alternating:
1. allocator: `workloads alloc` (threads allocating small and medium blocks, half freed by
   another thread) for amd64 with musl's own malloc vs with the `mimalloc` feature;
2. ISA level: `workloads simd` (integer dot product, byte count, f32 axpy: loops LLVM
   vectorises) built for amd64, amd64_v3 and amd64_v4 (only when this CPU has AVX-512).
The times are the binary's own (kernel only, no process start). Uses factory's shared cache
volume (builds there are warm and harmless: they only add the workloads package).
"""

from __future__ import annotations

import argparse
import re
import resource
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common, rawbuild
from factory.build.job import CARGO_CACHE
from factory.engine import docker_engine as engine
from factory.model import targets as target_table

AVX512: tuple[str, ...] = ("avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl")
_LINE = re.compile(r"^(\w+)(?: threads=\d+)? seconds=([0-9.]+) checksum=(\d+)$")


def parse(stdout: str) -> dict[str, tuple[float, str]]:
    """`<kernel> seconds=<s> checksum=<n>` lines -> {kernel: (seconds, checksum)}."""
    found: dict[str, tuple[float, str]] = {}
    for line in stdout.splitlines():
        match = _LINE.match(line.strip())
        if match:
            found[match.group(1)] = (float(match.group(2)), match.group(3))
    return found


def cpu_flags() -> set[str]:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def side(
    binary: Path,
    args: Sequence[str],
    store: list[dict[str, tuple[float, str]]],
    cpu: list[float] | None = None,
) -> Callable[[], float]:
    """A measurement: the binary's own kernel times (wall), summed; its CPU time (user + sys,
    which a loaded machine inflates less than wall time) appended to `cpu`."""

    def measure() -> float:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        result = parse(common.run([str(binary), *args]).stdout)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if cpu is not None:
            cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        store.append(result)
        return sum(seconds for seconds, _ in result.values())

    return measure


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--reps", type=int, default=40000)
    args = parser.parse_args(argv)
    start = common.environment()
    client = engine.client()
    builder = common.builder(client)
    has_avx512 = set(AVX512) <= cpu_flags()
    levels = ["amd64", "amd64_v3"] + (["amd64_v4"] if has_avx512 else [])
    work = common.WORK / "runtime"
    binaries: dict[str, Path] = {}
    sizes: dict[str, int] = {}
    with rawbuild.builder_box(client, builder, CARGO_CACHE.volume) as box:
        plan = [("amd64 musl-malloc", "amd64", ()), ("amd64 mimalloc", "amd64", ("mimalloc",))]
        plan += [(level, level, ()) for level in levels[1:]]
        for name, target, features in plan:
            built = rawbuild.compile_binary(
                box,
                target_table.get(target),
                work / name.replace(" ", "-") / "workloads",
                package="workloads",
                binary="workloads",
                features=features,
            )
            binaries[name] = built.path
            sizes[name] = built.path.stat().st_size
            print(f"bench: built {name} in {built.seconds:.1f} s", file=sys.stderr)
    binaries["amd64"] = binaries["amd64 musl-malloc"]

    alloc_args = ["alloc", str(args.threads), str(args.rounds)]
    alloc_runs: dict[str, list[dict[str, tuple[float, str]]]] = {"musl malloc": [], "mimalloc": []}
    alloc_cpu: dict[str, list[float]] = {"musl malloc": [], "mimalloc": []}
    alloc = common.alternate(
        {
            name: side(
                binaries[f"amd64 {name.replace(' ', '-')}"],
                alloc_args,
                alloc_runs[name],
                alloc_cpu[name],
            )
            for name in ("musl malloc", "mimalloc")
        },
        args.runs,
    )
    simd_runs: dict[str, list[dict[str, tuple[float, str]]]] = {level: [] for level in levels}
    simd_cpu: dict[str, list[float]] = {level: [] for level in levels}
    simd_wall = common.alternate(
        {
            level: side(
                binaries[level], ["simd", str(args.reps)], simd_runs[level], simd_cpu[level]
            )
            for level in levels
        },
        args.runs,
    )
    kernels = sorted(simd_runs["amd64"][0])
    simd = {
        level: {k: common.median([run[k][0] for run in simd_runs[level]]) for k in kernels}
        for level in levels
    }
    checksums_agree = all(
        run[k][1] == simd_runs["amd64"][0][k][1]
        for level in levels
        for run in simd_runs[level]
        for k in kernels
    )

    musl, mi = common.median(alloc["musl malloc"]), common.median(alloc["mimalloc"])
    lines = ["### Allocator (amd64, `workloads " + " ".join(alloc_args) + "`)\n"]
    lines.append(
        common.markdown_table(
            ["allocator", "median (s)", "runs (s)", "binary (bytes)"],
            [
                [
                    "musl malloc",
                    musl,
                    ", ".join(f"{x:.2f}" for x in alloc["musl malloc"]),
                    sizes["amd64 musl-malloc"],
                ],
                [
                    "mimalloc",
                    mi,
                    ", ".join(f"{x:.2f}" for x in alloc["mimalloc"]),
                    sizes["amd64 mimalloc"],
                ],
            ],
        )
    )
    musl_cpu, mi_cpu = common.median(alloc_cpu["musl malloc"]), common.median(alloc_cpu["mimalloc"])
    lines.append(
        f"\nmimalloc is {common.ratio(musl, mi):.1f}x faster than musl's malloc here (wall time); "
        f"CPU time (user + sys) {musl_cpu:.2f} s vs {mi_cpu:.2f} s "
        f"({common.ratio(musl_cpu, mi_cpu):.1f}x).\n"
    )
    lines.append(f"\n### ISA level (`workloads simd {args.reps}`), median seconds per kernel\n")
    rows: list[list[object]] = []
    for k in kernels:
        base = simd["amd64"][k]
        row: list[object] = [k]
        for level in levels:
            row += [simd[level][k], common.ratio(base, simd[level][k])]
        rows.append(row)
    headers = ["kernel"] + [h for level in levels for h in (f"{level} (s)", f"{level} speed-up")]
    lines.append(common.markdown_table(headers, rows))
    if not has_avx512:
        lines.append("\namd64_v4 not run: this CPU lacks AVX-512 (" + ", ".join(AVX512) + ").\n")
    lines.append(
        f"\nAll levels compute the same checksums: {'yes' if checksums_agree else 'NO'}. "
        "Whole run, median CPU time (user + sys) / wall: "
        + ", ".join(
            f"{lv} {common.median(simd_cpu[lv]):.2f} / {common.median(simd_wall[lv]):.2f} s"
            for lv in levels
        )
        + ".\n"
    )
    common.write_results(
        "runtime",
        {
            "environment": start,
            "alloc_args": alloc_args,
            "alloc_seconds": alloc,
            "alloc_speedup_mimalloc": common.ratio(musl, mi),
            "alloc_cpu_seconds": alloc_cpu,
            "simd_cpu_seconds": simd_cpu,
            "simd_wall_seconds": simd_wall,
            "simd_reps": args.reps,
            "simd_median_seconds": simd,
            "simd_runs": {
                lv: [{k: v[0] for k, v in r.items()} for r in runs]
                for lv, runs in simd_runs.items()
            },
            "checksums_agree": checksums_agree,
            "binary_sizes": sizes,
            "avx512": has_avx512,
        },
        "".join(lines),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
