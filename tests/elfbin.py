"""Tiny real static executables for tests, written byte by byte (no compiler needed).

Each is one ELF64 PT_LOAD segment whose code calls write(1, message) and exit(0) through raw
Linux system calls: a static binary the kernel (or qemu-user) runs as is.
"""

from __future__ import annotations

import struct

from factory.model.targets import Arch

_BASE = 0x400000
_HEADERS = 64 + 56  # ELF header + one program header
_MACHINE = {Arch.AMD64: 62, Arch.ARM64: 183}


def _x86_64_code(message: bytes) -> bytes:
    code_len = 33
    lea_end = 17
    return (
        b"\xb8\x01\x00\x00\x00"  # mov eax, 1 (write)
        + b"\xbf\x01\x00\x00\x00"  # mov edi, 1 (stdout)
        + b"\x48\x8d\x35"
        + struct.pack("<i", code_len - lea_end)  # lea rsi, [rip + message]
        + b"\xba"
        + struct.pack("<I", len(message))  # mov edx, len
        + b"\x0f\x05"  # syscall
        + b"\xb8\x3c\x00\x00\x00"  # mov eax, 60 (exit)
        + b"\x31\xff"  # xor edi, edi
        + b"\x0f\x05"  # syscall
    )


def _aarch64_code(message: bytes) -> bytes:
    def movz(register: int, value: int) -> bytes:
        return struct.pack("<I", 0xD2800000 | (value << 5) | register)

    offset = 28  # from the adr instruction (at 4) to the message (at 32)
    adr_x1 = 0x10000000 | ((offset & 3) << 29) | ((offset >> 2) << 5) | 1
    svc = struct.pack("<I", 0xD4000001)
    return (
        movz(0, 1)  # x0 = stdout
        + struct.pack("<I", adr_x1)  # x1 = message
        + movz(2, len(message))  # x2 = len
        + movz(8, 64)  # x8 = write
        + svc
        + movz(0, 0)  # x0 = 0
        + movz(8, 93)  # x8 = exit
        + svc
    )


def static_executable(arch: Arch, message: bytes) -> bytes:
    """A static ELF executable for `arch` that prints `message` and exits 0."""
    if len(message) >= 1 << 16:
        raise ValueError("message too long for one movz")
    code = _x86_64_code(message) if arch is Arch.AMD64 else _aarch64_code(message)
    body = code + message
    total = _HEADERS + len(body)
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    header = ident + struct.pack(
        "<HHIQQQIHHHHHH",
        2,  # ET_EXEC
        _MACHINE[arch],
        1,  # EV_CURRENT
        _BASE + _HEADERS,  # entry
        64,  # program headers right after the ELF header
        0,  # no section headers
        0,
        64,
        56,
        1,
        64,
        0,
        0,
    )
    program = struct.pack(
        "<IIQQQQQQ",
        1,  # PT_LOAD
        5,  # R + X
        0,
        _BASE,
        _BASE,
        total,
        total,
        0x10000,
    )
    return header + program + body
