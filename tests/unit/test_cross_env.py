"""What build scripts are told about each target: one set of variables per row of the table."""

from __future__ import annotations

import pytest

from factory.build import cross
from factory.model import targets


@pytest.mark.parametrize("target", targets.TARGETS, ids=lambda t: t.name)
def test_every_tool_a_build_script_asks_for_is_named(target: targets.Target) -> None:
    env = cross.compile_environment(target, workspace_env=frozenset())
    suffix = target.triple.replace("-", "_")
    root = f"/opt/factory/sysroot/{target.arch.gnu_name}-linux-musl"
    assert env[f"CXXSTDLIB_{suffix}"] == "c++"
    assert env[f"CMAKE_TOOLCHAIN_FILE_{suffix}"] == (
        f"/opt/factory/cmake/{target.arch.gnu_name}-linux-musl.cmake"
    )
    assert env[f"PKG_CONFIG_SYSROOT_DIR_{suffix}"] == root
    assert env[f"PKG_CONFIG_LIBDIR_{suffix}"].startswith(f"{root}/usr/lib/pkgconfig")
    assert env["PKG_CONFIG_ALLOW_CROSS"] == "1"
    bindgen = env[f"BINDGEN_EXTRA_CLANG_ARGS_{suffix}"].split()
    assert bindgen == [f"--target={target.triple}", f"--sysroot={root}"]
    assert env["LIBCLANG_PATH"] == "/usr/lib/llvm-21/lib"
    assert env["PROTOC"] == "/usr/bin/protoc"
    assert env["TARGET_RANLIB"] == env[f"RANLIB_{suffix}"]
    # The level reaches every C and C++ compile.
    assert env[f"CFLAGS_{suffix}"] == env[f"CXXFLAGS_{suffix}"] == f"-march={target.c_march}"


def test_jemalloc_gets_16k_pages_on_arm64_only() -> None:
    for target in targets.TARGETS:
        env = cross.compile_environment(target, workspace_env=frozenset())
        expected = "16" if target.arch is targets.Arch.ARM64 else None
        assert env.get("JEMALLOC_SYS_WITH_LG_PAGE") == expected


def test_what_the_workspace_sets_in_env_is_left_to_it() -> None:
    target = targets.get("arm64_v9a")
    env = cross.compile_environment(
        target, workspace_env=frozenset({"JEMALLOC_SYS_WITH_LG_PAGE", "PROTOC"})
    )
    assert "JEMALLOC_SYS_WITH_LG_PAGE" not in env and "PROTOC" not in env
    assert "TARGET_CC" in env
