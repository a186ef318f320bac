"""The target table: the one source of truth for every target factory builds.

Cargo flags, C compiler flags, OCI platforms, QEMU CPU models, Bazel constraints and the
host features needed for a native run are all derived from the rows below.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from factory.errors import UsageError
from factory.model.reader import closest

CRT_STATIC = "-Ctarget-feature=+crt-static"


class Arch(Enum):
    """A CPU architecture, named as OCI names it."""

    AMD64 = "amd64"
    ARM64 = "arm64"

    @property
    def triple(self) -> str:
        return {Arch.AMD64: "x86_64-unknown-linux-musl", Arch.ARM64: "aarch64-unknown-linux-musl"}[
            self
        ]

    @property
    def elf_machine(self) -> str:
        """The ELF e_machine as pyelftools names it."""
        return {Arch.AMD64: "EM_X86_64", Arch.ARM64: "EM_AARCH64"}[self]

    @property
    def qemu_binary(self) -> str:
        return {Arch.AMD64: "qemu-x86_64", Arch.ARM64: "qemu-aarch64"}[self]

    @property
    def gnu_name(self) -> str:
        """The architecture as Linux, clang and Debian's multiarch paths spell it."""
        return {Arch.AMD64: "x86_64", Arch.ARM64: "aarch64"}[self]


@dataclass(frozen=True, kw_only=True)
class Platform:
    """An OCI platform (image-spec `platform` object)."""

    os: str
    architecture: str
    variant: str | None

    def __str__(self) -> str:
        parts = [self.os, self.architecture] + ([self.variant] if self.variant else [])
        return "/".join(parts)

    def to_json(self) -> dict[str, str | None]:
        return {"os": self.os, "architecture": self.architecture, "variant": self.variant}


@dataclass(frozen=True, kw_only=True)
class Target:
    """One row of the target table."""

    name: str
    arch: Arch
    level: str | None
    """The ISA level beyond the baseline: `x86-64-v3`, `v8.2a`; None for a baseline."""
    platform: Platform
    c_march: str
    """What clang's `-march=` takes for this level (for C code compiled by build scripts)."""
    qemu_cpu: str | None
    qemu_note: str
    """Why this QEMU CPU model was chosen, or why there is none."""
    host_features: tuple[str, ...]
    """The /proc/cpuinfo flags a host needs to run this target natively."""

    @property
    def triple(self) -> str:
        return self.arch.triple

    @property
    def rustflags(self) -> tuple[str, ...]:
        flags = [CRT_STATIC]
        if self.level is None:
            return tuple(flags)
        if self.arch is Arch.AMD64:
            flags.append(f"-Ctarget-cpu={self.level}")
        else:
            flags.append(f"-Ctarget-feature=+{self.level}")
        return tuple(flags)

    @property
    def elf_machine(self) -> str:
        return self.arch.elf_machine

    @property
    def qemu_binary(self) -> str:
        return self.arch.qemu_binary

    @property
    def is_baseline(self) -> bool:
        return self.level is None

    @property
    def tag_suffix(self) -> str:
        """The suffix of this target's own tag: `<tag>-amd64-v3`."""
        return self.name.replace("_", "-")

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "triple": self.triple,
            "rustflags": list(self.rustflags),
            "platform": self.platform.to_json(),
            "qemu_cpu": self.qemu_cpu,
            "elf_machine": self.elf_machine,
            "qemu_binary": self.qemu_binary,
            "c_march": self.c_march,
            "host_features": list(self.host_features),
            "qemu_note": self.qemu_note,
        }


# --- x86-64 -------------------------------------------------------------------------------

_X86_FEATURES: dict[int, tuple[str, ...]] = {
    1: ("cmov", "cx8", "fpu", "fxsr", "mmx", "sse", "sse2"),
    2: ("cx16", "lahf_lm", "popcnt", "sse4_1", "sse4_2", "ssse3"),
    3: ("avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"),
    4: ("avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"),
}

_X86_QEMU: dict[int, tuple[str | None, str]] = {
    1: ("qemu64", "QEMU's generic x86-64 model: SSE2 only"),
    2: ("Nehalem", "the first Intel core with SSE4.2 and POPCNT"),
    3: ("Haswell-noTSX", "the first Intel core with AVX2, FMA and BMI2"),
    4: (None, "QEMU cannot emulate AVX-512: runs natively when the host has avx512f/bw/cd/dq/vl"),
}


def _x86(level: int) -> Target:
    features = tuple(f for n in range(1, level + 1) for f in _X86_FEATURES[n])
    cpu, note = _X86_QEMU[level]
    return Target(
        name="amd64" if level == 1 else f"amd64_v{level}",
        arch=Arch.AMD64,
        level=None if level == 1 else f"x86-64-v{level}",
        platform=Platform(
            os="linux", architecture="amd64", variant=None if level == 1 else f"v{level}"
        ),
        c_march="x86-64" if level == 1 else f"x86-64-v{level}",
        qemu_cpu=cpu,
        qemu_note=note,
        host_features=features,
    )


# --- AArch64 ------------------------------------------------------------------------------

# (major, minor): hwcaps that level makes mandatory, beyond the level it builds on.
_ARM_FEATURES: dict[tuple[int, int], tuple[str, ...]] = {
    (8, 0): ("fp", "asimd"),
    (8, 1): ("atomics", "asimdrdm", "crc32"),
    (8, 2): ("dcpop",),
    (8, 3): ("lrcpc", "jscvt", "fcma", "paca", "pacg"),
    (8, 4): ("dit", "uscat", "ilrcpc", "flagm"),
    (8, 5): ("sb", "flagm2", "frint", "bti"),
    (8, 6): ("bf16", "i8mm"),
    (8, 7): ("wfxt",),
    (8, 8): ("mops",),
    (8, 9): ("cssc",),
    (9, 0): ("sve", "sve2"),
}

# The oldest QEMU CPU model that implements at least each level.
_ARM_QEMU: dict[tuple[int, int], tuple[str, str]] = {
    (8, 0): ("cortex-a53", "Cortex-A53: Armv8.0-A"),
    (8, 1): ("cortex-a55", "Cortex-A55: Armv8.2-A, the oldest model with v8.1"),
    (8, 2): ("cortex-a55", "Cortex-A55: Armv8.2-A"),
    (8, 3): ("neoverse-v1", "Neoverse-V1: Armv8.4-A, the oldest model with v8.3"),
    (8, 4): ("neoverse-v1", "Neoverse-V1: Armv8.4-A"),
    (8, 5): ("neoverse-n2", "Neoverse-N2: Armv9.0-A, which includes v8.5"),
    (9, 0): ("neoverse-n2", "Neoverse-N2: Armv9.0-A"),
}
_ARM_MAX_NOTE = "no QEMU model implements exactly this level: `max` implements all of them"

# Armv9.x builds on Armv8.(x+5).
_V9_BASE = 5


def _arm_parts(major: int, minor: int) -> list[tuple[int, int]]:
    """Every level whose mandatory features a level includes."""
    if major == 8:
        return [(8, m) for m in range(minor + 1)]
    return [(8, m) for m in range(min(minor + _V9_BASE, 9) + 1)] + [(9, 0)]


def _arm(major: int, minor: int) -> Target:
    baseline = (major, minor) == (8, 0)
    level = None if baseline else (f"v{major}a" if minor == 0 else f"v{major}.{minor}a")
    features = tuple(f for part in _arm_parts(major, minor) for f in _ARM_FEATURES[part])
    cpu, note = _ARM_QEMU.get((major, minor), ("max", _ARM_MAX_NOTE))
    variant = None if baseline else (f"v{major}" if minor == 0 else f"v{major}.{minor}")
    suffix = f"_v{major}a" if minor == 0 else f"_v{major}_{minor}a"
    return Target(
        name="arm64" if baseline else f"arm64{suffix}",
        arch=Arch.ARM64,
        level=level,
        platform=Platform(os="linux", architecture="arm64", variant=variant),
        c_march=f"armv{major}-a" if minor == 0 else f"armv{major}.{minor}-a",
        qemu_cpu=cpu,
        qemu_note=note,
        host_features=features,
    )


TARGETS: tuple[Target, ...] = (
    *(_x86(level) for level in range(1, 5)),
    *(_arm(8, minor) for minor in range(10)),
    *(_arm(9, minor) for minor in range(7)),
)
BY_NAME: dict[str, Target] = {t.name: t for t in TARGETS}
BY_PLATFORM: dict[str, Target] = {str(t.platform): t for t in TARGETS}

# The seed's default targets (its README's "Build" section and the images.toml default).
DEFAULT_TARGETS: tuple[str, ...] = ("amd64", "amd64_v2", "amd64_v3", "amd64_v4", "arm64")


def get(name: str) -> Target:
    """The target called `name`; an unknown name is a usage error with a suggestion."""
    try:
        return BY_NAME[name]
    except KeyError as err:
        raise UsageError(unknown_target_message(name)) from err


def unknown_target_message(spec: str) -> str:
    close = closest(spec, [*BY_NAME, *BY_PLATFORM])
    hint = f" Did you mean {close!r}?" if close else ""
    return (
        f"Unknown target {spec!r}.{hint} Valid targets: {', '.join(BY_NAME)}; also `all`, "
        "a glob such as `arm64_v9*`, or an OCI platform such as `linux/arm64/v8.2`."
    )


def expand(spec: str) -> tuple[Target, ...]:
    """The targets one selection word names, in table order. Raises on an unknown word."""
    spec = spec.strip()
    if spec == "all":
        return TARGETS
    if spec in BY_NAME:
        return (BY_NAME[spec],)
    if spec in BY_PLATFORM:
        return (BY_PLATFORM[spec],)
    if any(c in spec for c in "*?["):
        matched = tuple(t for t in TARGETS if fnmatch.fnmatchcase(t.name, spec))
        if matched:
            return matched
        raise UsageError(f"The target pattern {spec!r} matches no target. {_valid_names()}")
    raise UsageError(unknown_target_message(spec))


def select(specs: Iterable[str]) -> tuple[Target, ...]:
    """The targets a list of selection words names: deduplicated, in table order."""
    chosen: set[str] = set()
    for spec in specs:
        chosen.update(t.name for t in expand(spec))
    return tuple(t for t in TARGETS if t.name in chosen)


def _valid_names() -> str:
    return f"Valid targets: {', '.join(BY_NAME)}."
