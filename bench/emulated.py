"""Cross-compiling with factory vs compiling natively in an emulated arm64 container.

    uv run python bench/emulated.py [--runs N] [--cap SECONDS]

The emulated side is what `docker buildx build --platform linux/arm64` does on an amd64 host: an
arm64 Debian trixie container (every instruction of rustc, cargo and the linker run by QEMU
through binfmt_misc) compiles the same workspace with Debian's Rust 1.96 (rustc-web, the
builder's compiler) for aarch64-unknown-linux-gnu, offline against crates vendored on the host,
with the workspace's release profile (the same opt-level, LTO, codegen-units as factory), and
Debian's prebuilt standard library.

The factory side is `factory build -t arm64` with every target directory of the cache deleted
first, so that it compiles every crate, build script and proc-macro cold, as the emulated side
does, but with the builder's std seed kept: factory compiles std once per builder (as Debian
compiled the emulated side's std once, when it built the package), so **neither side compiles
std** in a timed build: the same work on both sides.

The two sides alternate; an emulated build that exceeds --cap is stopped and counted as the cap
(the ratio is then a lower bound). Needs QEMU in binfmt_misc: `factory doctor --fix`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import docker

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from factory.build import warm_start
from factory.build.job import CARGO_CACHE
from factory.engine import docker_engine as engine
from factory.engine.builder import BuilderImage

IMAGE = "factory-bench/debian-arm64:trixie-rust"
PACKAGES = "rustc-web,cargo-web,gcc,libc6-dev,ca-certificates"
VOLUME = "factory-bench-cross"
WORKSPACE = common.ROOT / "examples/hello_world"


def ensure_arm64_image(client: docker.DockerClient, builder: BuilderImage) -> None:
    """Bootstrap an arm64 trixie root filesystem with Rust (mmdebstrap runs the arm64 package
    scripts through binfmt_misc) and import it; the apt sources (trixie and trixie-backports)
    are the builder's, so both images take Rust from the same suite."""
    try:
        client.images.get(IMAGE)
        return
    except docker.errors.ImageNotFound:
        pass
    work = common.WORK / "emulated"
    work.mkdir(parents=True, exist_ok=True)
    sources = work / "trixie.list"
    listing = client.containers.run(
        builder.tag,
        ["sh", "-c", "cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list"],
        remove=True,
    )
    sources.write_bytes(listing)
    rootfs = work / "arm64.tar"
    print("bench: bootstrapping an arm64 trixie root filesystem with Rust", file=sys.stderr)
    common.run(
        [
            "mmdebstrap",
            "--arch=arm64",
            "--variant=minbase",
            "--quiet",
            '--aptopt=APT::Default-Release "trixie-backports"',
            f"--include={PACKAGES}",
            "trixie",
            str(rootfs),
            str(sources),
        ]
    )
    common.run(
        [
            "docker",
            "import",
            "-c",
            f"LABEL {engine.LABEL}=true",
            "-c",
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            str(rootfs),
            IMAGE,
        ]
    )
    rootfs.unlink()


def vendor() -> tuple[Path, Path]:
    """Vendor the workspace's crates on the host (network, not timed); the config for /vendor."""
    directory = common.WORK / "emulated" / "vendor"
    done = common.run(
        ["cargo", "vendor", "--locked", "--versioned-dirs", str(directory)], cwd=WORKSPACE
    )
    config = common.WORK / "emulated" / "vendor.toml"
    config.write_text(done.stdout.replace(str(directory), "/vendor"))
    return directory, config


def emulated_build(directory: Path, config: Path, cap: float) -> tuple[float, bool, str]:
    """One cold native arm64 build under QEMU; (seconds, finished, the binary's output)."""
    script = (
        "set -e; cargo build --release --locked --offline --config /bench/cargo/vendor.toml "
        "-p hello_world --target-dir /tmp/target; file=/tmp/target/release/hello_world; "
        'echo "machine: $(uname -m)"; "$file"'
    )
    name = f"factory-bench-emulated-{int(time.time())}"
    argv = [
        "docker",
        "run",
        "--rm",
        "--name",
        name,
        "--network",
        "none",
        "--label",
        f"{engine.LABEL}=true",
        "-v",
        f"{WORKSPACE}:/src:ro",
        "-v",
        f"{directory}:/vendor:ro",
        "-v",
        f"{config}:/bench/cargo/vendor.toml:ro",
        "-w",
        "/src",
        IMAGE,
        "sh",
        "-c",
        script,
    ]
    started = time.monotonic()
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=cap)
    except subprocess.TimeoutExpired:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
        return cap, False, ""
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise RuntimeError(f"the emulated build failed:\n{proc.stderr[-4000:]}")
    return seconds, True, proc.stdout.strip()


def clear_target_directories(client: docker.DockerClient, builder: BuilderImage) -> None:
    """Every target directory of the benchmark's volume, not the std seeds nor the crates."""
    spec = engine.ContainerSpec(
        image=builder.tag,
        purpose="bench",
        mounts=(engine.Mount(source=VOLUME, target=CARGO_CACHE.path),),
    )
    with engine.container(client, spec) as box:
        box.run(["rm", "-rf", warm_start.TARGETS])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cap", type=float, default=40 * 60, help="seconds per emulated build")
    args = parser.parse_args(argv)
    start = common.environment()
    client = engine.client()
    builder = common.builder(client)
    ensure_arm64_image(client, builder)
    common.ensure_volume(client, VOLUME)
    config = common.bench_config(common.WORK / "emulated" / "config")
    directory, vendor_config = vendor()
    # Vendoring and the std seed for factory's side (network, not timed): one build.
    common.factory(["build", "-t", "arm64"], config=config, volume=VOLUME)
    finished: list[bool] = []
    outputs: list[str] = []

    def factory_side() -> float:
        clear_target_directories(client, builder)
        return common.factory(["build", "-t", "arm64"], config=config, volume=VOLUME).seconds

    def emulated_side() -> float:
        seconds, done, output = emulated_build(directory, vendor_config, args.cap)
        finished.append(done)
        outputs.append(output)
        return seconds

    samples = common.alternate({"factory": factory_side, "emulated": emulated_side}, args.runs)
    fast, slow = common.median(samples["factory"]), common.median(samples["emulated"])
    speedup = common.ratio(slow, fast)
    bound = "" if all(finished) else ">= "
    table = common.markdown_table(
        ["side", "runs", "median (s)", "all runs (s)"],
        [
            [
                "factory (cross, cold crates, std seed of the builder)",
                len(samples["factory"]),
                fast,
                ", ".join(f"{x:.0f}" for x in samples["factory"]),
            ],
            [
                "emulated arm64 (QEMU, cold crates, Debian's prebuilt std)"
                + ("" if all(finished) else f" [stopped at the {args.cap:.0f} s cap]"),
                len(samples["emulated"]),
                slow,
                ", ".join(f"{x:.0f}" for x in samples["emulated"]),
            ],
        ],
    )
    markdown = table + f"\nfactory is {bound}{speedup:.1f}x faster (goal: at least 10x).\n"
    common.write_results(
        "emulated",
        {
            "environment": start,
            "samples": samples,
            "emulated_finished": finished,
            "emulated_output": outputs,
            "cap_seconds": args.cap,
            "median_factory_seconds": fast,
            "median_emulated_seconds": slow,
            "speedup": speedup,
            "speedup_is_lower_bound": not all(finished),
        },
        markdown,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
