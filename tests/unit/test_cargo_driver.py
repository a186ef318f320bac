"""The Cargo driver's commands and environment, derived from the target table."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from factory.build import cargo_messages, job, vendor
from factory.build.binary import Binary
from factory.build.cargo_invocation import (
    CargoJob,
    Workspace,
    build_command,
    build_environment,
    rustflags,
    target_dir,
)
from factory.errors import BuildError, UsageError
from factory.model import targets
from factory.model.config import Profile
from factory.model.dist import Dist


def _job(name: str, profile: Profile = "opt") -> CargoJob:
    return CargoJob(
        job=job.Job(
            image="hello-world", binary="hello_world", target=targets.get(name), profile=profile
        ),
        package="hello_world",
    )


def test_build_command_is_offline_locked_and_builds_std() -> None:
    argv = build_command(_job("arm64_v8_2a"), "k", "/t")
    assert argv[:2] == ["cargo", "build"]
    for flag in ("--locked", "--offline", "-Zbuild-std=std,panic_abort", "--release"):
        assert flag in argv
    assert argv[argv.index("--target") + 1] == "aarch64-unknown-linux-musl"
    assert argv[argv.index("--config") + 1] == "/cache/vendor/lock-k.toml"
    assert argv[argv.index("--bin") + 1] == "hello_world"
    assert argv[argv.index("--target-dir") + 1] == "/t"
    assert "--jobs" not in argv
    parallel = build_command(_job("arm64_v8_2a"), "k", "/t", jobs=1)
    assert parallel[parallel.index("--jobs") + 1] == "1"


@pytest.mark.parametrize("profile", ["dbg", "fastbuild"])
def test_debug_profiles_do_not_pass_release(profile: Profile) -> None:
    assert "--release" not in build_command(_job("amd64", profile), "k", "/t")


@pytest.mark.parametrize("target", targets.TARGETS, ids=lambda t: t.name)
def test_environment_follows_the_target_table(target: targets.Target) -> None:
    env = build_environment(target, "opt")
    assert "RUSTFLAGS" not in env
    flags = env["CARGO_ENCODED_RUSTFLAGS"].split("\x1f")
    assert "-Ctarget-feature=+crt-static" in flags
    assert "-Clink-self-contained=no" in flags
    for flag in target.rustflags:
        assert flag in flags
    triple = target.triple.replace("-", "_")
    assert env[f"CFLAGS_{triple}"] == f"-march={target.c_march}"
    assert env[f"CXXFLAGS_{triple}"] == f"-march={target.c_march}"
    wrappers = f"/opt/factory/bin/{target.arch.gnu_name}-linux-musl"
    assert env[f"CC_{triple}"] == env["TARGET_CC"] == f"{wrappers}-cc"
    assert env[f"CXX_{triple}"] == env["TARGET_CXX"] == f"{wrappers}-c++"
    assert env[f"AR_{triple}"] == f"{wrappers}-ar"
    linker = env[f"CARGO_TARGET_{triple.upper()}_LINKER"]
    assert linker == f"/opt/factory/bin/{target.arch.gnu_name}-linux-musl-link"
    assert env["RUSTC_BOOTSTRAP"] == "1"
    assert not any(name in env for name in ("CARGO_TARGET_DIR", "CARGO_BUILD_JOBS"))


def test_level_flags() -> None:
    assert "-Ctarget-cpu=x86-64-v3" in rustflags(targets.get("amd64_v3"))
    assert "-Ctarget-feature=+v8.2a" in rustflags(targets.get("arm64_v8_2a"))
    assert "-Ctarget-feature=+v9.6a" in rustflags(targets.get("arm64_v9_6a"))
    baseline = rustflags(targets.get("amd64"))
    assert not any("target-cpu" in f for f in baseline)


def test_release_settings_are_the_seeds() -> None:
    env = build_environment(targets.get("amd64"), "opt")
    assert env["CARGO_PROFILE_RELEASE_OPT_LEVEL"] == "3"
    assert env["CARGO_PROFILE_RELEASE_CODEGEN_UNITS"] == "1"
    assert env["CARGO_PROFILE_RELEASE_LTO"] in {"thin", "fat"}
    assert env["CARGO_PROFILE_RELEASE_PANIC"] == "abort"
    assert env["CARGO_PROFILE_RELEASE_STRIP"] == "symbols"
    dbg = build_environment(targets.get("amd64"), "dbg")
    assert dbg["CARGO_PROFILE_DEV_DEBUG"] == "true"
    assert dbg["CARGO_PROFILE_DEV_STRIP"] == "none"
    fast = build_environment(targets.get("amd64"), "fastbuild")
    assert fast["CARGO_PROFILE_DEV_OPT_LEVEL"] == "0"
    assert fast["CARGO_PROFILE_DEV_STRIP"] == "none"


def test_target_dirs_are_per_workspace_target_and_profile() -> None:
    ws = Path("/w/a")
    dirs = {
        target_dir(ws, "sha256:1", targets.get(name), profile)
        for name in ("amd64", "amd64_v3")
        for profile in ("opt", "dbg")
    }
    assert len(dirs) == 4
    assert target_dir(ws, "sha256:1", targets.get("amd64"), "opt") != target_dir(
        Path("/w/b"), "sha256:1", targets.get("amd64"), "opt"
    )
    assert target_dir(ws, "sha256:1", targets.get("amd64"), "opt") != target_dir(
        ws, "sha256:2", targets.get("amd64"), "opt"
    )
    assert all(d.startswith("/cache/target/") for d in dirs)


def test_vendor_key_tracks_lockfile_and_builder() -> None:
    key = vendor.vendor_key(b"lock", "sha256:1")
    assert key == vendor.vendor_key(b"lock", "sha256:1")
    assert key != vendor.vendor_key(b"lock2", "sha256:1")
    assert key != vendor.vendor_key(b"lock", "sha256:2")


FAKE_CARGO = """#!/bin/sh
# cargo vendor --locked --versioned-dirs --sync STD DIR: one directory per crate of $CRATES.
for crate in $CRATES; do mkdir -p "$6/$crate" && echo "$crate" > "$6/$crate/lib.rs"; done
printf '[source.vendored-sources]\\ndirectory = "%s"\\n' "$6"
"""


def _fetch(tmp_path: Path, key: str, crates: str) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "cargo").write_text(FAKE_CARGO)
    (bin_dir / "cargo").chmod(0o755)
    script = vendor.fetch_command("/std/Cargo.toml", key, "t")[2]
    root = tmp_path / "vendor"
    subprocess.run(
        ["sh", "-c", script, "fetch", "/std/Cargo.toml", str(root / "crates"),
         str(root / f"lock-{key}.toml"), key],
        check=True,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "CRATES": crates},
    )  # fmt: skip


def test_fetches_share_one_crates_directory_and_mark_completion_last(tmp_path: Path) -> None:
    argv = vendor.fetch_command("/usr/lib/rustlib/src/rust/library/Cargo.toml", "k", "t1")
    assert argv[3:] == [
        "fetch",
        "/usr/lib/rustlib/src/rust/library/Cargo.toml",
        "/cache/vendor/crates",
        "/cache/vendor/lock-k.toml",
        "t1",
    ]
    root = tmp_path / "vendor"
    (root / "0123456789abcdef").mkdir(parents=True)  # the layout before: one per Cargo.lock
    (root / "0123456789abcdef.toml").write_text("old")
    _fetch(tmp_path, "a", "libc-0.2.1 tokio-1.0.0")
    (root / "crates" / "libc-0.2.1" / "lib.rs").write_text("kept")
    _fetch(tmp_path, "b", "libc-0.2.1 serde-1.0.0")
    assert sorted(p.name for p in (root / "crates").iterdir()) == [
        "libc-0.2.1",
        "serde-1.0.0",
        "tokio-1.0.0",
    ]
    assert (root / "crates" / "libc-0.2.1" / "lib.rs").read_text() == "kept", "never rewritten"
    assert sorted(p.name for p in root.iterdir()) == ["crates", "lock-a.toml", "lock-b.toml"]
    assert f'directory = "{root / "crates"}"' in (root / "lock-b.toml").read_text()


def test_executable_comes_from_cargo_messages() -> None:
    lines = [
        json.dumps({"reason": "compiler-artifact", "target": {"name": "tokio", "kind": ["lib"]}}),
        "not json",
        json.dumps(
            {
                "reason": "compiler-artifact",
                "target": {"name": "hello_world", "kind": ["bin"]},
                "executable": "/cache/t/x86_64-unknown-linux-musl/release/hello_world",
            }
        ),
        json.dumps({"reason": "build-finished", "success": True}),
    ]
    found = cargo_messages.executable_from_messages("\n".join(lines), "hello_world")
    assert found == "/cache/t/x86_64-unknown-linux-musl/release/hello_world"
    assert cargo_messages.executable_from_messages("\n".join(lines), "other") is None


def test_fetch_environment_passes_proxy_and_ca(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("cert")
    env = vendor.fetch_environment(
        {"SSL_CERT_FILE": str(ca), "HTTPS_PROXY": "http://proxy:3128", "HOME": "/root"}
    )
    assert env == {"HTTPS_PROXY": "http://proxy:3128", "CARGO_HTTP_CAINFO": vendor.HOST_CA_TARGET}
    assert vendor.host_ca_bundle({"SSL_CERT_FILE": str(ca)}) == ca.resolve()


def test_workspace_needs_cargo_toml_and_lock(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not a Cargo workspace"):
        Workspace.load(tmp_path)
    (tmp_path / "Cargo.toml").write_text("[workspace]\n")
    with pytest.raises(UsageError, match="generate-lockfile"):
        Workspace.load(tmp_path)
    (tmp_path / "Cargo.lock").write_text("version = 4\n")
    assert Workspace.load(tmp_path).lockfile == b"version = 4\n"


def test_owner_is_only_set_under_sudo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert job.owner({"SUDO_UID": "1000", "SUDO_GID": "1001"}) == (1000, 1001)
    assert job.owner({}) is None
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert job.owner({"SUDO_UID": "1000"}) is None


def test_binary_json_keys_are_locked(tmp_path: Path) -> None:
    path = Dist(root=tmp_path).binary("hello-world", "amd64", "hello_world")
    assert path == tmp_path / "bin" / "hello-world" / "amd64" / "hello_world"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x7fELF")
    binary = Binary.from_disk(path, image="hello-world", target="amd64", profile="opt")
    assert list(binary.to_json()) == ["image", "target", "path", "sha256", "size"]
    assert binary.to_json()["size"] == 4
    assert len(binary.sha256) == 64


def test_the_compile_gets_source_date_epoch_for_reproducible_c_code() -> None:
    env = build_environment(targets.get("arm64"), "opt", epoch=1700000000)
    assert env["SOURCE_DATE_EPOCH"] == env["FACTORY_SOURCE_DATE_EPOCH"] == "1700000000"
    assert build_environment(targets.get("arm64"), "opt")["SOURCE_DATE_EPOCH"] == "0"


class _UnwritableBox:
    """copy_out fails as a full disk would."""

    def run(self, argv: object, **kwargs: object) -> object:
        raise AssertionError("not called")

    def copy_out(self, path: str, destination: Path) -> Path:
        raise OSError(28, "No space left on device")


def test_an_unwritable_dist_is_a_build_error_that_keeps_its_cause(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="No space left on device") as caught:
        job.deliver(_UnwritableBox(), "/x", _job("amd64").job, Dist(root=tmp_path))  # type: ignore[arg-type]
    assert str(tmp_path / "bin" / "hello-world" / "amd64" / "hello_world") in caught.value.message
    assert isinstance(caught.value.__cause__, OSError)


def test_features_reach_cargo() -> None:
    work = CargoJob(job=_job("amd64").job, package="app", features=("a", "b/c"))
    argv = build_command(work, "k", "/t")
    assert argv[argv.index("--features") + 1] == "a,b/c"
    assert "--no-default-features" not in argv
    bare = CargoJob(job=_job("amd64").job, package="app", default_features=False)
    assert "--no-default-features" in build_command(bare, "k", "/t")
    assert "--features" not in build_command(bare, "k", "/t")
