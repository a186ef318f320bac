"""What a push did: the manifests and indexes it left in a repository and what it sent."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from factory.distribution.plan import Plan


@dataclass(frozen=True, kw_only=True)
class PushedManifest:
    digest: str
    size: int
    media_type: str
    platform: str | None
    tags: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "tags": list(self.tags)}


@dataclass(frozen=True, kw_only=True)
class PushedIndex:
    tag: str
    digest: str
    size: int
    reference: str
    """`host/repository@sha256:…`: what to pull."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, kw_only=True)
class PushResult:
    repository: str
    indexes: tuple[PushedIndex, ...]
    manifests: tuple[PushedManifest, ...]
    bytes_uploaded: int
    """Blob bytes sent (manifests not counted); 0 when the registry had everything."""
    blobs_uploaded: int
    blobs_skipped: int
    blobs_mounted: int
    manifest_bytes: int = 0
    manifests_written: int = 0
    """Manifest PUTs: each manifest by digest and each tag (the index's too) that was written."""
    manifests_skipped: int = 0
    """Manifests and tags the registry had already, with the same digest: not written again."""

    def to_json(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "indexes": [i.to_json() for i in self.indexes],
            "manifests": [m.to_json() for m in self.manifests],
            "bytes_uploaded": self.bytes_uploaded,
            "manifest_bytes": self.manifest_bytes,
            "manifests_written": self.manifests_written,
            "manifests_skipped": self.manifests_skipped,
            "blobs_uploaded": self.blobs_uploaded,
            "blobs_skipped": self.blobs_skipped,
            "blobs_mounted": self.blobs_mounted,
        }


@dataclass(kw_only=True)
class Tally:
    """What a `Pusher` sent so far (mutable: counted as it goes)."""

    uploaded_bytes: int = 0
    uploaded: int = 0
    skipped: int = 0
    mounted: int = 0
    manifest_bytes: int = 0
    written: int = 0
    unchanged: int = 0


def push_result(name: str, plan: Plan, tally: Tally) -> PushResult:
    """What a push of ``plan`` to the repository ``name`` did, as ``tally`` counted it."""
    return PushResult(
        repository=name,
        indexes=tuple(
            PushedIndex(
                tag=x.tag,
                digest=x.document.digest,
                size=x.document.size,
                reference=f"{name}@{x.document.digest}",
            )
            for x in plan.index_tags
        ),
        manifests=tuple(
            PushedManifest(
                digest=m.digest,
                size=m.size,
                media_type=m.media_type,
                platform=m.platform,
                tags=tuple(x.tag for x in plan.manifest_tags if x.document.digest == m.digest),
            )
            for m in plan.manifests
        ),
        bytes_uploaded=tally.uploaded_bytes,
        blobs_uploaded=tally.uploaded,
        blobs_skipped=tally.skipped,
        blobs_mounted=tally.mounted,
        manifest_bytes=tally.manifest_bytes,
        manifests_written=tally.written,
        manifests_skipped=tally.unchanged,
    )
