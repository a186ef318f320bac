"""The musl C toolchain that rust.MODULE.bazel declares, tried in the real builder image.

No Bazel runs here, but the toolchain it would configure can be: this takes the toolchain root,
the sysroots and the extra flags from rust.MODULE.bazel (evaluated by tests/starlark_fake.py),
adds the flags toolchains_llvm 1.6.0 itself gives a Linux target (its cc_toolchain_config.bzl),
and compiles, links and runs a C program with them for both architectures, as `-static` and as
`-static-pie` (what rustc asks for on musl with +crt-static). It also checks that every tool the
toolchain points at exists under the root.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import docker
import pytest

from factory.engine import docker_engine as engine
from factory.engine.builder import BuilderImage, ensure_builder
from factory.engine.docker_engine import ContainerSpec, Mount, container
from factory.model.config import DEFAULT_BASE
from tests.conftest import ROOT
from tests.starlark_fake import FakeBazel

WORKSPACE = ROOT / "examples" / "hello_world"
LLVM = "@toolchains_llvm//toolchain/extensions:llvm.bzl%llvm"

# toolchains_llvm 1.6.0, toolchain/internal/common.bzl and cc_toolchain_config.bzl: the tools of
# a Linux toolchain, and the flags it gives every Linux target (`{gnu}` is its own triple).
TOOLS = ("clang", "clang++", "clang-cpp", "ld.lld", "llvm-ar", "llvm-cov", "llvm-dwp",
         "llvm-nm", "llvm-objcopy", "llvm-objdump", "llvm-profdata", "llvm-strip")  # fmt: skip
COMPILE = ["--target={gnu}", "-U_FORTIFY_SOURCE", "-fstack-protector", "-fno-omit-frame-pointer",
           "-Wall", "-Wthread-safety", "-Wself-assign", "-no-canonical-prefixes",
           "-Wno-builtin-macro-redefined", "-g0", "-O2", "-D_FORTIFY_SOURCE=1", "-DNDEBUG",
           "-ffunction-sections", "-fdata-sections"]  # fmt: skip
LINK = ["--target={gnu}", "-no-canonical-prefixes", "-fuse-ld=lld", "-lm",
        "-Wl,--build-id=md5", "-Wl,--hash-style=gnu", "-Wl,-z,relro,-z,now",
        "-Wl,--gc-sections"]  # fmt: skip

PROGRAM = r"""
#include <pthread.h>
#include <stdio.h>
#include <string.h>
static void *work(void *arg) { return (void *)(strlen((const char *)arg) * 2); }
int main(void) {
    pthread_t thread;
    void *result;
    pthread_create(&thread, 0, work, "musl");
    pthread_join(thread, &result);
    printf("toolchain ok %ld\n", (long)result);
    return 0;
}
"""


@pytest.fixture(scope="module")
def musl_toolchain() -> dict[str, Any]:
    fake = FakeBazel(WORKSPACE)
    fake.eval_module("MODULE.bazel")
    tags = [(tag, attrs) for ext, tag, attrs in fake.recorded.tags if ext == LLVM]
    named = [(tag, a) for tag, a in tags if a.get("name") == "llvm_toolchain_musl"]
    (toolchain,) = [a for tag, a in named if tag == "toolchain"]
    (root,) = [a["path"] for tag, a in named if tag == "toolchain_root"]
    sysroots = {a["targets"][0]: a["path"] for tag, a in named if tag == "sysroot"}
    return {"root": root, "sysroots": sysroots, **toolchain}


@pytest.fixture(scope="module")
def builder() -> BuilderImage:
    return ensure_builder(
        engine.client(), dockerfile=ROOT / "dockerfiles" / "builder.Dockerfile", base=DEFAULT_BASE
    )


def test_every_tool_of_the_toolchain_root_exists(
    builder: BuilderImage, musl_toolchain: dict[str, Any]
) -> None:
    client: docker.DockerClient = engine.client()
    root = musl_toolchain["root"]
    with container(client, ContainerSpec(image=builder.tag, purpose="check")) as box:
        missing = box.run(
            ["sh", "-c", 'for t in "$@"; do [ -x "$0/bin/$t" ] || echo "$t"; done', root, *TOOLS]
        ).stdout.split()
        version = box.run([f"{root}/bin/clang", "--version"]).stdout
    assert missing == []
    assert f"version {musl_toolchain['llvm_version']}" in version


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_the_musl_toolchain_links_static_programs_that_run(
    arch: str, builder: BuilderImage, musl_toolchain: dict[str, Any], tmp_path: Path
) -> None:
    key = f"linux-{arch}"
    gnu = f"{arch}-unknown-linux-gnu"
    sysroot = f"--sysroot={musl_toolchain['sysroots'][key]}"
    compile_flags = [f.format(gnu=gnu) for f in COMPILE]
    compile_flags += [sysroot, *musl_toolchain["extra_compile_flags"][key]]
    link_flags = [f.format(gnu=gnu) for f in LINK]
    link_flags += [sysroot, *musl_toolchain["extra_link_flags"][key]]
    march = "-march=x86-64-v3" if arch == "x86_64" else "-march=armv8.2-a"
    (tmp_path / "hello.c").write_text(PROGRAM)
    clang = f"{musl_toolchain['root']}/bin/clang"
    run = [] if arch == "x86_64" else ["qemu-aarch64", "-cpu", "neoverse-n1"]
    cpu = ["qemu-x86_64", "-cpu", "Haswell-noTSX"] if arch == "x86_64" else run
    spec = ContainerSpec(
        image=builder.tag,
        purpose="check",
        mounts=(Mount(source=str(tmp_path), target="/w", bind=True),),
        workdir="/w",
    )
    with container(engine.client(), spec) as box:
        box.run([clang, *compile_flags, march, "-c", "hello.c", "-o", "hello.o"])
        for mode in ("-static", "-static-pie"):
            out = f"hello{mode}"
            box.run([clang, *link_flags, mode, "hello.o", "-o", out])
            described = box.run(["file", out]).stdout
            assert "static" in described and "dynamically linked" not in described, described
            assert box.run([*cpu, f"./{out}"]).stdout == "toolchain ok 8\n"
