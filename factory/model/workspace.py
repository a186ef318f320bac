"""A Cargo workspace as `cargo metadata` describes it: its members' binaries, one image each.

This is the one place that knows which of a workspace's targets factory can turn into images:
the `bin` targets of the workspace's members, without `required-features` (a plain
`cargo build --bin` leaves them out). Examples, tests and benches are other kinds of target and
never images. `factory init` writes one `[[image]]` per binary, and `factory image` without an
images.toml builds the binary when there is exactly one; both read it here.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from factory.errors import FactoryError, UsageError
from factory.model.config import IMAGE_NAME_RE

METADATA_COMMAND: Final = ("cargo", "metadata", "--format-version", "1", "--no-deps", "--offline")
"""What factory asks cargo: `--no-deps` still lists each member's targets and its direct
dependencies' names, and needs neither the crate registry nor Cargo.lock."""

CLI_PARSERS: Final = ("clap", "argh")
"""Argument parsers whose binaries answer `--version` and exit (what the smoke run asks)."""


class NotAWorkspace(UsageError):
    """The directory is in no Cargo workspace."""


@dataclass(frozen=True, kw_only=True)
class CargoBinary:
    """A `bin` target of a workspace member, and what its package depends on."""

    package: str
    name: str
    manifest: Path
    """The package's Cargo.toml."""
    parser: str | None
    """The argument parser (one of CLI_PARSERS) the package depends on, if any."""


@dataclass(frozen=True, kw_only=True)
class Skipped:
    """A `bin` target that cannot become an image, and why."""

    package: str
    name: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class Member:
    """A package of the workspace and its Cargo.toml."""

    package: str
    manifest: Path


@dataclass(frozen=True, kw_only=True)
class CargoWorkspace:
    root: Path
    """The directory of the workspace's root Cargo.toml."""
    binaries: tuple[CargoBinary, ...]
    skipped: tuple[Skipped, ...] = ()
    members: tuple[Member, ...] = ()

    def describe(self) -> str:
        """The binaries as `name (package p)`, for messages."""
        return ", ".join(f"{b.name} (package {b.package})" for b in self.binaries)


def find_manifests(start: Path) -> tuple[Path, ...]:
    """Every directory from ``start`` up to / that holds a Cargo.toml, nearest first.

    Raises NotAWorkspace when there is none: cargo would find no workspace either.
    """
    start = start.resolve()
    found = tuple(d for d in (start, *start.parents) if (d / "Cargo.toml").is_file())
    if not found:
        raise NotAWorkspace(
            f"{start} is not in a Cargo workspace: there is no Cargo.toml in it or in any "
            "parent directory.",
            hint="Run factory in the workspace (the folder of its Cargo.toml, or a member's), "
            "or pass --config PATH to an images.toml.",
        )
    return found


def parse_metadata(
    document: Mapping[str, Any], *, relocate: Callable[[str], Path] = Path
) -> CargoWorkspace:
    """The workspace that `cargo metadata --format-version 1` printed.

    ``relocate`` turns a path cargo printed into a path on this host (cargo may have run in a
    container with the workspace mounted elsewhere).
    """
    try:
        members = set(document["workspace_members"])
        packages = [p for p in document["packages"] if p["id"] in members]
        root = relocate(str(document["workspace_root"]))
        binaries: list[CargoBinary] = []
        skipped: list[Skipped] = []
        for package in packages:
            for target in package["targets"]:
                if "bin" not in target["kind"]:
                    continue
                features = target.get("required-features") or []
                if features:
                    reason = f"it has required-features ({', '.join(features)})"
                    skipped.append(
                        Skipped(package=package["name"], name=target["name"], reason=reason)
                    )
                    continue
                binaries.append(
                    CargoBinary(
                        package=str(package["name"]),
                        name=str(target["name"]),
                        manifest=relocate(str(package["manifest_path"])),
                        parser=_parser(package["dependencies"]),
                    )
                )
        members_of = tuple(
            Member(package=str(p["name"]), manifest=relocate(str(p["manifest_path"])))
            for p in packages
        )
    except (KeyError, TypeError) as err:
        raise FactoryError(
            f"cargo metadata printed a document factory cannot read (no {err} where expected).",
            hint="Check that `cargo metadata --format-version 1` works in this workspace and "
            "that cargo is 1.60 or newer.",
        ) from err
    return CargoWorkspace(
        root=root, binaries=tuple(binaries), skipped=tuple(skipped), members=members_of
    )


def _parser(dependencies: Sequence[Mapping[str, Any]]) -> str | None:
    """The argument parser among a package's normal, non-optional dependencies."""
    for dependency in dependencies:
        normal = dependency.get("kind") is None and not dependency.get("optional", False)
        if normal and dependency["name"] in CLI_PARSERS:
            return str(dependency["name"])
    return None


def image_name(word: str) -> str:
    """``word`` made a valid repository name component: lowercase, every run of characters
    other than letters and digits (`_`, `-`, anything else) one `-`, none at either end."""
    name = re.sub(r"[^a-z0-9]+", "-", word.lower()).strip("-")
    return name or "image"


def image_names(binaries: Sequence[CargoBinary]) -> tuple[str, ...]:
    """One distinct image name per binary, in order: the binary's name, else (when two
    packages have a binary of that name) `<package>-<binary>`, else a number appended."""
    names: list[str] = []
    counts = Counter(image_name(b.name) for b in binaries)
    for b in binaries:
        name = image_name(b.name)
        if counts[name] > 1:
            name = image_name(f"{b.package}-{b.name}")
        candidate, number = name, 2
        while candidate in names:
            candidate, number = f"{name}-{number}", number + 1
        assert IMAGE_NAME_RE.fullmatch(candidate), candidate
        names.append(candidate)
    return tuple(names)
