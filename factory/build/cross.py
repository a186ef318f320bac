"""What crates' build scripts are told about the target: compilers, flags, pkg-config, CMake,
bindgen and protoc, one set per row of the target table.

The builder image carries the tools (``dockerfiles/builder/setup-sysroots.sh``): per architecture
a musl sysroot with LLVM's libc++, C and C++ wrappers that compile *and link* statically, the
binutils names crates probe for and a CMake toolchain file. This module names them in the
variables that cc-rs, cmake-rs, pkg-config-rs, bindgen, prost-build and autotools read, adds the
level's ``-march`` to every C and C++ compile, and fixes jemalloc's page size for arm64.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from factory.model.targets import Arch, Target

BIN: Final = "/opt/factory/bin"
SYSROOTS: Final = "/opt/factory/sysroot"
CMAKE_TOOLCHAINS: Final = "/opt/factory/cmake"
LIBCLANG: Final = "/usr/lib/llvm-21/lib"
PROTOC: Final = "/usr/bin/protoc"

JEMALLOC_PAGE: Final = "JEMALLOC_SYS_WITH_LG_PAGE"
"""tikv-jemalloc-sys bakes the page size in at build time (log2); 4K pages by default."""
LG_PAGE: Final[Mapping[Arch, str]] = {Arch.ARM64: "16"}
"""arm64 servers run 4K, 16K (Apple silicon under Asahi, some clouds) and 64K pages; a jemalloc
built for 64K pages (2^16) runs on all three, one built for 4K only on 4K. x86-64 has 4K pages
only: left as jemalloc has it."""


def gnu_triple(target: Target) -> str:
    """The target as clang, musl and the wrappers name it: ``aarch64-linux-musl``."""
    return f"{target.arch.gnu_name}-linux-musl"


def tool(target: Target, name: str) -> str:
    """A wrapper of the builder for this target: ``cc``, ``c++``, ``ar``, ``link``, ..."""
    return f"{BIN}/{gnu_triple(target)}-{name}"


def sysroot(target: Target) -> str:
    return f"{SYSROOTS}/{gnu_triple(target)}"


def env_suffix(target: Target) -> str:
    """The Rust triple as variable names spell it: ``x86_64_unknown_linux_musl``."""
    return target.triple.replace("-", "_")


def march(target: Target) -> str:
    return f"-march={target.c_march}"


def compile_environment(target: Target, *, workspace_env: frozenset[str]) -> dict[str, str]:
    """The variables of one target's compile that build scripts read.

    ``workspace_env`` is what the workspace's own ``.cargo/config.toml`` ``[env]`` sets: cargo
    gives those only when the environment does not already, so factory leaves them out here.
    """
    suffix = env_suffix(target)
    root = sysroot(target)
    environment = {
        # cc-rs (and every crate that asks it for the compiler: cmake-rs, openssl-src, ...).
        f"CC_{suffix}": tool(target, "cc"),
        f"CXX_{suffix}": tool(target, "c++"),
        f"AR_{suffix}": tool(target, "ar"),
        f"RANLIB_{suffix}": tool(target, "ranlib"),
        f"CFLAGS_{suffix}": march(target),
        f"CXXFLAGS_{suffix}": march(target),
        f"CXXSTDLIB_{suffix}": "c++",
        "TARGET_CC": tool(target, "cc"),
        "TARGET_CXX": tool(target, "c++"),
        "TARGET_AR": tool(target, "ar"),
        "TARGET_RANLIB": tool(target, "ranlib"),
        # cmake-rs: the toolchain file names the same wrappers and the sysroot.
        f"CMAKE_TOOLCHAIN_FILE_{suffix}": f"{CMAKE_TOOLCHAINS}/{gnu_triple(target)}.cmake",
        # pkg-config-rs: only the target's sysroot, never the builder's own (glibc) libraries.
        "PKG_CONFIG_ALLOW_CROSS": "1",
        f"PKG_CONFIG_SYSROOT_DIR_{suffix}": root,
        f"PKG_CONFIG_LIBDIR_{suffix}": f"{root}/usr/lib/pkgconfig:{root}/usr/share/pkgconfig",
        # bindgen: the target's headers, never the builder's glibc ones.
        "LIBCLANG_PATH": LIBCLANG,
        f"BINDGEN_EXTRA_CLANG_ARGS_{suffix}": f"--target={target.triple} --sysroot={root}",
        # prost-build / tonic-build.
        "PROTOC": PROTOC,
    }
    page = LG_PAGE.get(target.arch)
    if page is not None:
        environment[JEMALLOC_PAGE] = page
    return {name: value for name, value in environment.items() if name not in workspace_env}
