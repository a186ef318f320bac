"""factory.build.warm_start: the seed and prepare scripts, run for real on this host in a
temporary cache layout (sh, cp, flock and mv are the same as in the builder), with a stand-in
for cargo that writes a file into the directory its --target-dir names."""

from __future__ import annotations

import fcntl
import os
import subprocess
from pathlib import Path

from factory.build import warm_start

_TARGET_DIR = 'while [ $# -gt 0 ]; do [ "$1" = --target-dir ] && dir="$2"; shift; done; '
FAKE_CARGO = [
    "sh",
    "-c",
    _TARGET_DIR + 'mkdir -p "$dir/release" && echo std > "$dir/std.rlib"',
    "cargo",
]


def _run(argv: list[str], **env: str) -> str:
    done = subprocess.run(
        argv, check=True, capture_output=True, text=True, env={**os.environ, **env}
    )
    return done.stdout


def _seed(root: Path, builder: str, name: str = "s1") -> Path:
    return root / "std" / builder / name


def test_a_seed_is_built_once_and_other_builders_seeds_go(tmp_path: Path) -> None:
    stale = _seed(tmp_path, "old")
    stale.mkdir(parents=True)
    seed = _seed(tmp_path, "new")
    _run(warm_start.seed_command(str(seed), "t1", FAKE_CARGO), **warm_start.SEED_ENVIRONMENT)
    assert (seed / "std.rlib").read_text() == "std\n"
    assert not stale.parent.exists()
    crate_files = list(tmp_path.rglob("Cargo.toml"))
    assert crate_files == [], "the seed crate is built in a private directory, then removed"
    (seed / "std.rlib").write_text("kept")
    _run(warm_start.seed_command(str(seed), "t2", FAKE_CARGO), **warm_start.SEED_ENVIRONMENT)
    assert (seed / "std.rlib").read_text() == "kept", "an existing seed is never rebuilt"


def test_a_failing_seed_build_leaves_no_seed(tmp_path: Path) -> None:
    seed = _seed(tmp_path, "b")
    failing = ["sh", "-c", _TARGET_DIR + 'mkdir -p "$dir"; exit 3', "cargo"]
    done = subprocess.run(
        warm_start.seed_command(str(seed), "t", failing),
        env={**os.environ, **warm_start.SEED_ENVIRONMENT},
        capture_output=True,
    )
    assert done.returncode == 3
    assert not seed.exists()
    assert list(seed.parent.iterdir()) == [], "nothing half-built is left"


def _target(root: Path, builder: str, target: str) -> Path:
    return root / "target" / "ws" / builder / target / "opt"


def _sibling(root: Path, builder: str, target: str, unit: str) -> Path:
    sibling = _target(root, builder, target)
    (sibling / "release").mkdir(parents=True)
    (sibling / "release" / ".cargo-lock").touch()
    (sibling / "release" / unit).write_text(target)
    (sibling / "x86_64-unknown-linux-musl").mkdir()
    return sibling


def test_a_new_target_directory_starts_from_the_seed_and_a_siblings_host_half(
    tmp_path: Path,
) -> None:
    seed = _seed(tmp_path, "b")
    seed.mkdir(parents=True)
    (seed / "std.rlib").write_text("std")
    v1 = _sibling(tmp_path, "b", "amd64", "build-script")
    stale = _target(tmp_path, "old-builder", "amd64")
    stale.mkdir(parents=True)
    new = _target(tmp_path, "b", "amd64_v2")
    out = _run(warm_start.prepare_command(str(new), str(seed), "release", "t", [str(v1)]))
    start = warm_start.Start.parse(out)
    assert start == warm_start.Start(seed=True, sibling=str(v1))
    assert (new / "std.rlib").read_text() == "std"
    assert (new / "release" / "build-script").read_text() == "amd64"
    assert not (new / "x86_64-unknown-linux-musl").exists(), "only the host half is shared"
    assert not stale.parent.parent.exists(), "other builders' directories are removed"
    assert v1.is_dir()
    again = _run(warm_start.prepare_command(str(new), str(seed), "release", "t", [str(v1)]))
    assert warm_start.Start.parse(again) == warm_start.Start(seed=False, sibling=None)


def test_a_sibling_being_built_is_skipped_for_an_idle_one(tmp_path: Path) -> None:
    busy = _sibling(tmp_path, "b", "amd64", "unit")
    idle = _sibling(tmp_path, "b", "amd64_v2", "unit")
    new = _target(tmp_path, "b", "amd64_v3")
    missing_seed = tmp_path / "std" / "b" / "none"
    with (busy / "release" / ".cargo-lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # what cargo holds while it builds
        out = _run(
            warm_start.prepare_command(
                str(new), str(missing_seed), "release", "t", [str(busy), str(idle)]
            )
        )
    assert warm_start.Start.parse(out) == warm_start.Start(seed=False, sibling=str(idle))
    assert (new / "release" / "unit").read_text() == "amd64_v2"


def test_with_no_seed_and_no_sibling_the_directory_starts_empty(tmp_path: Path) -> None:
    new = _target(tmp_path, "b", "arm64")
    never_built = _target(tmp_path, "b", "arm64_v8_1a")
    out = _run(
        warm_start.prepare_command(
            str(new), str(tmp_path / "nope"), "release", "t", [str(never_built)]
        )
    )
    assert warm_start.Start.parse(out) == warm_start.Start(seed=False, sibling=None)
    assert new.is_dir()
    assert list(new.iterdir()) == []


def test_one_seed_per_flags_builder_and_triple() -> None:
    env = {"CARGO_ENCODED_RUSTFLAGS": "-Ctarget-cpu=x"}
    seed = warm_start.seed_dir("sha256:1", "x86_64-unknown-linux-musl", env)
    assert seed.startswith(warm_start.STD_SEEDS + "/")
    assert warm_start.seed_dir("sha256:1", "x86_64-unknown-linux-musl", dict(env)) == seed
    other_flags = {**env, "CARGO_ENCODED_RUSTFLAGS": "-Ctarget-cpu=y"}
    assert warm_start.seed_dir("sha256:1", "x86_64-unknown-linux-musl", other_flags) != seed
    assert warm_start.seed_dir("sha256:2", "x86_64-unknown-linux-musl", env) != seed
    assert warm_start.seed_dir("sha256:1", "aarch64-unknown-linux-musl", env) != seed
