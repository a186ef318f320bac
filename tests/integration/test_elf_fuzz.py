"""Hostile ELF files: a seeded mutation loop over real binaries (musl and glibc, static and
dynamic, unstripped, hand-made AArch64) through what `factory validate` runs on every binary:
the ELF audit (`elfcheck.check`) and the instruction counts (`validate.audit_isa`).

Every mutant must give a report (findings, never an exception) that serialises to JSON, in
bounded time. The loop is bounded by a mutant count and a time budget; a failure names the
seed and keeps the mutant, so it can be reproduced.
"""

from __future__ import annotations

import json
import random
import struct
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from factory.model import targets
from factory.model.targets import Arch
from factory.validate import elf as elfcheck
from factory.validate import stage as validate
from tests.elfbin import static_executable
from tests.testtools import HELLO, Tools

MUTANTS_PER_SEED = 60
SEEDS = range(12)
BUDGET_SECONDS = 45.0
"""The whole loop's budget; on a slow machine fewer mutants run (the count is reported)."""
SLOWEST_ALLOWED = 10.0
"""One file's audit may not take longer than this (a hang is a crash too)."""

Mutation = Callable[[random.Random, bytearray], bytearray]


def _flip_bits(rng: random.Random, data: bytearray) -> bytearray:
    # mostly in the headers, where the structure is
    for _ in range(rng.randint(1, 16)):
        limit = min(len(data), 512) if rng.random() < 0.7 else len(data)
        position = rng.randrange(limit)
        data[position] ^= 1 << rng.randrange(8)
    return data


def _random_bytes(rng: random.Random, data: bytearray) -> bytearray:
    position = rng.randrange(len(data))
    size = rng.randint(1, 64)
    data[position : position + size] = rng.randbytes(size)
    return data


def _header_field(rng: random.Random, data: bytearray) -> bytearray:
    """An extreme value in a header field that points elsewhere or counts something."""
    fields = {  # offset and format in the ELF64 header / first program header
        0x18: "<Q",  # e_entry
        0x20: "<Q",  # e_phoff
        0x28: "<Q",  # e_shoff
        0x36: "<H",  # e_phentsize
        0x38: "<H",  # e_phnum
        0x3A: "<H",  # e_shentsize
        0x3C: "<H",  # e_shnum
        0x3E: "<H",  # e_shstrndx
        0x40 + 0x08: "<Q",  # p_offset
        0x40 + 0x20: "<Q",  # p_filesz
    }
    offset, fmt = rng.choice(sorted(fields.items()))
    size = struct.calcsize(fmt)
    if offset + size > len(data):
        return data
    extreme = rng.choice([0, 1, 0xFFFF, 0x7FFF, (1 << (8 * size)) - 1, rng.getrandbits(8 * size)])
    data[offset : offset + size] = struct.pack(fmt, extreme & ((1 << (8 * size)) - 1))
    return data


def _section_headers(rng: random.Random, data: bytearray) -> bytearray:
    """Garbage inside the section header table (names, types, offsets, sizes)."""
    if len(data) < 0x40:
        return data
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    if not 0 < shoff < len(data):
        return _random_bytes(rng, data)
    position = shoff + rng.randrange(max(1, len(data) - shoff))
    size = rng.randint(1, 32)
    data[position : position + size] = rng.randbytes(size)
    return data


def _truncate(rng: random.Random, data: bytearray) -> bytearray:
    return data[: rng.randrange(1, len(data))]


def _extend(rng: random.Random, data: bytearray) -> bytearray:
    return data + rng.randbytes(rng.randint(1, 4096))


def _splice(rng: random.Random, data: bytearray) -> bytearray:
    start = rng.randrange(len(data))
    chunk = data[start : start + rng.randint(1, 256)]
    position = rng.randrange(len(data))
    return data[:position] + chunk + data[position:]


MUTATIONS: tuple[Mutation, ...] = (
    _flip_bits,
    _random_bytes,
    _header_field,
    _section_headers,
    _truncate,
    _extend,
    _splice,
)


@pytest.fixture(scope="module")
def seeds_of(
    tools: Tools, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[bytes, str]]:
    """Real binaries to mutate (compiled in the test-tools image), with the target each is
    audited against."""
    d = tmp_path_factory.mktemp("fuzz-seeds")
    made = {
        "musl-static": tools.compile_c(
            d / "a", HELLO, cc="musl-gcc", flags=["-static", "-O2", "-s"]
        ),
        "musl-static-pie": tools.compile_c(
            d / "b", HELLO, cc="musl-gcc", flags=["-static-pie", "-fPIE", "-O2"]
        ),
        "musl-unstripped": tools.compile_c(d / "c", HELLO, cc="musl-gcc", flags=["-static", "-g"]),
        "glibc-dynamic": tools.compile_c(d / "d", HELLO, cc="gcc", flags=["-O2"]),
    }
    found = {name: (path.read_bytes(), "amd64") for name, path in made.items()}
    found["aarch64-handmade"] = (static_executable(Arch.ARM64, b"hello\n"), "arm64")
    return found


def test_mutated_binaries_give_findings_never_exceptions(
    seeds_of: dict[str, tuple[bytes, str]], tmp_path: Path
) -> None:
    started = time.monotonic()
    checked = 0
    unreadable = 0
    slowest = 0.0
    names = sorted(seeds_of)
    for seed in SEEDS:
        rng = random.Random(seed)
        for number in range(MUTANTS_PER_SEED):
            if time.monotonic() - started > BUDGET_SECONDS:
                break
            name = names[(seed + number) % len(names)]
            original, target_name = seeds_of[name]
            data = bytearray(original)
            for _ in range(rng.randint(1, 3)):
                data = rng.choice(MUTATIONS)(rng, data) or bytearray(b"\x7fELF")
            path = tmp_path / f"mutant-{seed}-{number}-{name}"
            path.write_bytes(bytes(data))
            target = targets.get(target_name)
            began = time.monotonic()
            try:
                report = elfcheck.check(path, target)
                counts = validate.audit_isa(path, report)
                json.dumps(report.to_json())
                if counts is not None:
                    json.dumps(counts.to_json())
            except Exception as err:  # the point of the test: nothing may escape
                pytest.fail(
                    f"{type(err).__name__}: {err} on a mutant of {name} "
                    f"(seed {seed}, mutant {number}; kept at {path})"
                )
            took = time.monotonic() - began
            slowest = max(slowest, took)
            assert took < SLOWEST_ALLOWED, f"{path}: the audit took {took:.1f} s"
            if report.facts is None:
                unreadable += 1
                assert not report.passed
                assert report.findings[0].code == "not-elf"
            path.unlink()
            checked += 1
    print(f"{checked} mutants, {unreadable} unreadable, slowest {slowest:.2f} s")
    assert checked >= 100, f"only {checked} mutants in {BUDGET_SECONDS} s"
    assert 0 < unreadable < checked, "the mutations should make both readable and broken files"
