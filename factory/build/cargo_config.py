"""The workspace's own Cargo configuration (``.cargo/config.toml``), merged with factory's.

factory passes its target flags in ``CARGO_ENCODED_RUSTFLAGS``, which would make cargo ignore
every ``rustflags`` the workspace configured. So the flags cargo would have used are taken first,
in cargo's own order (the first that is set wins: ``CARGO_ENCODED_RUSTFLAGS``, ``RUSTFLAGS``,
every matching ``target.<triple>.rustflags`` and ``target.'cfg(..)'.rustflags`` joined,
``build.rustflags``), and factory's are added after them, so ``--cfg tokio_unstable`` survives
and factory's ``-Ctarget-cpu`` wins over a workspace's. A workspace ``linker`` for a musl triple is
overridden (factory links with its own wrapper) and reported. The ``[env]`` names are returned so
factory does not shadow them (cargo's ``[env]`` never overrides the environment it is given).

Inside the builder, cargo runs in the workspace's root, so it reads the same file (the builder's
own ``$CARGO_HOME/config.toml`` holds only factory's linker settings).
"""

from __future__ import annotations

import re
import shlex
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from factory.errors import UsageError
from factory.model.targets import Target

ENCODED_SEPARATOR: Final = "\x1f"
FLAG_VARIABLES: Final = ("CARGO_ENCODED_RUSTFLAGS", "RUSTFLAGS")
"""factory's own environment variables that carry rustflags, as cargo reads them, first wins."""
CONFIG_NAMES: Final = (".cargo/config.toml", ".cargo/config")


@dataclass(frozen=True, kw_only=True)
class CargoConfig:
    """What factory reads of a workspace's ``.cargo/config.toml``."""

    path: Path | None
    build_rustflags: tuple[str, ...] | None = None
    target_rustflags: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """(``target.<key>`` table name, its rustflags) in file order; key a triple or ``cfg(..)``."""
    linkers: tuple[tuple[str, str], ...] = ()
    """(triple, linker) for every ``target.<triple>.linker``."""
    env: frozenset[str] = frozenset()


@dataclass(frozen=True, kw_only=True)
class Rustflags:
    """One target's rustflags: where the workspace's came from, and the merged list."""

    source: str
    """``CARGO_ENCODED_RUSTFLAGS``, ``RUSTFLAGS``, ``target.<key>.rustflags``, ... or ``none``."""
    flags: tuple[str, ...]

    def encoded(self) -> str:
        return ENCODED_SEPARATOR.join(self.flags)


def _flags(value: object, where: str, path: Path) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(value.split())
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise UsageError(
        f"{path}: `{where}` must be a string or an array of strings, not {value!r}.",
        hint="Fix it as cargo's configuration reference describes; factory adds its own "
        "target flags to it.",
    )


def load(workspace: Path) -> CargoConfig:
    """The workspace's ``.cargo/config.toml`` (or ``.cargo/config``); empty when it has none."""
    path = next((workspace / n for n in CONFIG_NAMES if (workspace / n).is_file()), None)
    if path is None:
        return CargoConfig(path=None)
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(
            f"{path} cannot be read as TOML: {exc}.",
            hint="cargo would refuse it too: fix the file, then run factory again.",
        ) from exc
    build = data.get("build")
    build_flags = None
    if isinstance(build, dict) and "rustflags" in build:
        build_flags = _flags(build["rustflags"], "build.rustflags", path)
    target_flags: list[tuple[str, tuple[str, ...]]] = []
    linkers: list[tuple[str, str]] = []
    targets = data.get("target")
    for key, table in targets.items() if isinstance(targets, dict) else ():
        if not isinstance(table, dict):
            continue
        if "rustflags" in table:
            where = f"target.{key}.rustflags"
            target_flags.append((key, _flags(table["rustflags"], where, path)))
        if isinstance(table.get("linker"), str):
            linkers.append((key, table["linker"]))
    env = data.get("env")
    return CargoConfig(
        path=path,
        build_rustflags=build_flags,
        target_rustflags=tuple(target_flags),
        linkers=tuple(linkers),
        env=frozenset(env) if isinstance(env, dict) else frozenset(),
    )


def merged_rustflags(
    config: CargoConfig, target: Target, factory: tuple[str, ...], environ: Mapping[str, str]
) -> Rustflags:
    """The workspace's rustflags for ``target`` as cargo would pick them, then factory's."""
    encoded = environ.get(FLAG_VARIABLES[0])
    if encoded:
        return Rustflags(
            source="CARGO_ENCODED_RUSTFLAGS",
            flags=(*encoded.split(ENCODED_SEPARATOR), *factory),
        )
    plain = environ.get(FLAG_VARIABLES[1])
    if plain and plain.strip():
        return Rustflags(source="RUSTFLAGS", flags=(*shlex.split(plain), *factory))
    matching = [(k, f) for k, f in config.target_rustflags if _matches(k, target)]
    if matching:
        source = ", ".join(f"target.{key}.rustflags" for key, _ in matching)
        joined = tuple(flag for _, flags in matching for flag in flags)
        return Rustflags(source=source, flags=(*joined, *factory))
    if config.build_rustflags is not None:
        return Rustflags(source="build.rustflags", flags=(*config.build_rustflags, *factory))
    return Rustflags(source="none", flags=factory)


def overridden_linkers(config: CargoConfig, target: Target) -> tuple[str, ...]:
    """The workspace's ``linker`` settings for this target that factory's linker replaces."""
    return tuple(linker for key, linker in config.linkers if _matches(key, target))


# A small evaluator of cargo's `cfg(...)` expressions over the target's well-known cfg values.
_TOKEN: Final = re.compile(
    r'\s*(?:(?P<word>[A-Za-z_][A-Za-z0-9_]*)|"(?P<string>[^"]*)"|(?P<op>[(),=]))'
)


def _cfg_values(target: Target) -> dict[str, set[str]]:
    return {
        "target_arch": {target.arch.gnu_name},
        "target_os": {"linux"},
        "target_env": {"musl"},
        "target_family": {"unix"},
        "target_vendor": {"unknown"},
        "target_pointer_width": {"64"},
        "target_endian": {"little"},
        "target_feature": {"crt-static"},
        "unix": set(),
    }


def _matches(key: str, target: Target) -> bool:
    """Whether a ``[target.<key>]`` table applies: the triple itself, or a true ``cfg(..)``."""
    if not key.startswith("cfg(") or not key.endswith(")"):
        return key == target.triple
    tokens = [(m.lastgroup, m.group(m.lastgroup or "")) for m in _TOKEN.finditer(key[3:])]
    values = _cfg_values(target)
    position = 0

    def expression() -> bool:
        nonlocal position
        kind, word = tokens[position]
        position += 1
        if kind == "op" and word == "(":
            result = expression()
            position += 1  # ")"
            return result
        if word in ("all", "any", "not"):
            position += 1  # "("
            results: list[bool] = []
            while tokens[position] != ("op", ")"):
                results.append(expression())
                if tokens[position] == ("op", ","):
                    position += 1
            position += 1
            if word == "all":
                return all(results)
            if word == "any":
                return any(results)
            return not results[0]
        if position < len(tokens) and tokens[position] == ("op", "="):
            value = tokens[position + 1][1]
            position += 2
            return value in values.get(word, set())
        return word in values

    try:
        return expression()
    except IndexError:
        return False
