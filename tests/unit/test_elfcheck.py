"""The ELF audit on real binaries made by the host's compilers, and on hand-made facts."""

from __future__ import annotations

import dataclasses
import struct
from pathlib import Path

import pytest

from factory.model import targets
from factory.model.targets import Arch
from factory.validate import elf as elfcheck
from tests.elfbin import static_executable
from tests.hostbins import HELLO, compile_c

AMD64 = targets.get("amd64")
ARM64 = targets.get("arm64")


@pytest.fixture(scope="module")
def bins(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("elfcheck")
    made = {
        "musl": compile_c(d / "musl", HELLO, cc="musl-gcc", flags=["-static", "-O2", "-s"]),
        "musl-dynamic": compile_c(d / "musl-dynamic", HELLO, cc="musl-gcc", flags=["-O2", "-s"]),
        "musl-unstripped": compile_c(
            d / "musl-unstripped", HELLO, cc="musl-gcc", flags=["-static", "-O2", "-g"]
        ),
        "musl-execstack": compile_c(
            d / "musl-execstack",
            HELLO,
            cc="musl-gcc",
            flags=["-static", "-O2", "-s", "-Wl,-z,execstack"],
        ),
        "glibc-static": compile_c(d / "glibc-static", HELLO, cc="gcc", flags=["-static", "-s"]),
        "glibc-dynamic": compile_c(d / "glibc-dynamic", HELLO, cc="gcc", flags=["-O2", "-s"]),
    }
    data = made["musl"].read_bytes()
    # The same good binary relabelled as AArch64 (e_machine at offset 18): the wrong arch.
    made["wrong-arch"] = d / "wrong-arch"
    made["wrong-arch"].write_bytes(data[:18] + struct.pack("<H", 183) + data[20:])
    made["truncated"] = d / "truncated"
    made["truncated"].write_bytes(data[: len(data) // 2])
    made["headers-only"] = d / "headers-only"
    made["headers-only"].write_bytes(data[:40])
    made["garbage"] = d / "garbage"
    made["garbage"].write_bytes(b"\x7fELF" + bytes(range(256)) * 4)
    made["text"] = d / "text"
    made["text"].write_text("#!/bin/sh\necho hello\n")
    # The dynamic binary without section headers (e_shoff, e_shnum, e_shstrndx zeroed): the
    # loader still reads PT_INTERP and PT_DYNAMIC.
    dynamic = made["glibc-dynamic"].read_bytes()
    made["no-sections"] = d / "no-sections"
    made["no-sections"].write_bytes(
        dynamic[:0x28] + bytes(8) + dynamic[0x30:0x3C] + bytes(4) + dynamic[0x40:]
    )
    made["big-endian"] = d / "big-endian"
    made["big-endian"].write_bytes(data[:5] + b"\x02" + data[6:])
    return made


def codes(report: elfcheck.ElfReport) -> set[str]:
    return {f.code for f in report.findings if f.severity == "error"}


def test_static_musl_passes(bins: dict[str, Path]) -> None:
    report = elfcheck.check(bins["musl"], AMD64)
    assert report.passed, report.findings
    assert report.findings == ()
    assert report.facts is not None
    assert report.facts.linkage == "static"
    assert report.facts.libc == "musl"
    assert report.facts.stripped
    assert report.facts.stack == "non-executable"
    assert report.facts.toolchain.version_of("gcc")


def test_dynamic_musl_is_rejected_but_recognised_as_musl(bins: dict[str, Path]) -> None:
    # (static-pie is covered by the integration tests: bookworm's musl-gcc cannot make one)
    report = elfcheck.check(bins["musl-dynamic"], AMD64)
    assert codes(report) == {"interpreter", "needed"}
    assert report.facts is not None
    assert report.facts.libc == "musl"
    assert report.facts.linkage == "dynamic"


def test_glibc_static_is_rejected_as_glibc(bins: dict[str, Path]) -> None:
    report = elfcheck.check(bins["glibc-static"], AMD64)
    assert not report.passed
    assert report.facts is not None
    assert report.facts.static
    assert report.facts.libc == "glibc"
    assert any("ABI-tag" in e for e in report.facts.libc_evidence)
    assert {"libc", "irelative"} <= codes(report)


def test_dynamic_binary_is_rejected(bins: dict[str, Path]) -> None:
    report = elfcheck.check(bins["glibc-dynamic"], AMD64)
    assert {"interpreter", "needed", "libc"} <= codes(report)
    assert report.facts is not None
    assert "libc.so.6" in report.facts.needed
    assert report.facts.interpreter is not None
    assert any("GLIBC_2" in e for e in report.facts.libc_evidence)


def test_dynamic_binary_without_section_headers_is_rejected(bins: dict[str, Path]) -> None:
    report = elfcheck.check(bins["no-sections"], AMD64)
    assert {"interpreter", "needed"} <= codes(report)
    assert report.facts is not None
    assert report.facts.needed == ("libc.so.6",)


def test_unstripped_binary_fails_opt_only(bins: dict[str, Path]) -> None:
    opt = elfcheck.check(bins["musl-unstripped"], AMD64, profile="opt")
    assert {"symtab", "debug"} == codes(opt)
    assert elfcheck.check(bins["musl-unstripped"], AMD64, profile="dbg").passed


def test_executable_stack_is_rejected(bins: dict[str, Path]) -> None:
    assert codes(elfcheck.check(bins["musl-execstack"], AMD64)) == {"exec-stack"}


def test_wrong_architecture_is_rejected(bins: dict[str, Path]) -> None:
    report = elfcheck.check(bins["wrong-arch"], AMD64)
    assert codes(report) == {"machine"}
    assert "EM_AARCH64" in report.findings[0].message
    assert "amd64" in report.findings[0].message
    assert codes(elfcheck.check(bins["musl"], ARM64)) == {"machine"}


@pytest.mark.parametrize("name", ["truncated", "headers-only", "garbage", "text", "big-endian"])
def test_corrupt_files_are_findings_not_crashes(bins: dict[str, Path], name: str) -> None:
    report = elfcheck.check(bins[name], AMD64)
    assert not report.passed
    assert codes(report) & {"not-elf", "truncated", "elf-class"}, report.findings
    assert report.to_json()["passed"] is False


def test_truncated_file_says_truncated(bins: dict[str, Path]) -> None:
    report = elfcheck.check(bins["truncated"], AMD64)
    messages = " ".join(f.message for f in report.findings)
    assert "truncated" in messages or "not a readable ELF" in messages


def test_missing_file(tmp_path: Path) -> None:
    report = elfcheck.check(tmp_path / "nope", AMD64)
    assert codes(report) == {"missing"}


def test_handmade_static_executables_are_static_without_libc(tmp_path: Path) -> None:
    for arch, target in ((Arch.AMD64, AMD64), (Arch.ARM64, ARM64)):
        path = tmp_path / arch.value
        path.write_bytes(static_executable(arch, b"hi\n"))
        report = elfcheck.check(path, target)
        assert report.facts is not None
        assert report.facts.static
        assert report.facts.libc == "unknown"
        # No PT_GNU_STACK header: the kernel may map the stack executable.
        assert codes(report) == {"exec-stack"}
        assert any(f.severity == "warning" and f.code == "libc" for f in report.findings)


# --- audit() on hand-made facts: every rule alone ---------------------------------------

GOOD = elfcheck.ElfFacts(
    size=1000,
    elf_class=64,
    little_endian=True,
    machine="EM_X86_64",
    elf_type="ET_DYN",
    interpreter=None,
    needed=(),
    has_dynamic=True,
    irelative=0,
    stack="non-executable",
    symtab=False,
    debug_sections=(),
    libc="musl",
    libc_evidence=("the string 'No error information'",),
    toolchain=elfcheck.Toolchain(comments=("Linker: LLD 21.1.8", "clang version 21.1.8")),
    end_of_data=1000,
)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"end_of_data": 2000}, "truncated"),
        ({"elf_class": 32}, "elf-class"),
        ({"little_endian": False}, "elf-class"),
        ({"machine": "EM_AARCH64"}, "machine"),
        ({"elf_type": "ET_REL"}, "elf-type"),
        ({"interpreter": "/lib/ld-musl-x86_64.so.1"}, "interpreter"),
        ({"needed": ("libc.so",)}, "needed"),
        ({"irelative": 3}, "irelative"),
        ({"stack": "executable"}, "exec-stack"),
        ({"stack": "absent"}, "exec-stack"),
        ({"libc": "glibc", "libc_evidence": ("x",)}, "libc"),
        ({"symtab": True}, "symtab"),
        ({"debug_sections": (".debug_info",)}, "debug"),
    ],
)
def test_each_rule(change: dict[str, object], code: str) -> None:
    assert elfcheck.audit(GOOD, AMD64) == ()
    findings = elfcheck.audit(dataclasses.replace(GOOD, **change), AMD64)  # type: ignore[arg-type]
    assert [f.code for f in findings if f.severity == "error"] == [code]


def test_debug_info_is_allowed_outside_opt() -> None:
    facts = dataclasses.replace(GOOD, symtab=True, debug_sections=(".debug_info",))
    assert elfcheck.audit(facts, AMD64, profile="dbg") == ()
    assert elfcheck.audit(facts, AMD64, profile="fastbuild") == ()


def test_toolchain_versions() -> None:
    tools = GOOD.toolchain.to_json()
    assert tools["clang"] == "21.1.8"
    assert tools["lld"] == "21.1.8"
    assert tools["rustc"] is None
    rust = elfcheck.Toolchain(comments=("rustc version 1.96.0 (deadbeef 2026-01-01)",))
    assert rust.version_of("rustc") == "1.96.0"


def test_libc_classification_prefers_glibc_marks() -> None:
    libc, evidence = elfcheck.classify_libc(
        b"...No error information...Fatal glibc error", abi_tag=False, version_needs=()
    )
    assert libc == "glibc"
    assert evidence == ("the string 'Fatal glibc error'",)
    assert elfcheck.classify_libc(b"No error information", abi_tag=False, version_needs=()) == (
        "musl",
        ("the string 'No error information'",),
    )
    assert elfcheck.classify_libc(b"", abi_tag=False, version_needs=("GLIBC_2.34",))[0] == "glibc"
    assert elfcheck.classify_libc(b"", abi_tag=False, version_needs=())[0] == "unknown"
