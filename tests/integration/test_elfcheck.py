"""The ELF audit on real binaries, compiled by gcc and musl-gcc in the test-tools image."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from factory.validate import elf as elfcheck
from tests.testtools import HELLO, Tools
from tests.unit.test_elfcheck import AMD64, ARM64, codes


@pytest.fixture(scope="module")
def bins(tools: Tools, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("elfcheck")
    made = {
        "musl": tools.compile_c(d / "musl", HELLO, cc="musl-gcc", flags=["-static", "-O2", "-s"]),
        "musl-dynamic": tools.compile_c(
            d / "musl-dynamic", HELLO, cc="musl-gcc", flags=["-O2", "-s"]
        ),
        "musl-unstripped": tools.compile_c(
            d / "musl-unstripped", HELLO, cc="musl-gcc", flags=["-static", "-O2", "-g"]
        ),
        "musl-execstack": tools.compile_c(
            d / "musl-execstack",
            HELLO,
            cc="musl-gcc",
            flags=["-static", "-O2", "-s", "-Wl,-z,execstack"],
        ),
        "glibc-static": tools.compile_c(
            d / "glibc-static", HELLO, cc="gcc", flags=["-static", "-s"]
        ),
        "glibc-dynamic": tools.compile_c(d / "glibc-dynamic", HELLO, cc="gcc", flags=["-O2", "-s"]),
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
