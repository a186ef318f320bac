"""Warm starts for a Cargo target directory that does not exist yet.

A target directory is per workspace x builder x target x profile (factory.build.cargo), so a new
checkout path, a second workspace or a new level would compile everything from scratch. A new
one instead starts as a copy of two things that do not depend on the workspace or the level:

1. the **std seed** of its builder, target, profile and rustflags: the target directory of an
   empty crate built with the same command and environment, under ``/cache/std/<builder>/``,
   built once and then never written again. std, core, alloc, compiler_builtins and their build
   scripts are fresh in every workspace that starts from it;
2. the **host half** of a sibling: the same workspace's target directory for another target
   (another level of the same architecture first), whose ``release/`` (or ``debug/``) holds the
   build scripts and proc-macros compiled for the host, which no target changes.

Cargo decides what is fresh from its own fingerprints, so a copy can only save work, never
change a binary: a unit whose inputs differ (a profile setting of the workspace, a dependency
that only one level enables) is compiled again. A sibling is copied only under a shared lock on
its ``.cargo-lock`` taken without waiting, so a sibling being built is never copied half-written
(and never delays this build); a seed is built in a private directory and renamed into place.
Seeds and target directories of other builders are removed when a new one is made, so a
builder rebuild does not leave old ones growing; `factory clean` removes the whole cache volume.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from factory.build import vendor
from factory.build.job import CARGO_CACHE

STD_SEEDS: Final = f"{CARGO_CACHE.path}/std"
TARGETS: Final = f"{CARGO_CACHE.path}/target"
SEED_CRATE: Final = "factory-std-seed"

# $1 the seed directory, $2 a token unique to this run; the rest is the cargo command. Built
# next to where it lands (one filesystem: the rename is atomic); a concurrent run that finished
# first wins and this one's copy is dropped.
_SEED_SCRIPT: Final = """set -eu
seed="$1"; token="$2"; shift 2
[ -d "$seed" ] && exit 0
builders="$(dirname "$(dirname "$seed")")"
mine="$(dirname "$seed")"
for old in "$builders"/*; do [ "$old" = "$mine" ] || rm -rf "$old"; done
work="$seed.tmp-$token"
trap 'rm -rf "$work"' EXIT
rm -rf "$work"
mkdir -p "$work/crate/src"
printf '[package]\\nname = "%s"\\nversion = "0.0.0"\\nedition = "2021"\\n\\n[workspace]\\n' \
  "$FACTORY_SEED_CRATE" > "$work/crate/Cargo.toml"
printf 'fn main() {}\\n' > "$work/crate/src/main.rs"
cd "$work/crate"
"$@" --target-dir "$work/target"
mv -T "$work/target" "$seed" 2>/dev/null || true
"""

# $1 the new target directory, $2 its seed, $3 the host half's name (release or debug), $4 a
# token; the rest are the siblings. Prints what it started from.
_PREPARE_SCRIPT: Final = """set -eu
dir="$1"; seed="$2"; half="$3"; token="$4"; shift 4
[ -d "$dir" ] && exit 0
workspace="$(dirname "$(dirname "$(dirname "$dir")")")"
mine="$(dirname "$(dirname "$dir")")"
for old in "$workspace"/*; do [ "$old" = "$mine" ] || rm -rf "$old"; done
tmp="$dir.tmp-$token"
trap 'rm -rf "$tmp"' EXIT
rm -rf "$tmp"
mkdir -p "$tmp"
if [ -d "$seed" ]; then cp -a "$seed/." "$tmp/"; echo "seed $seed"; fi
for sibling in "$@"; do
  lock="$sibling/$half/.cargo-lock"
  [ -f "$lock" ] || continue
  mkdir -p "$tmp/$half"
  if flock -s -n -E 75 "$lock" cp -a "$sibling/$half/." "$tmp/$half/"; then
    echo "sibling $sibling"; break
  else
    code=$?; [ "$code" -eq 75 ] || exit "$code"
  fi
done
mv -T "$tmp" "$dir" 2>/dev/null || true
"""


def _short(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def builder_key(builder_id: str) -> str:
    """The directory name of one builder's seeds and target directories."""
    return _short(builder_id)[:12]


def seed_dir(builder_id: str, triple: str, environment: Mapping[str, str]) -> str:
    """The std seed for a builder, a triple and the environment of a build (profile,
    rustflags, compilers), and where std's crates are vendored (their paths are part of what
    cargo fingerprints): one seed per combination that builds std alike."""
    shared = sorted(environment)
    fingerprint = _short(triple, vendor.CRATES, *(f"{name}={environment[name]}" for name in shared))
    return f"{STD_SEEDS}/{builder_key(builder_id)}/{fingerprint}"


def seed_command(seed: str, token: str, cargo: Sequence[str]) -> list[str]:
    """Build the seed (an empty crate) with ``cargo``, unless it exists; atomic."""
    return ["sh", "-c", _SEED_SCRIPT, "seed", seed, token, *cargo]


SEED_ENVIRONMENT: Final = {"FACTORY_SEED_CRATE": SEED_CRATE}
"""Given to the seed command beside the build's environment (the crate's name)."""


@dataclass(frozen=True, kw_only=True)
class Start:
    """What a new target directory started from (both empty for an existing directory)."""

    seed: bool
    sibling: str | None

    @staticmethod
    def parse(output: str) -> Start:
        seed = False
        sibling: str | None = None
        for line in output.splitlines():
            word, _, rest = line.partition(" ")
            if word == "seed":
                seed = True
            elif word == "sibling":
                sibling = rest
        return Start(seed=seed, sibling=sibling)


def prepare_command(
    directory: str, seed: str, half: str, token: str, siblings: Sequence[str]
) -> list[str]:
    """Create ``directory`` from the seed and the first idle sibling, unless it exists."""
    return ["sh", "-c", _PREPARE_SCRIPT, "prepare", directory, seed, half, token, *siblings]
