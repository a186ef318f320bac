"""A shard's result: what `factory image --push --shard` pushed, for `factory index merge`.

A shard pushes the per-target manifests and tags of a subset of the targets and no index tag.
Its result (``--json``'s ``shard`` key and ``--metadata-file PATH``) is a versioned JSON document,
``factory.shard/v1``: per image, its repository, tags and provenance (revision, Cargo.lock,
builder), and per target its platform, manifest digest, size, media type and tags. The merge
reads it back with ``read``, which names the file and the key of anything it cannot use.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from factory.errors import MergeError, UsageError
from factory.image.assemble import LayoutResult
from factory.model import targets as target_table
from factory.model.targets import Target
from factory.util import fsutil

SCHEMA: Final = "factory.shard/v1"


@dataclass(frozen=True, kw_only=True)
class ShardTarget:
    """One target a shard pushed: its manifest and the tags that name it."""

    target: Target
    digest: str
    size: int
    media_type: str
    tags: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target.name,
            "platform": str(self.target.platform),
            "manifest_digest": self.digest,
            "manifest_size": self.size,
            "media_type": self.media_type,
            "tags": list(self.tags),
        }


@dataclass(frozen=True, kw_only=True)
class ShardImage:
    image: str
    repository: str
    tags: tuple[str, ...]
    """The index tags the merge is to write (not written by the shard)."""
    provenance: dict[str, Any]
    targets: tuple[ShardTarget, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "repository": self.repository,
            "tags": list(self.tags),
            "provenance": self.provenance,
            "targets": [t.to_json() for t in self.targets],
        }


@dataclass(frozen=True, kw_only=True)
class ShardResult:
    images: tuple[ShardImage, ...]
    source: str = "this run"
    """Where the result was read from (a file's path), for messages."""

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "images": [i.to_json() for i in self.images]}

    def image(self, name: str) -> ShardImage | None:
        return next((i for i in self.images if i.image == name), None)

    def write(self, path: Path) -> None:
        fsutil.atomic_write_json(path, self.to_json())


def of_layouts(layouts: Sequence[LayoutResult]) -> ShardResult:
    """The result of a shard that pushed ``layouts`` (each to its repository)."""
    return ShardResult(
        images=tuple(
            ShardImage(
                image=layout.image,
                repository=layout.repository,
                tags=layout.tags,
                provenance=layout.provenance.to_json(),
                targets=tuple(
                    ShardTarget(
                        target=i.target,
                        digest=i.manifest.digest,
                        size=i.manifest.size,
                        media_type=i.manifest.media_type,
                        tags=tuple(f"{tag}-{i.target.tag_suffix}" for tag in layout.tags),
                    )
                    for i in layout.images
                ),
            )
            for layout in layouts
        )
    )


# --- reading a result file ----------------------------------------------------------------


class _Reader:
    """Reads one result file; every failure names the file and the key."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, what: str) -> UsageError:
        return UsageError(
            f"{self.path}: `{key}` {what}, so it is no shard result factory can merge.",
            hint="Pass the file `factory image --push --shard --metadata-file PATH` wrote "
            f"(schema {SCHEMA}), or leave it out to merge from the registry's per-target tags.",
        )

    def get(self, document: Any, key: str, kind: type, where: str) -> Any:
        value = document.get(key) if isinstance(document, dict) else None
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
            raise self.fail(f"{where}{key}", f"is missing or not a {kind.__name__}")
        return value

    def target(self, document: Any, where: str) -> ShardTarget:
        name = self.get(document, "target", str, where)
        if name not in target_table.BY_NAME:
            raise self.fail(f"{where}target", f"names the unknown target {name!r}")
        target = target_table.BY_NAME[name]
        platform = self.get(document, "platform", str, where)
        if platform != str(target.platform):
            raise self.fail(
                f"{where}platform",
                f"is {platform!r}, but the target {name} has the platform {target.platform}",
            )
        digest = self.get(document, "manifest_digest", str, where)
        if not digest.startswith("sha256:"):
            raise self.fail(f"{where}manifest_digest", f"is {digest!r}, not a sha256 digest")
        return ShardTarget(
            target=target,
            digest=digest,
            size=self.get(document, "manifest_size", int, where),
            media_type=self.get(document, "media_type", str, where),
            tags=tuple(str(t) for t in self.get(document, "tags", list, where)),
        )

    def image(self, document: Any, where: str) -> ShardImage:
        targets = self.get(document, "targets", list, where)
        return ShardImage(
            image=self.get(document, "image", str, where),
            repository=self.get(document, "repository", str, where),
            tags=tuple(str(t) for t in self.get(document, "tags", list, where)),
            provenance=self.get(document, "provenance", dict, where),
            targets=tuple(self.target(t, f"{where}targets[{n}].") for n, t in enumerate(targets)),
        )


def read(path: Path) -> ShardResult:
    """A shard result file, checked key by key."""
    reader = _Reader(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise MergeError(
            f"{path}: no such shard result: the shard that writes it failed or did not run. "
            "Nothing was written.",
            hint="Run that shard again (its --metadata-file is this path), or merge without "
            "the file to take its targets from the registry's per-target tags.",
        ) from err
    except (OSError, ValueError) as err:
        raise UsageError(
            f"{path}: cannot be read as JSON ({err}).",
            hint="Pass the file `factory image --push --shard --metadata-file PATH` wrote; a "
            "shard that failed writes none (merge without it to name what is missing).",
        ) from err
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        raise reader.fail("schema", f"is not {SCHEMA!r}")
    images = reader.get(document, "images", list, "")
    return ShardResult(
        images=tuple(reader.image(i, f"images[{n}].") for n, i in enumerate(images)),
        source=str(path),
    )
