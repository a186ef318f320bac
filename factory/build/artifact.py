"""Drivers: how one image x target is compiled inside the builder. All return Artifacts."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from factory.model.config import Profile


@dataclass(frozen=True, kw_only=True)
class Artifact:
    """One compiled binary on the host: dist/bin/<image>/<target>/<binary>."""

    image: str
    target: str
    path: Path
    sha256: str
    size: int
    profile: Profile

    def to_json(self) -> dict[str, str | int]:
        """The keys of `factory build --json` (locked by a test)."""
        return {
            "image": self.image,
            "target": self.target,
            "path": str(self.path),
            "sha256": self.sha256,
            "size": self.size,
        }


def file_digest(path: Path) -> tuple[str, int]:
    """The sha256 (hex) and size of a file."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def artifact_path(dist: Path, image: str, target: str, binary: str) -> Path:
    """Where a binary goes: dist/bin/<image>/<target>/<binary>."""
    return dist / "bin" / image / target / binary
