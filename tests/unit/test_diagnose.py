"""A failed build script is reported with its crate, its own output and the fix for what it is."""

from __future__ import annotations

import pytest

from factory.build.diagnose import KNOWN, diagnose

_HEAD = """   Compiling tokio v1.48.0
error: failed to run custom build command for `{crate}`

Caused by:
  process didn't exit successfully: `/t/release/build/x/build-script-build` (exit status: 101)
  --- stdout
  TARGET = Some(aarch64-unknown-linux-musl)
{stdout}
  --- stderr
{stderr}
warning: build failed, waiting for other jobs to finish...
"""

CASES = {
    "missing tool": (
        "cmake-sys v0.1.0",
        '  running: cd "/t/out/build" && CMAKE_PREFIX_PATH="" "cmake" "/src/vendor"',
        "  thread 'main' panicked at cmake-0.1.54/src/lib.rs:1119:5:\n"
        "  failed to execute command: No such file or directory (os error 2)\n"
        "  is `cmake` not installed?",
        "`cmake`",
    ),
    "perl module": (
        "openssl-sys v0.9.109",
        "  running cd /t/openssl-build && perl ./Configure",
        "  Can't locate FindBin.pm in @INC (you may need to install the FindBin module)",
        "FindBin.pm",
    ),
    "missing header": (
        "zstd-sys v2.0.15+zstd.1.5.7",
        "",
        "  src/wrapper.h:1:10: fatal error: 'zstd.h' file not found",
        "`zstd.h`",
    ),
    "glibc symbol": (
        "mylib-sys v0.1.0",
        "",
        "  ld.lld: error: undefined symbol: __snprintf_chk\n  >>> referenced by foo.c",
        "`__snprintf_chk`",
    ),
    "autotools test program": (
        "tikv-jemalloc-sys v0.6.1+5.3.0",
        "  checking whether the C compiler works... no",
        "  configure: error: C compiler cannot create executables\n  See `config.log'",
        "config.log",
    ),
    "system library": (
        "libsqlite3-sys v0.30.1",
        "",
        "  The system library `sqlite3` required by crate `libsqlite3-sys` was not found.",
        "`sqlite3`",
    ),
    "libclang": (
        "bindgen-demo v0.1.0",
        "",
        '  Unable to find libclang: "couldn\'t find any valid shared libraries"',
        "LIBCLANG_PATH",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_known_failure_gets_its_crate_output_and_hint(name: str) -> None:
    crate, stdout, stderr, in_hint = CASES[name]
    found = diagnose(_HEAD.format(crate=crate, stdout=stdout, stderr=stderr))
    assert found.known == name
    assert found.crate == crate
    assert stderr.strip().splitlines()[-1].strip() in found.output
    assert found.output.startswith(f"error: failed to run custom build command for `{crate}`")
    assert in_hint in found.hint


def test_every_known_failure_is_tested() -> None:
    assert {known.name for known in KNOWN} - {"disk full"} == set(CASES)


def test_an_unknown_build_script_failure_names_the_crate() -> None:
    found = diagnose(_HEAD.format(crate="weird-sys v1.0.0", stdout="", stderr="  boom"))
    assert found.known is None
    assert "`weird-sys v1.0.0`" in found.hint


def test_a_rust_error_is_not_a_build_script_failure() -> None:
    found = diagnose("error[E0425]: cannot find value `x` in this scope\n --> src/main.rs:2:5")
    assert found.crate is None and found.known is None
    assert "Fix the error above" in found.hint
    assert "E0425" in found.output


def test_a_full_disk_gets_its_own_fix() -> None:
    found = diagnose("error: No space left on device (os error 28)")
    assert found.known == "disk full" and "factory clean" in found.hint


def test_long_output_keeps_its_head_and_tail() -> None:
    stderr = "\n".join(f"  line {n}" for n in range(5000))
    found = diagnose(_HEAD.format(crate="big-sys v1.0.0", stdout="", stderr=stderr), limit=600)
    assert len(found.output) < 700
    assert "custom build command for `big-sys v1.0.0`" in found.output
    assert "[...]" in found.output and "build failed, waiting" in found.output
