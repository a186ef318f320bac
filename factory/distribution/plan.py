"""What a push of an OCI image layout must send, in order. Pure: reads files, no network.

From the layout's index.json: each image index entry (annotation
``org.opencontainers.image.ref.name`` = its tag) and each image manifest entry (ref name
``<tag>-<target>``). The plan lists every blob the manifests reference (config and layers,
each once), every manifest (the indexes' children first, in index order), the manifest tags,
and the index tags, which a push writes last.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from factory.errors import RegistryError

REF_NAME: Final = "org.opencontainers.image.ref.name"
INDEX_TYPES: Final = frozenset(
    {
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    }
)
MANIFEST_TYPES: Final = frozenset(
    {
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    }
)


@dataclass(frozen=True, kw_only=True)
class BlobRef:
    digest: str
    size: int
    media_type: str


@dataclass(frozen=True, kw_only=True)
class Document:
    """A manifest or an index, with its exact bytes (their digest is its identity)."""

    digest: str
    media_type: str
    data: bytes
    platform: str | None = None
    """`os/architecture[/variant]` from the index entry that lists it, if any."""

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True, kw_only=True)
class Tagged:
    tag: str
    document: Document


@dataclass(frozen=True, kw_only=True)
class Plan:
    layout: Path
    blobs: tuple[BlobRef, ...]
    manifests: tuple[Document, ...]
    manifest_tags: tuple[Tagged, ...]
    index_tags: tuple[Tagged, ...]

    def blob_path(self, digest: str) -> Path:
        algorithm, _, hexdigest = digest.partition(":")
        return self.layout / "blobs" / algorithm / hexdigest


def _fail(layout: Path, what: str) -> RegistryError:
    return RegistryError(
        f"The OCI layout {layout} is not usable: {what}.",
        hint="Assemble it again (`factory image`), or pass the right --oci-layout directory.",
    )


def platform_text(platform: Any) -> str | None:
    if not isinstance(platform, dict) or "os" not in platform:
        return None
    parts = [str(platform["os"]), str(platform.get("architecture", ""))]
    if platform.get("variant"):
        parts.append(str(platform["variant"]))
    return "/".join(parts)


def _read(layout: Path, digest: str, media_type: str, platform: str | None = None) -> Document:
    algorithm, _, hexdigest = digest.partition(":")
    if algorithm != "sha256" or not hexdigest:
        raise _fail(layout, f"unsupported digest {digest!r}")
    path = layout / "blobs" / algorithm / hexdigest
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise _fail(layout, f"blob {digest} is missing") from None
    if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
        raise _fail(layout, f"blob {digest} does not match its digest")
    return Document(digest=digest, media_type=media_type, data=data, platform=platform)


def _json(layout: Path, document: Document) -> dict[str, Any]:
    try:
        parsed = json.loads(document.data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise _fail(layout, f"{document.digest} is not JSON") from None
    if not isinstance(parsed, dict):
        raise _fail(layout, f"{document.digest} is not a JSON object")
    return parsed


def _descriptors(layout: Path, document: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = document.get(key, [])
    if not isinstance(items, list) or not all(
        isinstance(i, dict) and "digest" in i and "mediaType" in i for i in items
    ):
        raise _fail(layout, f"`{key}` must be a list of descriptors")
    return items


def read(layout: Path) -> Plan:
    """The push plan of the layout at ``layout``."""
    try:
        top = json.loads((layout / "index.json").read_bytes())
    except FileNotFoundError:
        raise _fail(layout, "it has no index.json") from None
    except json.JSONDecodeError as err:
        raise _fail(layout, f"index.json is not JSON ({err.msg})") from None
    if not (layout / "oci-layout").is_file():
        raise _fail(layout, "it has no oci-layout file")
    manifests: dict[str, Document] = {}
    manifest_tags: list[Tagged] = []
    index_tags: list[Tagged] = []
    for entry in _descriptors(layout, top, "manifests"):
        media_type = str(entry["mediaType"])
        tag = (entry.get("annotations") or {}).get(REF_NAME)
        document = _read(layout, str(entry["digest"]), media_type)
        if media_type in INDEX_TYPES:
            for child in _descriptors(layout, _json(layout, document), "manifests"):
                child_type = str(child["mediaType"])
                if child_type not in MANIFEST_TYPES:
                    raise _fail(layout, f"index {document.digest} lists a {child_type}")
                digest = str(child["digest"])
                if digest not in manifests:
                    manifests[digest] = _read(
                        layout, digest, child_type, platform_text(child.get("platform"))
                    )
            if tag:
                index_tags.append(Tagged(tag=tag, document=document))
        elif media_type in MANIFEST_TYPES:
            known = manifests.setdefault(document.digest, document)
            if tag:
                manifest_tags.append(Tagged(tag=tag, document=known))
        else:
            raise _fail(layout, f"index.json lists an unsupported {media_type}")
    if not manifests:
        raise _fail(layout, "index.json lists no image")
    blobs: dict[str, BlobRef] = {}
    for manifest in manifests.values():
        parsed = _json(layout, manifest)
        config = parsed.get("config")
        listed = ([config] if isinstance(config, dict) else []) + _descriptors(
            layout, parsed, "layers"
        )
        for item in listed:
            digest = str(item["digest"])
            if digest not in blobs:
                blobs[digest] = BlobRef(
                    digest=digest, size=int(item.get("size", 0)), media_type=str(item["mediaType"])
                )
    plan = Plan(
        layout=layout,
        blobs=tuple(blobs.values()),
        manifests=tuple(manifests.values()),
        manifest_tags=tuple(manifest_tags),
        index_tags=tuple(index_tags),
    )
    for blob in plan.blobs:
        path = plan.blob_path(blob.digest)
        if not path.is_file():
            raise _fail(layout, f"blob {blob.digest} is missing")
        if path.stat().st_size != blob.size:
            raise _fail(
                layout, f"blob {blob.digest} has {path.stat().st_size} bytes, not {blob.size}"
            )
    return plan
