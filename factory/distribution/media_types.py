"""The OCI vocabulary shared by the image stage and the registry client: media types, the
annotations factory reads or writes, canonical JSON, digests and content descriptors.

One home for these, so an image assembled by `factory.image.oci`, planned and pushed by
`factory.distribution.plan`/`push` and referred to by `factory.distribution.referrers` speaks
one dialect. Artifact types of their own (an SBOM, a signature) live with their producers.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from factory.model.targets import Platform

MEDIA_LAYER: Final = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_CONFIG: Final = "application/vnd.oci.image.config.v1+json"
MEDIA_MANIFEST: Final = "application/vnd.oci.image.manifest.v1+json"
MEDIA_INDEX: Final = "application/vnd.oci.image.index.v1+json"
MEDIA_EMPTY: Final = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST: Final = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST: Final = "application/vnd.docker.distribution.manifest.list.v2+json"

INDEX_TYPES: Final = frozenset({MEDIA_INDEX, DOCKER_MANIFEST_LIST})
"""What a registry may serve for a multi-platform image (OCI and Docker spellings)."""
MANIFEST_TYPES: Final = frozenset({MEDIA_MANIFEST, DOCKER_MANIFEST})
"""What a registry may serve for one platform's image."""

REF_NAME: Final = "org.opencontainers.image.ref.name"
"""The annotation of an OCI layout's index.json entry that names it (its tag)."""
TITLE: Final = "org.opencontainers.image.title"

EMPTY_JSON: Final = b"{}"
"""The bytes of the empty config (`MEDIA_EMPTY`) an artifact manifest carries."""


def canonical_json(document: Any) -> bytes:
    """The one byte form factory gives a JSON document (sorted keys, compact, UTF-8)."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_digest(data: bytes) -> str:
    """`sha256:<hex>`: the digest that names ``data`` in a layout and in a registry."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def platform_json(platform: Platform) -> dict[str, str]:
    out = {"architecture": platform.architecture, "os": platform.os}
    if platform.variant:
        out["variant"] = platform.variant
    return out


@dataclass(frozen=True, kw_only=True)
class Descriptor:
    """An OCI content descriptor."""

    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.platform is not None:
            out["platform"] = platform_json(self.platform)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out


def empty_config() -> dict[str, Any]:
    """The descriptor of the empty config, with its two bytes embedded (`data`)."""
    return {
        "mediaType": MEDIA_EMPTY,
        "digest": sha256_digest(EMPTY_JSON),
        "size": len(EMPTY_JSON),
        "data": base64.b64encode(EMPTY_JSON).decode(),
    }
