"""The instruction-set audit: which ISA extensions a binary's code uses (capstone).

A linear sweep over every executable section counts instructions per extension, so a user sees
that the v3 build really uses AVX2 and the v4 build AVX-512. Informational only: code that picks
its implementation at run time (memchr, hashing, SIMD dispatch) legitimately holds instructions
above the target's level. Bytes capstone cannot decode are skipped one at a time.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import capstone
from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile

# capstone group name -> the extension as a user knows it.
X86_EXTENSIONS: Final = {
    "ssse3": "SSSE3",
    "sse41": "SSE4.1",
    "sse42": "SSE4.2",
    "avx": "AVX",
    "avx2": "AVX2",
    "fma": "FMA",
    "f16c": "F16C",
    "bmi": "BMI1",
    "bmi2": "BMI2",
    "avx512": "AVX-512",
}
# Extensions capstone (5.x) puts in no group of their own: found by mnemonic.
X86_MNEMONICS: Final = {"popcnt": "POPCNT", "lzcnt": "LZCNT", "movbe": "MOVBE"}
# TZCNT is `rep bsf`: a CPU without BMI1 runs it as BSF, and compilers emit it for baseline
# x86-64 where the input is known non-zero (a baseline Rust build holds dozens). Not counted.
_BACKWARD_COMPATIBLE: Final = frozenset({"tzcnt"})
_FMA3: Final = re.compile(r"^vf(?:n?m(?:add|sub)|maddsub|msubadd)(?:132|213|231)")
# AArch64: capstone 5.x assigns these instructions no group, so mnemonics and operands decide.
ARM64_PATTERNS: Final = {
    "CRC32": re.compile(r"^crc32"),
    "LSE": re.compile(
        r"^(?:cas|swp|ld(?:add|clr|eor|set|smax|smin|umax|umin)|"
        r"st(?:add|clr|eor|set|smax|smin|umax|umin))"
    ),
    "RCPC": re.compile(r"^ldapu?r"),
    "PAC": re.compile(r"^(?:pac|aut|xpac|reta[ab]|bra[ab]|blra[ab]|eret[ab])"),
}
_SVE_OPERAND: Final = re.compile(r"\b[zp]\d+(?:\.[bhsdq]|/[zm])")
ARM64_EXTENSIONS: Final = (*ARM64_PATTERNS, "SVE")
# The x86-64 level an extension first belongs to (the psABI's micro-architecture levels),
# in the order a table shows them.
X86_LEVEL: Final = {
    "SSSE3": 2,
    "SSE4.1": 2,
    "SSE4.2": 2,
    "POPCNT": 2,
    "AVX": 3,
    "AVX2": 3,
    "FMA": 3,
    "F16C": 3,
    "BMI1": 3,
    "BMI2": 3,
    "LZCNT": 3,
    "MOVBE": 3,
    "AVX-512": 4,
}


@dataclass(frozen=True, kw_only=True)
class IsaReport:
    """Instruction counts per extension over the executable sections of one binary."""

    architecture: str
    instructions: int
    undecodable_bytes: int
    counts: dict[str, int]

    @property
    def x86_level(self) -> int | None:
        """The highest x86-64 level whose extensions the code uses (1 when none; None on arm)."""
        if self.architecture != "x86_64":
            return None
        return max((X86_LEVEL[e] for e, n in self.counts.items() if n), default=1)

    def summary(self) -> str:
        """A short line for a table: `v3: AVX2 812, FMA 40, BMI2 33`."""
        used = [f"{name} {n}" for name, n in self.counts.items() if n]
        level = self.x86_level
        prefix = f"v{level}: " if level is not None else ""
        return prefix + (", ".join(used) if used else "baseline only")

    def to_json(self) -> dict[str, Any]:
        return {
            "architecture": self.architecture,
            "instructions": self.instructions,
            "undecodable_bytes": self.undecodable_bytes,
            "x86_level": self.x86_level,
            "counts": dict(self.counts),
        }


Classifier = Callable[[Any], set[str]]


def _disassembler(machine: str) -> tuple[capstone.Cs, str, tuple[str, ...], Classifier]:
    """capstone for ``machine``, the architecture's name, its extensions and their classifier."""
    if machine == "EM_X86_64":
        md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
        md.detail = True  # groups
        return md, "x86_64", tuple(X86_LEVEL), _x86_extensions
    if machine == "EM_AARCH64":
        md = capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM)
        return md, "aarch64", ARM64_EXTENSIONS, _arm64_extensions
    raise ValueError(f"no instruction-set audit for {machine}")


def _x86_extensions(insn: Any) -> set[str]:
    """The extensions one x86-64 instruction belongs to (each counted once)."""
    if insn.mnemonic in _BACKWARD_COMPATIBLE:
        return set()
    names = map(insn.group_name, insn.groups)
    found = {X86_EXTENSIONS[name] for name in names if name in X86_EXTENSIONS}
    mnemonic = str(insn.mnemonic)
    if mnemonic in X86_MNEMONICS:
        found.add(X86_MNEMONICS[mnemonic])
    elif _FMA3.match(mnemonic):
        found.add("FMA")
    return found


def _arm64_extensions(insn: Any) -> set[str]:
    mnemonic = str(insn.mnemonic)
    found = {name for name, pattern in ARM64_PATTERNS.items() if pattern.match(mnemonic)}
    if _SVE_OPERAND.search(str(insn.op_str)):
        found.add("SVE")
    return found


def count(code: bytes, *, machine: str, address: int = 0) -> IsaReport:
    """Count the instructions of ``code`` per extension. ``machine``: EM_X86_64 or EM_AARCH64."""
    md, arch, names, classify = _disassembler(machine)
    counts: Counter[str] = Counter()
    total = 0
    skipped = 0
    offset = 0
    # AArch64 instructions are 4 bytes and aligned: skip a whole word on a decode failure.
    step = 4 if arch == "aarch64" else 1
    view = memoryview(code)
    while offset < len(code):
        progressed = offset
        for insn in md.disasm(view[offset:], address + offset):
            total += 1
            progressed = insn.address - address + insn.size
            counts.update(classify(insn))
        if progressed == offset:
            skipped += step
            offset += step
        else:
            offset = progressed
    ordered = {name: counts.get(name, 0) for name in names}
    return IsaReport(
        architecture=arch, instructions=total, undecodable_bytes=skipped, counts=ordered
    )


def audit(path: Path) -> IsaReport:
    """Count the instructions of every executable section of the ELF file at ``path``."""
    with path.open("rb") as stream:
        size = os.fstat(stream.fileno()).st_size
        elf = ELFFile(stream)
        machine = str(elf.header["e_machine"])
        parts: list[IsaReport] = []
        for section in elf.iter_sections():
            if section["sh_type"] == "SHT_NOBITS":
                continue
            if not section["sh_flags"] & SH_FLAGS.SHF_EXECINSTR:
                continue
            # A section past the end of the file (or compressed code, which no linker makes)
            # is a corrupt header: reading it would allocate what the header claims.
            if section["sh_offset"] + section["sh_size"] > size or section.compressed:
                continue
            parts.append(count(section.data(), machine=machine, address=section["sh_addr"]))
    if not parts:
        parts.append(count(b"", machine=machine))
    return merge(parts)


def merge(parts: list[IsaReport]) -> IsaReport:
    total: Counter[str] = Counter()
    for part in parts:
        total.update(part.counts)
    first = parts[0]
    return IsaReport(
        architecture=first.architecture,
        instructions=sum(p.instructions for p in parts),
        undecodable_bytes=sum(p.undecodable_bytes for p in parts),
        counts={name: total.get(name, 0) for name in first.counts},
    )
