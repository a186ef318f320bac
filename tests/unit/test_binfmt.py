from __future__ import annotations

import struct
from pathlib import Path

from factory.engine import binfmt
from factory.model.targets import Arch


def _elf_header(machine: int, e_type: int, osabi: int = 0) -> bytes:
    ident = b"\x7fELF" + bytes([2, 1, 1, osabi]) + bytes(8)
    return ident + struct.pack("<HH", e_type, machine)


def _matches(reg: binfmt.Registration, header: bytes) -> bool:
    magic, mask = reg.magic_and_mask()
    return all((h & m) == (g & m) for h, g, m in zip(header, magic, mask, strict=False))


def test_the_aarch64_pattern_matches_static_and_pie_executables_only() -> None:
    reg = binfmt.Registration(arch=Arch.ARM64, interpreter="/usr/bin/qemu-aarch64")
    assert _matches(reg, _elf_header(183, 2))  # static
    assert _matches(reg, _elf_header(183, 3))  # static-pie
    assert _matches(reg, _elf_header(183, 2, osabi=3))  # GNU/Linux OS ABI
    assert not _matches(reg, _elf_header(62, 2))  # x86-64
    assert not _matches(reg, _elf_header(183, 1))  # relocatable object
    assert len(reg.magic_and_mask()[0]) == len(reg.magic_and_mask()[1]) == 20


def test_the_register_line() -> None:
    reg = binfmt.Registration(arch=Arch.AMD64, interpreter="/usr/bin/qemu-x86_64")
    line = reg.line()
    assert line.startswith(":qemu-x86_64:M:0:\\x7f\\x45")
    assert line.endswith(":/usr/bin/qemu-x86_64:F")
    assert "\\x3e\\x00" in line  # EM_X86_64


def test_foreign_arches() -> None:
    assert binfmt.foreign_arches(Arch.AMD64) == (Arch.ARM64,)
    assert binfmt.foreign_arches(Arch.ARM64) == (Arch.AMD64,)


def test_registered_reads_the_kernel_entries(tmp_path: Path) -> None:
    assert binfmt.registered(tmp_path) == {}
    (tmp_path / "status").write_text("enabled\n")
    (tmp_path / "register").write_text("")
    (tmp_path / "qemu-aarch64").write_text("enabled\ninterpreter /usr/bin/qemu-aarch64\n")
    (tmp_path / "qemu-x86_64").write_text("disabled\n")
    (tmp_path / "python3.11").write_text("enabled\n")
    assert binfmt.registered(tmp_path) == {"qemu-aarch64": True, "qemu-x86_64": False}


def test_the_script_mounts_and_registers() -> None:
    reg = binfmt.Registration(arch=Arch.ARM64, interpreter="/usr/bin/qemu-aarch64")
    script = binfmt.register_script([reg])
    assert "mount -t binfmt_misc" in script
    assert reg.line() in script
