"""The contract with the guest's /init (dockerfiles/pagesize/init.c): what goes into its
initramfs, and how its result is read back from the console.

The initramfs holds ``/init``, ``/dev/console`` (the kernel opens it for init's output), empty
``/proc``, ``/dev`` and ``/tmp``, the binary at ``/smoke/<name>`` and ``/smoke/argv``: the
program's path and its arguments, each ended by a NUL byte.

The console carries the kernel's messages too, so init prints its result as lines that cannot be
mistaken for them, each with a checksum of its own (a kernel message written into the middle of
one makes it fail the check, never changes the result)::

    @@factory-pages <key> <value> <crc32 of "<key> <value>" as 8 hex digits>

from ``begin`` to ``end``: ``kernel`` (uname's release), ``page_size`` (AT_PAGESZ), ``status``
(``exited:N``, ``signaled:N``, or ``error:<what>`` when init could not run the program),
``stdout`` and ``stderr`` (base64), ``stdout_dropped`` and ``stderr_dropped`` (bytes beyond the
64 KiB init keeps of each), ``run_ns``. Everything here is pure.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from factory.validate.initramfs import Entry, newc

MARKER: Final = "@@factory-pages "
ARGV_LIMIT: Final = 65535
"""init reads at most this many bytes of /smoke/argv ..."""
ARGS_LIMIT: Final = 255
"""... holding at most this many strings (the program and its arguments)."""
_KEYS: Final = (
    "kernel",
    "page_size",
    "status",
    "stdout",
    "stderr",
    "stdout_dropped",
    "stderr_dropped",
    "run_ns",
)
_CONSOLE: Final = (5, 1)


@dataclass(frozen=True, kw_only=True)
class GuestRun:
    """What the guest's init reported about one run of the program."""

    kernel: str
    page_size: int
    """The page size the program was given (its AT_PAGESZ auxiliary vector entry)."""
    exit_code: int
    """The exit status; a shell-style 128+N when signal N killed it."""
    signal: int | None
    stdout: str
    stderr: str
    run_seconds: float


def initramfs(init: bytes, binary: bytes, name: str, args: Sequence[str]) -> bytes:
    """The guest's initramfs: ``init`` runs ``/smoke/<name> args...``."""
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"{name!r} is not a file name")
    program = f"/smoke/{name}"
    strings = [program, *args]
    if any("\0" in s for s in strings):
        raise ValueError("an argument contains a NUL character, which a command line cannot hold")
    argv = b"".join(s.encode() + b"\0" for s in strings)
    if len(argv) > ARGV_LIMIT or len(strings) > ARGS_LIMIT:
        raise ValueError(
            f"the arguments are too long for the guest ({len(strings)} strings, {len(argv)} "
            f"bytes; at most {ARGS_LIMIT} and {ARGV_LIMIT})"
        )
    return newc(
        [
            Entry.file("init", init, executable=True),
            Entry.directory("dev"),
            Entry.char_device("dev/console", *_CONSOLE),
            Entry.directory("proc"),
            Entry.directory("tmp"),
            Entry.directory("smoke"),
            Entry.file("smoke/argv", argv),
            Entry.file(program.lstrip("/"), binary, executable=True),
        ]
    )


def checksum(key: str, value: str) -> str:
    """The checksum init appends to a record line (CRC-32, as zlib computes it)."""
    return f"{zlib.crc32(f'{key} {value}'.encode()):08x}"


def _record_lines(console: str) -> tuple[dict[str, str], int]:
    """The first record's values by key (``begin`` to ``end``), and how many of its lines
    failed their checksum."""
    values: dict[str, str] = {}
    garbled = 0
    started = False
    for line in console.splitlines():
        at = line.find(MARKER)
        if at < 0:
            continue
        body, _, crc = line[at + len(MARKER) :].rstrip("\r").rpartition(" ")
        key, _, value = body.partition(" ")
        if checksum(key, value) != crc:
            if started:
                garbled += 1
            continue
        if key == "begin":
            values, garbled, started = {}, 0, True
        elif key == "end" and started:
            return values, garbled
        elif started:
            values.setdefault(key, value)
    return (values, garbled) if started else ({}, 0)


def _text(value: str) -> str:
    return base64.b64decode(value, validate=True).decode(errors="replace")


def parse(console: str) -> GuestRun | str:
    """The run init reported on ``console`` (the guest's whole serial output), or why there is
    none to read: one sentence."""
    values, garbled = _record_lines(console)
    if not values:
        return (
            f"the guest printed no complete result ({garbled} line(s) of it were garbled)"
            if garbled
            else "the guest printed no result"
        )
    status = values.get("status", "")
    if status.startswith("error:"):
        return f"the guest's init could not run the binary ({status.removeprefix('error:')})"
    missing = [key for key in _KEYS if key not in values]
    if missing:
        return (
            f"the guest's result lacks {', '.join(missing)} "
            f"({garbled} line(s) failed their checksum)"
        )
    try:
        how, _, number = status.partition(":")
        code = int(number)
        if how not in ("exited", "signaled"):
            raise ValueError(status)
        stdout, stderr = _text(values["stdout"]), _text(values["stderr"])
        dropped = int(values["stdout_dropped"]), int(values["stderr_dropped"])
        page_size, run_ns = int(values["page_size"]), int(values["run_ns"])
    except (ValueError, binascii.Error) as err:
        return f"the guest's result cannot be read ({err})"
    return GuestRun(
        kernel=values["kernel"],
        page_size=page_size,
        exit_code=code if how == "exited" else 128 + code,
        signal=code if how == "signaled" else None,
        stdout=stdout + _dropped(dropped[0]),
        stderr=stderr + _dropped(dropped[1]),
        run_seconds=run_ns / 1e9,
    )


def _dropped(count: int) -> str:
    return f"\n[{count} more bytes not kept]" if count else ""
