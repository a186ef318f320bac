"""OCI images as bytes: deterministic layers, configs, manifests, indexes and the layout on disk.

Nothing here touches the network or a Docker engine. Every function is pure except
`write_layout`, and equal inputs give equal bytes (so equal digests) on every machine:

- layers are tar archives with sorted entries, owner 0:0, fixed modes and one fixed mtime;
- gzip is framed here (no file name, mtime 0, fixed OS byte) around zlib's raw deflate at level 9,
  so the bytes do not depend on the Python version's gzip header choices;
- JSON documents are canonical: sorted keys, no insignificant whitespace, UTF-8.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import os
import shutil
import struct
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from factory.distribution.media_types import (
    MEDIA_CONFIG,
    MEDIA_INDEX,
    MEDIA_LAYER,
    MEDIA_MANIFEST,
    Descriptor,
    canonical_json,
    platform_json,
    sha256_digest,
)
from factory.model.targets import Platform
from factory.util.fsutil import atomic_write

LAYOUT_VERSION = "1.0.0"

_DIR_MODE = 0o755


def rfc3339(epoch: int) -> str:
    """`2026-11-23T19:46:40Z` for a Unix time."""
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, kw_only=True)
class Blob:
    """Bytes with their media type, addressed by digest."""

    media_type: str
    data: bytes

    @functools.cached_property
    def digest(self) -> str:
        """Hashed once: a layer's digest is asked for by its descriptor, the layout and the
        config."""
        return sha256_digest(self.data)

    @property
    def size(self) -> int:
        return len(self.data)

    def descriptor(
        self, *, platform: Platform | None = None, annotations: Mapping[str, str] | None = None
    ) -> Descriptor:
        return Descriptor(
            media_type=self.media_type,
            digest=self.digest,
            size=self.size,
            platform=platform,
            annotations=dict(annotations or {}),
        )


# --- layers -------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class FileEntry:
    """A regular file in a layer. `path` is absolute inside the image (`/etc/passwd`)."""

    path: str
    data: bytes
    mode: int = 0o644


@dataclass(frozen=True, kw_only=True)
class Layer:
    """A layer: its uncompressed tar (whose digest is the config's diff_id) and its gzip blob."""

    tar: bytes
    blob: Blob

    @functools.cached_property
    def diff_id(self) -> str:
        return sha256_digest(self.tar)


def layer_tar(files: Sequence[FileEntry], *, mtime: int) -> bytes:
    """A tar of `files` and their parent directories: sorted, owned by 0:0, one mtime.

    Raises ValueError on a relative path, a path with `..`, or the same path twice.
    """
    by_name: dict[str, FileEntry] = {}
    directories: set[str] = set()
    for entry in files:
        if not entry.path.startswith("/") or ".." in entry.path.split("/"):
            raise ValueError(f"a layer path must be absolute, without '..': {entry.path!r}")
        name = entry.path.strip("/")
        if not name or name in by_name:
            raise ValueError(f"a layer path is empty or given twice: {entry.path!r}")
        by_name[name] = entry
        parts = name.split("/")[:-1]
        directories.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    clash = directories & by_name.keys()
    if clash:
        raise ValueError(f"a layer path is both a file and a directory: /{min(clash)}")

    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(directories | by_name.keys()):
            info = tarfile.TarInfo(name)
            info.mtime = mtime
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            file = by_name.get(name)
            if file is None:
                info.type = tarfile.DIRTYPE
                info.mode = _DIR_MODE
                tar.addfile(info)
            else:
                info.type = tarfile.REGTYPE
                info.mode = file.mode
                info.size = len(file.data)
                tar.addfile(info, io.BytesIO(file.data))
    return out.getvalue()


def deterministic_gzip(data: bytes) -> bytes:
    """RFC 1952 gzip of `data` with no name, mtime 0, XFL 2 (level 9) and OS 255 (unknown)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS, 9)
    body = compressor.compress(data) + compressor.flush()
    header = b"\x1f\x8b\x08\x00" + b"\x00\x00\x00\x00" + b"\x02\xff"
    trailer = struct.pack("<II", zlib.crc32(data) & 0xFFFFFFFF, len(data) & 0xFFFFFFFF)
    return header + body + trailer


def make_layer(
    files: Sequence[FileEntry],
    *,
    mtime: int,
    compress: Callable[[bytes], bytes] = deterministic_gzip,
) -> Layer:
    """`compress` must give deterministic_gzip's bytes (e.g. from a cache of them)."""
    tar = layer_tar(files, mtime=mtime)
    return Layer(tar=tar, blob=Blob(media_type=MEDIA_LAYER, data=compress(tar)))


def cached_gzip(directory: Path) -> Callable[[bytes], bytes]:
    """deterministic_gzip, remembered in `directory` by the tar's sha256.

    Level-9 deflate is most of an unchanged `factory image`'s time; a cached result is used
    only when its trailer's CRC-32 and size match the tar.
    """

    def compress(tar: bytes) -> bytes:
        path = directory / f"{hashlib.sha256(tar).hexdigest()}.gz"
        trailer = struct.pack("<II", zlib.crc32(tar) & 0xFFFFFFFF, len(tar) & 0xFFFFFFFF)
        try:
            cached = path.read_bytes()
        except OSError:
            cached = b""
        if cached.startswith(b"\x1f\x8b") and cached.endswith(trailer):
            return cached
        data = deterministic_gzip(tar)
        atomic_write(path, data)
        return data

    return compress


# --- config, manifest, index --------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """What the runtime needs to start a container (the config's `config` object)."""

    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...] = ()
    user: str | None = None
    env: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"Entrypoint": list(self.entrypoint)}
        if self.cmd:
            out["Cmd"] = list(self.cmd)
        if self.user:
            out["User"] = self.user
        if self.env:
            out["Env"] = list(self.env)
        if self.labels:
            out["Labels"] = dict(self.labels)
        return out


@dataclass(frozen=True, kw_only=True)
class HistoryEntry:
    created_by: str
    comment: str = ""

    def to_json(self, created: str) -> dict[str, str]:
        out = {"created": created, "created_by": self.created_by}
        if self.comment:
            out["comment"] = self.comment
        return out


def image_config(
    *,
    platform: Platform,
    run: RunConfig,
    layers: Sequence[Layer],
    history: Sequence[HistoryEntry],
    created: int,
) -> Blob:
    """The image configuration (image-spec config.md) as a blob."""
    stamp = rfc3339(created)
    document: dict[str, Any] = {
        **platform_json(platform),
        "created": stamp,
        "config": run.to_json(),
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": [h.to_json(stamp) for h in history],
    }
    return Blob(media_type=MEDIA_CONFIG, data=canonical_json(document))


def image_manifest(
    *, config: Blob, layers: Sequence[Layer], annotations: Mapping[str, str]
) -> Blob:
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": config.descriptor().to_json(),
        "layers": [layer.blob.descriptor().to_json() for layer in layers],
    }
    if annotations:
        document["annotations"] = dict(annotations)
    return Blob(media_type=MEDIA_MANIFEST, data=canonical_json(document))


def image_index(manifests: Sequence[Descriptor], *, annotations: Mapping[str, str]) -> Blob:
    """An image index listing `manifests` in the order given."""
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [m.to_json() for m in manifests],
    }
    if annotations:
        document["annotations"] = dict(annotations)
    return Blob(media_type=MEDIA_INDEX, data=canonical_json(document))


# --- the layout on disk -------------------------------------------------------------------


def layout_index(refs: Iterable[Descriptor]) -> bytes:
    """The layout's own index.json: one descriptor per reference name."""
    document = {
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [d.to_json() for d in refs],
    }
    return json.dumps(document, indent=2, sort_keys=True).encode() + b"\n"


def write_layout(path: Path, *, blobs: Iterable[Blob], refs: Sequence[Descriptor]) -> None:
    """Write an OCI image layout at `path`, replacing whatever was there, unless it is this very
    layout already (the same index.json, every blob there with its size: an unchanged image).

    The layout is written beside `path` and renamed into place, so a reader never sees a
    layout whose index.json names a blob that is not there yet.
    """
    blobs = list(blobs)
    if _is_layout(path, blobs=blobs, index=layout_index(refs)):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        blob_dir = staging / "blobs" / "sha256"
        blob_dir.mkdir(parents=True)
        for blob in blobs:
            target = blob_dir / blob.digest.removeprefix("sha256:")
            if not target.exists():
                target.write_bytes(blob.data)
        (staging / "oci-layout").write_bytes(
            canonical_json({"imageLayoutVersion": LAYOUT_VERSION}) + b"\n"
        )
        (staging / "index.json").write_bytes(layout_index(refs))
        os.chmod(staging, _DIR_MODE)
        old = path.with_name(f".{path.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            path.rename(old)
        staging.rename(path)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _is_layout(path: Path, *, blobs: Sequence[Blob], index: bytes) -> bool:
    try:
        if (path / "index.json").read_bytes() != index or not (path / "oci-layout").is_file():
            return False
        blob_dir = path / "blobs" / "sha256"
        return all(
            (blob_dir / blob.digest.removeprefix("sha256:")).stat().st_size == blob.size
            for blob in blobs
        )
    except OSError:
        return False


def read_blob(layout: Path, digest: str) -> bytes:
    """A blob of a layout, checked against its digest."""
    algorithm, _, hexdigest = digest.partition(":")
    data = (layout / "blobs" / algorithm / hexdigest).read_bytes()
    if sha256_digest(data) != digest:
        raise ValueError(f"{layout}: blob {digest} does not match its digest")
    return data
