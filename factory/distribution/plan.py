"""What a push of an OCI image layout must send, in order. Pure: reads files, no network.

From the layout's index.json: each image index entry (annotation
``org.opencontainers.image.ref.name`` = its tag) and each image manifest entry (ref name
``<tag>-<target>``). The plan lists every blob the manifests reference (config and layers,
each once) and which manifest references which, every manifest (the indexes' children first, in
index order), the manifest tags, and the index tags, which a push writes last.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from factory.distribution.media_types import INDEX_TYPES, MANIFEST_TYPES, REF_NAME, sha256_digest
from factory.errors import RegistryError


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
    references: Mapping[str, tuple[str, ...]]
    """Manifest digest -> the digests of its config and layers."""

    def blob_path(self, digest: str) -> Path:
        algorithm, _, hexdigest = digest.partition(":")
        return self.layout / "blobs" / algorithm / hexdigest

    def blobs_of(self, manifests: Iterable[Document]) -> tuple[BlobRef, ...]:
        """The blobs (each once, in plan order) that ``manifests`` reference."""
        wanted = {digest for m in manifests for digest in self.references[m.digest]}
        return tuple(blob for blob in self.blobs if blob.digest in wanted)


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
    except FileNotFoundError as err:
        raise _fail(layout, f"blob {digest} is missing") from err
    if sha256_digest(data) != digest:
        raise _fail(layout, f"blob {digest} does not match its digest")
    return Document(digest=digest, media_type=media_type, data=data, platform=platform)


def _json(layout: Path, document: Document) -> dict[str, Any]:
    try:
        parsed = json.loads(document.data)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise _fail(layout, f"{document.digest} is not JSON") from err
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
    manifests, manifest_tags, index_tags = _documents(layout, _top_index(layout))
    blobs, references = _blobs(layout, manifests)
    plan = Plan(
        layout=layout,
        blobs=blobs,
        manifests=manifests,
        manifest_tags=manifest_tags,
        index_tags=index_tags,
        references=references,
    )
    _check_blobs(plan)
    return plan


def _top_index(layout: Path) -> dict[str, Any]:
    """The layout's own index.json, after checking that it is a layout at all."""
    try:
        top = json.loads((layout / "index.json").read_bytes())
    except FileNotFoundError as err:
        raise _fail(layout, "it has no index.json") from err
    except json.JSONDecodeError as err:
        raise _fail(layout, f"index.json is not JSON ({err.msg})") from err
    if not (layout / "oci-layout").is_file():
        raise _fail(layout, "it has no oci-layout file")
    if not isinstance(top, dict):
        raise _fail(layout, "index.json is not a JSON object")
    return top


def _documents(
    layout: Path, top: dict[str, Any]
) -> tuple[tuple[Document, ...], tuple[Tagged, ...], tuple[Tagged, ...]]:
    """The manifests (each once, an index's children in its order), the manifest tags and
    the index tags that index.json lists."""
    manifests: dict[str, Document] = {}
    manifest_tags: list[Tagged] = []
    index_tags: list[Tagged] = []
    for entry in _descriptors(layout, top, "manifests"):
        media_type = str(entry["mediaType"])
        tag = (entry.get("annotations") or {}).get(REF_NAME)
        document = _read(layout, str(entry["digest"]), media_type)
        if media_type in INDEX_TYPES:
            _add_children(layout, document, manifests)
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
    return tuple(manifests.values()), tuple(manifest_tags), tuple(index_tags)


def _add_children(layout: Path, index: Document, manifests: dict[str, Document]) -> None:
    """Read the manifests ``index`` lists into ``manifests`` (those not there yet)."""
    for child in _descriptors(layout, _json(layout, index), "manifests"):
        child_type = str(child["mediaType"])
        if child_type not in MANIFEST_TYPES:
            raise _fail(layout, f"index {index.digest} lists a {child_type}")
        digest = str(child["digest"])
        if digest not in manifests:
            platform = platform_text(child.get("platform"))
            manifests[digest] = _read(layout, digest, child_type, platform)


def _blobs(
    layout: Path, manifests: tuple[Document, ...]
) -> tuple[tuple[BlobRef, ...], dict[str, tuple[str, ...]]]:
    """Every config and layer the manifests reference, each once, in manifest order; and per
    manifest, the digests of the blobs it references."""
    blobs: dict[str, BlobRef] = {}
    references: dict[str, tuple[str, ...]] = {}
    for manifest in manifests:
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
        references[manifest.digest] = tuple(str(item["digest"]) for item in listed)
    return tuple(blobs.values()), references


def _check_blobs(plan: Plan) -> None:
    """Every blob of the plan is in the layout, with the size its descriptor gives."""
    for blob in plan.blobs:
        path = plan.blob_path(blob.digest)
        if not path.is_file():
            raise _fail(plan.layout, f"blob {blob.digest} is missing")
        if path.stat().st_size != blob.size:
            raise _fail(
                plan.layout, f"blob {blob.digest} has {path.stat().st_size} bytes, not {blob.size}"
            )
