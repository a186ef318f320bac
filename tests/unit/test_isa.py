"""The instruction-set audit on hand-assembled instructions (real vectorised binaries: in
tests/integration/test_isa.py)."""

from __future__ import annotations

import pytest

from factory.validate import isa

# One instruction of each extension (bytes checked against capstone's disassembly).
X86 = {
    "SSE4.1": "660f3817c1",  # ptest xmm0, xmm1
    "POPCNT": "f3480fb8c3",  # popcnt rax, rbx
    "AVX": "c5f458c2",  # vaddps ymm0, ymm1, ymm2
    "AVX2": "c5f5fec2",  # vpaddd ymm0, ymm1, ymm2
    "FMA": "c4e275b8c2",  # vfmadd231ps ymm0, ymm1, ymm2
    "BMI1": "c4e2f0f2c3",  # andn rax, rcx, rbx
    "BMI2": "c4e2f3f6c3",  # mulx rax, rcx, rbx
    "AVX-512": "62f17548fec2",  # vpaddd zmm0, zmm1, zmm2
}


@pytest.mark.parametrize(("extension", "code"), X86.items())
def test_each_x86_extension_is_counted(extension: str, code: str) -> None:
    report = isa.count(bytes.fromhex(code + "c3"), machine="EM_X86_64")
    assert report.instructions == 2
    assert {k for k, v in report.counts.items() if v} == {extension}
    assert report.x86_level == isa.X86_LEVEL[extension]


def test_tzcnt_is_not_counted_as_bmi1() -> None:
    # tzcnt rax, rbx (f3 48 0f bc c3) runs as bsf on CPUs without BMI1
    report = isa.count(bytes.fromhex("f3480fbcc3"), machine="EM_X86_64")
    assert report.instructions == 1
    assert report.x86_level == 1


def test_undecodable_bytes_are_skipped_not_fatal() -> None:
    report = isa.count(bytes.fromhex("0606" + X86["AVX2"] + "0f"), machine="EM_X86_64")
    assert report.counts["AVX2"] == 1
    assert report.undecodable_bytes == 3
    assert report.instructions == 1


def test_baseline_code_summary() -> None:
    report = isa.count(bytes.fromhex("4889d8c3"), machine="EM_X86_64")  # mov rax, rbx; ret
    assert report.x86_level == 1
    assert report.summary() == "v1: baseline only"


def test_aarch64_lse_and_sve() -> None:
    # ldadd w1, w0, [x2] (LSE); add z0.s, z1.s, z2.s (SVE); ret; then a word that is no
    # instruction, skipped whole
    code = bytes.fromhex("400021b82000a204c0035fd6ffffffff")
    report = isa.count(code, machine="EM_AARCH64")
    assert report.instructions == 3
    assert report.undecodable_bytes == 4
    assert {k: v for k, v in report.counts.items() if v} == {"LSE": 1, "SVE": 1}
    assert report.x86_level is None


def test_unknown_machine() -> None:
    with pytest.raises(ValueError, match="EM_RISCV"):
        isa.count(b"", machine="EM_RISCV")


def test_json_shape() -> None:
    document = isa.count(bytes.fromhex(X86["AVX2"]), machine="EM_X86_64").to_json()
    assert set(document) == {
        "architecture",
        "instructions",
        "undecodable_bytes",
        "x86_level",
        "counts",
    }
    assert document["counts"]["AVX2"] == 1
