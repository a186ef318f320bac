"""The ELF audit of one built binary against its target (pyelftools).

``inspect`` reads the facts of a file; ``audit`` turns facts into findings (pure: no I/O);
``check`` does both and turns an unreadable or truncated file into a finding, never an
exception. A finding is data: a severity, a stable code and a message that says what is wrong.

The C library: a static binary carries no library name, so the audit looks for marks each libc
leaves in the code it contributes. glibc leaves several that survive ``strip``: the
``.note.ABI-tag`` note from its crt1.o, ``GLIBC_`` symbol versions in dynamic binaries, and in
static ones the messages of its start-up and malloc code (``Fatal glibc error``, ``glibc:
malloc``), present even in a static hello world. musl leaves
its ``ld-musl-`` loader name in dynamic binaries and, in static ones, its error-message table
(``No error information``, where glibc says ``Success``). Any glibc mark is an error; no mark of
either is a warning.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from elftools.common.exceptions import ELFError, ELFParseError
from elftools.elf.dynamic import DynamicSection, DynamicSegment
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerNeedSection
from elftools.elf.relocation import RelocationSection
from elftools.elf.segments import InterpSegment

from factory.model.targets import Target

Severity = Literal["error", "warning", "info"]
Libc = Literal["musl", "glibc", "unknown"]
Stack = Literal["absent", "executable", "non-executable"]

PT_GNU_STACK_X: Final = 0x1
"""PF_X: the executable flag of a program header."""

IRELATIVE: Final = {"EM_X86_64": 37, "EM_AARCH64": 1032}
"""R_X86_64_IRELATIVE and R_AARCH64_IRELATIVE: ifunc relocations resolved at start-up."""

_GLIBC_MARKS: Final = (
    b"Fatal glibc error",
    b"glibc: malloc",
    b"GLIBC_TUNABLES",
    b"GNU C Library",
    b"GLIBC_PRIVATE",
)
_MUSL_MARKS: Final = (b"No error information", b"ld-musl-")


@dataclass(frozen=True, kw_only=True)
class Finding:
    severity: Severity
    code: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"severity": self.severity, "code": self.code, "message": self.message}


@dataclass(frozen=True, kw_only=True)
class Toolchain:
    """What the ``.comment`` section says about the compilers and the linker."""

    comments: tuple[str, ...] = ()

    def version_of(self, tool: str) -> str | None:
        patterns = {
            "clang": r"clang version (\S+)",
            "lld": r"(?:Linker: )?LLD (\S+)",
            "rustc": r"rustc version (\S+)",
            "gcc": r"GCC: \(.*\) (\S+)",
        }
        for comment in self.comments:
            match = re.search(patterns[tool], comment)
            if match:
                return match.group(1)
        return None

    def to_json(self) -> dict[str, Any]:
        tools = {t: self.version_of(t) for t in ("clang", "lld", "rustc", "gcc")}
        return {**tools, "comment": list(self.comments)}


@dataclass(frozen=True, kw_only=True)
class ElfFacts:
    """What a file says about itself; the input of ``audit``."""

    size: int
    elf_class: int
    little_endian: bool
    machine: str
    elf_type: str
    interpreter: str | None
    needed: tuple[str, ...]
    has_dynamic: bool
    irelative: int
    stack: Stack
    symtab: bool
    debug_sections: tuple[str, ...]
    libc: Libc
    libc_evidence: tuple[str, ...]
    toolchain: Toolchain
    end_of_data: int
    """Where the last section or segment in the file ends: past ``size`` means truncated."""

    @property
    def static(self) -> bool:
        return self.interpreter is None and not self.needed

    @property
    def stripped(self) -> bool:
        return not self.symtab and not self.debug_sections

    @property
    def linkage(self) -> str:
        if not self.static:
            return "dynamic"
        return "static-pie" if self.elf_type == "ET_DYN" else "static"


class UnreadableElf(Exception):
    """The file is not an ELF file pyelftools can read."""


@dataclass(frozen=True, kw_only=True)
class ElfReport:
    facts: ElfFacts | None
    findings: tuple[Finding, ...]

    @property
    def passed(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)

    def to_json(self) -> dict[str, Any]:
        facts = self.facts
        return {
            "passed": self.passed,
            "findings": [f.to_json() for f in self.findings],
            "machine": facts.machine if facts else None,
            "static": facts.static if facts else None,
            "linkage": facts.linkage if facts else None,
            "libc": facts.libc if facts else None,
            "libc_evidence": list(facts.libc_evidence) if facts else [],
            "stripped": facts.stripped if facts else None,
            "stack": facts.stack if facts else None,
            "needed": list(facts.needed) if facts else [],
            "interpreter": facts.interpreter if facts else None,
            "irelative": facts.irelative if facts else None,
            "toolchain": facts.toolchain.to_json() if facts else None,
        }


# --- reading ------------------------------------------------------------------------------


def inspect(path: Path) -> ElfFacts:
    """The facts of the ELF file at ``path``. Raises UnreadableElf for anything else."""
    data = path.read_bytes()
    if not data.startswith(b"\x7fELF"):
        raise UnreadableElf("it does not start with the ELF magic bytes")
    try:
        with path.open("rb") as stream:
            return _facts(ELFFile(stream), data)
    except (ELFError, ELFParseError) as err:
        raise UnreadableElf(str(err)) from err
    except Exception as err:  # construct, struct and pyelftools raise many kinds on bad headers
        raise UnreadableElf(f"{type(err).__name__}: {err}") from err


@dataclass(frozen=True, kw_only=True)
class _Segments:
    """What the program headers say (what the loader reads)."""

    interpreter: str | None
    stack: Stack
    needed: tuple[str, ...]
    end: int


@dataclass(frozen=True, kw_only=True)
class _Sections:
    """What the section headers say (what the linker left)."""

    has_dynamic: bool
    needed: tuple[str, ...]
    irelative: int
    symtab: bool
    debug: tuple[str, ...]
    comments: tuple[str, ...]
    abi_tag: bool
    version_needs: tuple[str, ...]
    end: int


def _facts(elf: ELFFile, data: bytes) -> ElfFacts:
    header = elf.header
    machine = str(header["e_machine"])
    segments = _read_segments(elf, data)
    sections = _read_sections(elf, data, machine)
    libc, evidence = classify_libc(
        data, abi_tag=sections.abi_tag, version_needs=sections.version_needs
    )
    section_table_end = int(header["e_shoff"]) + int(header["e_shnum"]) * int(header["e_shentsize"])
    return ElfFacts(
        size=len(data),
        elf_class=64 if header["e_ident"]["EI_CLASS"] == "ELFCLASS64" else 32,
        little_endian=header["e_ident"]["EI_DATA"] == "ELFDATA2LSB",
        machine=machine,
        elf_type=str(header["e_type"]),
        interpreter=segments.interpreter,
        needed=tuple(dict.fromkeys((*segments.needed, *sections.needed))),
        has_dynamic=sections.has_dynamic,
        irelative=sections.irelative,
        stack=segments.stack,
        symtab=sections.symtab,
        debug_sections=sections.debug,
        libc=libc,
        libc_evidence=evidence,
        toolchain=Toolchain(comments=tuple(dict.fromkeys(sections.comments))),
        end_of_data=max(section_table_end, segments.end, sections.end),
    )


def _read_segments(elf: ELFFile, data: bytes) -> _Segments:
    interpreter: str | None = None
    stack: Stack = "absent"
    needed: list[str] = []
    end = 0
    for segment in elf.iter_segments():
        end = max(end, int(segment["p_offset"]) + int(segment["p_filesz"]))
        if isinstance(segment, InterpSegment) and segment["p_offset"] + 1 < len(data):
            interpreter = segment.get_interp_name()
        elif isinstance(segment, DynamicSegment):
            # the loader reads the segment, not the sections (which a binary may lack)
            needed += _needed(segment)
        elif segment["p_type"] == "PT_GNU_STACK":
            stack = "executable" if segment["p_flags"] & PT_GNU_STACK_X else "non-executable"
    return _Segments(interpreter=interpreter, stack=stack, needed=tuple(needed), end=end)


def _read_sections(elf: ELFFile, data: bytes, machine: str) -> _Sections:
    has_dynamic, abi_tag, symtab = False, False, False
    irelative, end = 0, 0
    needed: list[str] = []
    debug: list[str] = []
    comments: list[str] = []
    version_needs: list[str] = []
    for section in elf.iter_sections():
        nobits = section["sh_type"] == "SHT_NOBITS"
        if not nobits:
            end = max(end, int(section["sh_offset"]) + int(section["sh_size"]))
        if section["sh_offset"] + section["sh_size"] > len(data) and not nobits:
            continue  # truncated: reported from end_of_data, not read
        name = section.name
        if isinstance(section, DynamicSection):
            has_dynamic = True
            needed += _needed(section)
        elif isinstance(section, RelocationSection):
            irelative += sum(
                1 for r in section.iter_relocations() if r["r_info_type"] == IRELATIVE.get(machine)
            )
        symtab = symtab or section["sh_type"] == "SHT_SYMTAB"
        if name.startswith((".debug_", ".zdebug_")):
            debug.append(name)
        if name == ".comment":
            comments += [c.decode(errors="replace") for c in section.data().split(b"\0") if c]
        abi_tag = abi_tag or name == ".note.ABI-tag"
        if isinstance(section, GNUVerNeedSection):
            version_needs += [aux.name for _, auxes in section.iter_versions() for aux in auxes]
    return _Sections(
        has_dynamic=has_dynamic,
        needed=tuple(needed),
        irelative=irelative,
        symtab=symtab,
        debug=tuple(debug),
        comments=tuple(comments),
        abi_tag=abi_tag,
        version_needs=tuple(version_needs),
        end=end,
    )


def _needed(dynamic: DynamicSection | DynamicSegment) -> list[str]:
    """The DT_NEEDED names of a dynamic section or segment."""
    return [str(tag.needed) for tag in dynamic.iter_tags("DT_NEEDED")]  # type: ignore[attr-defined]


def classify_libc(
    data: bytes, *, abi_tag: bool, version_needs: Iterable[str]
) -> tuple[Libc, tuple[str, ...]]:
    """Which C library built this file, and the marks that say so (see the module docstring)."""
    glibc: list[str] = []
    if abi_tag:
        glibc.append("a .note.ABI-tag section (glibc's crt1.o)")
    versions = sorted({v for v in version_needs if v.startswith("GLIBC_")})
    if versions:
        glibc.append(f"glibc symbol versions ({', '.join(versions[:3])})")
    glibc += [f"the string {m.decode()!r}" for m in _GLIBC_MARKS if m in data]
    if glibc:
        return "glibc", tuple(glibc)
    musl = [f"the string {m.decode()!r}" for m in _MUSL_MARKS if m in data]
    if musl:
        return "musl", tuple(musl)
    return "unknown", ()


# --- judging ------------------------------------------------------------------------------


def audit(facts: ElfFacts, target: Target, *, profile: str = "opt") -> tuple[Finding, ...]:
    """The findings for ``facts`` against ``target``: errors fail validation."""
    findings: list[Finding] = []

    def error(code: str, message: str) -> None:
        findings.append(Finding(severity="error", code=code, message=message))

    if facts.end_of_data > facts.size:
        error(
            "truncated",
            f"the file is truncated: its headers describe {facts.end_of_data} bytes, "
            f"it has {facts.size}",
        )
    if facts.elf_class != 64 or not facts.little_endian:
        order = "little" if facts.little_endian else "big"
        error("elf-class", f"expected 64-bit little-endian, found {facts.elf_class}-bit {order}")
    if facts.machine != target.elf_machine:
        error(
            "machine",
            f"built for {facts.machine}, but {target.name} needs {target.elf_machine}",
        )
    if facts.elf_type not in ("ET_EXEC", "ET_DYN"):
        error("elf-type", f"not an executable ({facts.elf_type})")
    if facts.interpreter is not None:
        error("interpreter", f"dynamically linked: it asks for the loader {facts.interpreter}")
    if facts.needed:
        error("needed", f"dynamically linked: it needs {', '.join(facts.needed)}")
    if facts.irelative:
        error(
            "irelative",
            f"{facts.irelative} IRELATIVE relocations (ifuncs resolved at start-up, "
            "the glibc static failure mode)",
        )
    if facts.stack != "non-executable":
        what = "no PT_GNU_STACK header" if facts.stack == "absent" else "an executable stack"
        error("exec-stack", f"{what}: the stack must be non-executable")
    if facts.libc == "glibc":
        error("libc", f"linked with glibc, not musl: {'; '.join(facts.libc_evidence[:2])}")
    elif facts.libc == "unknown":
        findings.append(
            Finding(
                severity="warning",
                code="libc",
                message="no mark of musl or glibc found: the C library is unknown",
            )
        )
    if profile == "opt":  # dbg keeps debug info; fastbuild does not strip
        if facts.symtab:
            error("symtab", "a .symtab section: the opt profile strips symbols")
        if facts.debug_sections:
            error(
                "debug",
                f"debug sections ({', '.join(facts.debug_sections[:4])}): "
                "the opt profile strips debug info",
            )
    return tuple(findings)


def check(path: Path, target: Target, *, profile: str = "opt") -> ElfReport:
    """Read and audit one file; a missing, foreign or corrupt file is a finding."""
    try:
        facts = inspect(path)
    except FileNotFoundError:
        finding = Finding(severity="error", code="missing", message=f"{path} does not exist")
        return ElfReport(facts=None, findings=(finding,))
    except (UnreadableElf, OSError) as err:
        finding = Finding(
            severity="error", code="not-elf", message=f"{path.name} is not a readable ELF: {err}"
        )
        return ElfReport(facts=None, findings=(finding,))
    return ElfReport(facts=facts, findings=audit(facts, target, profile=profile))
