"""The ELF audit on hand-made facts and hand-made executables (the compiled binaries are in
tests/integration/test_elfcheck.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from factory.model import targets
from factory.model.targets import Arch
from factory.validate import elf as elfcheck
from tests.elfbin import static_executable

AMD64 = targets.get("amd64")
ARM64 = targets.get("arm64")


def codes(report: elfcheck.ElfReport) -> set[str]:
    return {f.code for f in report.findings if f.severity == "error"}


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
