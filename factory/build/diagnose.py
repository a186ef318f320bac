"""Why a compile failed, read from cargo's output: which crate's build script, what it printed,
and the failures factory recognises, each with its fix.

cargo reports a failed build script as ``error: failed to run custom build command for `<crate>
<version>``` followed by the script's own ``--- stdout`` and ``--- stderr``; the C compiler's and
linker's complaints are in there. docs/builder-and-build.md lists the recognised failures.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, kw_only=True)
class Known:
    """A failure factory recognises: what it looks like, what it means, and the fix."""

    name: str
    pattern: re.Pattern[str]
    hint: str
    """May name the pattern's first group as {0}."""


KNOWN: Final = (
    Known(
        name="disk full",
        pattern=re.compile(r"No space left on device"),
        hint="The engine's disk is full: free space (`factory clean` removes factory's caches and "
        "images; `docker system df` shows the rest) and run `factory build` again.",
    ),
    Known(
        name="glibc symbol",
        pattern=re.compile(
            r"undefined (?:symbol|reference to)[:`' ]*(__\w+_chk|__isoc\d+_\w+|__libc_\w+|"
            r"gnu_get_libc_\w+|__xstat\w*|__fxstat\w*|__lxstat\w*|secure_getenv\w*)"
        ),
        hint="`{0}` is a glibc symbol: an object compiled against glibc's headers (the wrong "
        "compiler, a prebuilt static library, or CFLAGS naming /usr/include) is being linked into "
        "a musl binary. Let the crate's build script use factory's compilers (CC_<triple>/"
        "CXX_<triple>, which factory sets) or rebuild the library from source for musl.",
    ),
    Known(
        name="missing header",
        pattern=re.compile(
            r"fatal error: '?([\w./+-]+\.h(?:pp)?)'?(?: file not found|: No such file or directory)"
        ),
        hint="The C header `{0}` is not in the target's musl sysroot: the crate expects a system "
        "library that a static musl build cannot take from the builder. Enable the crate's "
        "bundled/vendored feature (e.g. `bundled`, `vendored`, `static`) so it compiles the "
        "library from source, or add the library to a builder of your own ([builder] dockerfile).",
    ),
    Known(
        name="missing tool",
        pattern=re.compile(
            r"is `?(\w[\w.+-]*)`? not installed|(?:sh|bash): (?:\d+: )?(\w[\w.+-]*): "
            r"(?:command )?not found|Could not find `(\w+)`|failed to execute command: (No such)"
        ),
        hint="A tool the build script runs is missing from the builder (`{0}`). factory's "
        "builder has make, cmake, ninja, perl, pkg-config, protoc and libclang; for another tool, "
        "use a builder of your own ([builder] dockerfile) that adds it.",
    ),
    Known(
        name="perl module",
        pattern=re.compile(r"Can't locate ([\w/]+\.pm) in @INC"),
        hint="perl lacks the module `{0}`: the builder's perl is Debian's full perl; a builder of "
        "your own must install `perl` (not only perl-base).",
    ),
    Known(
        name="autotools test program",
        pattern=re.compile(r"C compiler cannot create executables"),
        hint="configure could not link a test program with the target's C compiler: the build "
        "script passed a compiler or flags other than factory's (CC_<triple>); read the crate's "
        "config.log in the output above.",
    ),
    Known(
        name="system library",
        pattern=re.compile(
            r"(?:could not find system library '([\w.+-]+)'|"
            r"The system library `([\w.+-]+)` required by crate)"
        ),
        hint="pkg-config found no `{0}` for the target: the musl sysroot has no system libraries. "
        "Enable the crate's vendored/bundled feature so it compiles the library from source.",
    ),
    Known(
        name="libclang",
        pattern=re.compile(r"Unable to find libclang|couldn't find any valid shared libraries"),
        hint="bindgen did not find libclang: factory sets LIBCLANG_PATH to the builder's LLVM 21; "
        "a builder of your own must install libclang1-21.",
    ),
)

_BUILD_SCRIPT: Final = re.compile(r"(?:error: )?failed to run custom build command for `([^`]+)`")


@dataclass(frozen=True, kw_only=True)
class Diagnosis:
    """What is known about a failed compile."""

    crate: str | None
    """The crate whose build script failed (`jemalloc-sys v0.5.4`), or None."""
    output: str
    """The part of cargo's output to show: the build script's own, or the tail of the whole."""
    known: str | None
    """The name of the recognised failure, or None."""
    hint: str


DEFAULT_HINT: Final = "Fix the error above in the workspace and run `factory build` again."


def _missing_program(text: str) -> str | None:
    """The program a Rust build script failed to start, from `running: "prog" ...` before it."""
    started = re.findall(r'running: (?:cd "[^"]*" && )?(?:[A-Z_]+="[^"]*" )*"?([^" ]+)"?', text)
    return started[-1].rsplit("/", 1)[-1] if started else None


def diagnose(stderr: str, *, limit: int = 6000) -> Diagnosis:
    """Read cargo's stderr: the failing build script, its output, and a hint."""
    found = _BUILD_SCRIPT.search(stderr)
    crate = found.group(1) if found else None
    text = stderr[found.start() :] if found else stderr
    output = text.strip()
    if len(output) > limit:
        output = f"{output[: limit // 3]}\n[...]\n{output[-(2 * limit) // 3 :]}"
    for known in KNOWN:
        match = known.pattern.search(text)
        if match is not None:
            detail = next((g for g in match.groups() if g), match.group(0))
            if known.name == "missing tool" and detail == "No such":
                detail = _missing_program(text) or "see the output above"
            return Diagnosis(
                crate=crate, output=output, known=known.name, hint=known.hint.format(detail)
            )
    hint = DEFAULT_HINT
    if crate is not None:
        hint = (
            f"The build script of `{crate}` failed (its output is above). {DEFAULT_HINT} "
            "docs/builder-and-build.md lists what the builder provides to build scripts."
        )
    return Diagnosis(crate=crate, output=output, known=None, hint=hint)
