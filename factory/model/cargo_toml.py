"""images.toml's settings written in the workspace's Cargo.toml files instead (as cross,
cargo-dist and cargo-deb read theirs), read into the same Config by the same schema.

    [workspace.metadata.factory.<table>]    images.toml's [<table>]: workspace (not `path`: the
                                            workspace is this Cargo.toml's folder), builder,
                                            registry, bazel; also [[...factory.image]]
    [[package.metadata.factory.image]]      one [[image]] of this package: `package` and
                                            `binary` default to the package's name

Relative paths (`[builder] dockerfile`) start at the workspace's root (the folder of the
Cargo.toml with [workspace]). A message names the Cargo.toml, the key as written there and its
line. images.toml wins when both exist: `shadowed` names the tables it hides.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from factory.errors import ConfigError
from factory.model import config as cfg
from factory.model.reader import KeyPath, Origin, Reader
from factory.model.workspace import CargoWorkspace

WORKSPACE_TABLE: Final = ("workspace", "metadata", "factory")
PACKAGE_TABLE: Final = ("package", "metadata", "factory")


@dataclass(frozen=True, kw_only=True)
class Manifest:
    path: Path
    text: str
    document: dict[str, Any]

    @classmethod
    def read(cls, path: Path) -> Manifest:
        try:
            text = path.read_text(encoding="utf-8")
            return cls(path=path, text=text, document=tomllib.loads(text))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
            raise ConfigError(f"{path}: cannot be read ({err}). Fix the file.") from err

    def table(self, keys: tuple[str, ...]) -> Any:
        """The value at ``keys`` (None when absent)."""
        value: Any = self.document
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        return value


def _name(keys: tuple[str, ...]) -> str:
    return "[" + ".".join(keys) + "]"


def shadowed(manifests: list[Path]) -> list[str]:
    """The factory tables in these Cargo.toml files, as `[table] in <file>`."""
    found = []
    for path in manifests:
        try:
            manifest = Manifest.read(path)
        except ConfigError:  # missing or broken: cargo reports that, not this warning
            continue
        for keys in (WORKSPACE_TABLE, PACKAGE_TABLE):
            if manifest.table(keys) is not None:
                found.append(f"{_name(keys)} in {path}")
    return found


def load(workspace: CargoWorkspace) -> cfg.Config | None:
    """The configuration in the workspace's Cargo.toml files; None when none has a factory
    table."""
    root = Manifest.read(workspace.root / "Cargo.toml")
    base = root.table(WORKSPACE_TABLE)
    members = [(m.package, Manifest.read(m.manifest)) for m in workspace.members]
    with_images = [(name, m) for name, m in members if m.table(PACKAGE_TABLE) is not None]
    if base is None and not with_images:
        return None
    top = Origin(source=root.path, text=root.text, prefix=WORKSPACE_TABLE)
    fail = Reader(root.path, root.text, {(): top}).fail
    if base is not None and not isinstance(base, dict):
        raise fail((), "expected a table.", "Write [workspace.metadata.factory.registry] etc.")
    document: dict[str, Any] = dict(base or {})
    keys = document.get("workspace", {})
    if isinstance(keys, dict):
        if "path" in keys:
            raise fail(
                ("workspace", "path"),
                "the workspace is the folder of this Cargo.toml.",
                "Remove `path` (only images.toml has it).",
            )
        document["workspace"] = {**keys, "path": "."}
    origins: dict[KeyPath, Origin] = {(): top}
    images: list[Any] = list(document.get("image", []))
    for name, manifest in with_images:
        images += _package_images(name, manifest, len(images), origins)
    document["image"] = images
    files = [root.path] if base is not None else []
    files += [m.path for _, m in with_images if m.path not in files]
    return cfg.parse(
        document, source=root.path, text=root.text, origins=origins, files=tuple(files)
    )


def _package_images(
    package: str, manifest: Manifest, first: int, origins: dict[KeyPath, Origin]
) -> list[Any]:
    """The [[package.metadata.factory.image]] tables of one member, with `package` and `binary`
    defaulting to its name; each registered in ``origins`` as image ``first`` + i."""
    table = manifest.table(PACKAGE_TABLE)
    here = Origin(source=manifest.path, text=manifest.text, prefix=PACKAGE_TABLE)
    fail = Reader(manifest.path, manifest.text, {(): here}).fail
    if not isinstance(table, dict):
        raise fail((), "expected a table.", "Write [[package.metadata.factory.image]].")
    for key in table:
        if key != "image":
            raise fail(
                (key,),
                "only images belong to a package.",
                "Write [[package.metadata.factory.image]] tables here and the workspace, "
                "builder and registry keys in [workspace.metadata.factory] of the workspace's "
                "Cargo.toml.",
            )
    raw = table.get("image", [])
    if not isinstance(raw, list):
        raise fail(("image",), "expected an array of tables.", "Write [[...factory.image]].")
    out: list[Any] = []
    for index, image in enumerate(raw):
        origins[("image", first + index)] = Origin(
            source=manifest.path, text=manifest.text, prefix=(*PACKAGE_TABLE, "image", index)
        )
        if isinstance(image, dict):
            image = {"package": package, "binary": package, **image}
        out.append(image)
    return out
