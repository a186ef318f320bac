"""Small OCI image layouts for registry tests, written here so they need no image assembly.

Each target gets a one-file layer (gzip of a tar), a config and a manifest; the layout's
index.json lists one image index per tag and each manifest as `<tag>-<target>`.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"


@dataclass(frozen=True, kw_only=True)
class Built:
    path: Path
    index_digest: str
    manifest_digests: dict[str, str]
    """target name -> manifest digest"""
    blob_bytes: int
    """bytes of every distinct config and layer"""


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _json(document: Any) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def _layer(name: str, payload: bytes) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(name)
        info.size = len(payload)
        info.mode = 0o755
        tar.addfile(info, io.BytesIO(payload))
    return gzip.compress(raw.getvalue(), mtime=0)


def write_layout(
    path: Path,
    *,
    targets: tuple[tuple[str, str, str | None], ...] = (
        ("amd64", "amd64", None),
        ("arm64", "arm64", None),
        ("amd64-v3", "amd64", "v3"),
    ),
    tags: tuple[str, ...] = ("latest",),
    payload_size: int = 1024,
    seed: str = "hello",
) -> Built:
    """A layout at `path`: one image per (name, architecture, variant) and one index."""
    blobs: dict[str, bytes] = {}

    def put(data: bytes) -> str:
        digest = _digest(data)
        blobs[digest] = data
        return digest

    descriptors: list[dict[str, Any]] = []
    digests: dict[str, str] = {}
    for name, arch, variant in targets:
        # Incompressible, deterministic payload of the asked size.
        payload = b"".join(
            hashlib.sha256(f"{seed}/{name}/{i}".encode()).digest()
            for i in range(payload_size // 32 + 1)
        )[:payload_size]
        layer = _layer("hello", payload)
        diff_id = _digest(gzip.decompress(layer))
        platform = {
            "os": "linux",
            "architecture": arch,
            **({"variant": variant} if variant else {}),
        }
        config = _json(
            {
                **platform,
                "config": {"Entrypoint": ["/hello"]},
                "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            }
        )
        manifest = _json(
            {
                "schemaVersion": 2,
                "mediaType": MANIFEST,
                "config": {"mediaType": CONFIG, "digest": put(config), "size": len(config)},
                "layers": [{"mediaType": LAYER, "digest": put(layer), "size": len(layer)}],
            }
        )
        digest = put(manifest)
        digests[name] = digest
        descriptors.append(
            {"mediaType": MANIFEST, "digest": digest, "size": len(manifest), "platform": platform}
        )
    blob_bytes = sum(len(b) for b in blobs.values()) - sum(d["size"] for d in descriptors)
    index = _json({"schemaVersion": 2, "mediaType": INDEX, "manifests": descriptors})
    index_digest = put(index)
    entries = [
        {
            "mediaType": INDEX,
            "digest": index_digest,
            "size": len(index),
            "annotations": {REF_NAME: tag},
        }
        for tag in tags
    ] + [
        {**d, "annotations": {REF_NAME: f"{tag}-{name}"}}
        for tag in tags
        for d, (name, _, _) in zip(descriptors, targets, strict=True)
    ]
    (path / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    for digest, data in blobs.items():
        (path / "blobs" / "sha256" / digest.removeprefix("sha256:")).write_bytes(data)
    (path / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (path / "index.json").write_bytes(
        _json({"schemaVersion": 2, "mediaType": INDEX, "manifests": entries})
    )
    return Built(
        path=path, index_digest=index_digest, manifest_digests=digests, blob_bytes=blob_bytes
    )
