"""A built binary on the host: what a driver leaves in dist/bin, what validation audits and what
assembly packs. One type, made from the file on disk."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from factory.model.config import Profile


def file_digest(path: Path) -> tuple[str, int]:
    """The sha256 (hex) and size of a file."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


@dataclass(frozen=True, kw_only=True)
class Binary:
    """One compiled binary: dist/bin/<image>/<target>/<binary>, with its digest."""

    image: str
    target: str
    path: Path
    sha256: str
    size: int
    profile: Profile

    @classmethod
    def from_disk(cls, path: Path, *, image: str, target: str, profile: Profile) -> Binary:
        """The binary at ``path``, digested now."""
        sha256, size = file_digest(path)
        return cls(image=image, target=target, path=path, sha256=sha256, size=size, profile=profile)

    def to_json(self) -> dict[str, str | int]:
        """The keys of `factory build --json` (locked by a test)."""
        return {
            "image": self.image,
            "target": self.target,
            "path": str(self.path),
            "sha256": self.sha256,
            "size": self.size,
        }
