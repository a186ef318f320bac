"""`factory inspect REF`: what a registry serves for a tag or digest (an index or a manifest)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from factory.distribution import plan as push_plan
from factory.distribution import reference
from factory.distribution.media_types import INDEX_TYPES, MANIFEST_TYPES, sha256_digest
from factory.distribution.refusals import error_detail
from factory.distribution.transport import Transport
from factory.errors import RegistryError

ACCEPT: Final = ", ".join(sorted(INDEX_TYPES | MANIFEST_TYPES))


@dataclass(frozen=True, kw_only=True)
class Entry:
    """One image: its platform, manifest digest and size, and the size of its blobs."""

    platform: str | None
    digest: str
    manifest_size: int
    image_size: int
    """Config plus compressed layers, in bytes."""
    layers: int

    def to_json(self) -> dict[str, Any]:
        return {
            "platform": self.platform,
            "digest": self.digest,
            "manifest_size": self.manifest_size,
            "image_size": self.image_size,
            "layers": self.layers,
        }


@dataclass(frozen=True, kw_only=True)
class Inspection:
    reference: str
    digest: str
    media_type: str
    size: int
    entries: tuple[Entry, ...]
    annotations: dict[str, str]

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    def to_json(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "digest": self.digest,
            "media_type": self.media_type,
            "size": self.size,
            "annotations": self.annotations,
            "manifests": [e.to_json() for e in self.entries],
        }


def _fetch(t: Transport, repository: str, target: str, ref: str) -> tuple[str, str, bytes]:
    response = t.request(
        "GET",
        f"/v2/{repository}/manifests/{target}",
        headers={"Accept": ACCEPT},
        what=f"a read of {ref}",
    )
    if response.status_code == 404:
        raise RegistryError(
            f"{ref} does not exist in {t.host} (HTTP 404: {error_detail(response)}).",
            hint="Check the repository and tag (`factory image --push` prints the reference).",
        )
    if response.status_code != 200:
        raise RegistryError(
            f"{t.host} refused a read of {ref} (HTTP {response.status_code}: "
            f"{error_detail(response)}).",
            hint="Check the reference and your access to the repository.",
        )
    data = response.content
    digest = sha256_digest(data)
    media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
    return digest, media_type, data


def _image(t: Transport, repository: str, digest: str, platform: str | None) -> Entry:
    _, _, data = _fetch(t, repository, digest, f"{repository}@{digest}")
    document = json.loads(data)
    blobs = [document.get("config") or {}, *document.get("layers", [])]
    return Entry(
        platform=platform,
        digest=digest,
        manifest_size=len(data),
        image_size=sum(int(b.get("size", 0)) for b in blobs),
        layers=len(document.get("layers", [])),
    )


def _config_platform(t: Transport, repository: str, config: dict[str, Any]) -> str | None:
    """A single image's platform, from its config blob."""
    if "digest" not in config:
        return None
    response = t.request(
        "GET", f"/v2/{repository}/blobs/{config['digest']}", what="a read of the image config"
    )
    if response.status_code != 200:
        return None
    try:
        return push_plan.platform_text(response.json())
    except ValueError:
        return None


def inspect(text: str, *, insecure: bool = False) -> Inspection:
    """Fetch ``text`` (a reference) and each image it lists."""
    ref = reference.parse(text)
    with Transport(ref.api_host, insecure=insecure) as t:
        t.add_scope(ref.repository, "pull")
        digest, media_type, data = _fetch(t, ref.repository, ref.target, str(ref))
        if ref.digest and digest != ref.digest:
            raise RegistryError(
                f"{t.host} served {digest} for {ref}: the content does not match its digest.",
                hint="The registry is corrupt or misbehaving; do not use this image.",
            )
        try:
            document = json.loads(data)
        except ValueError as err:
            raise RegistryError(
                f"{ref} is not a JSON manifest.",
                hint="Check the reference: it must name an image index or manifest.",
            ) from err
        media_type = str(document.get("mediaType") or media_type)
        if media_type in INDEX_TYPES:
            entries = tuple(
                _image(
                    t, ref.repository, str(m["digest"]), push_plan.platform_text(m.get("platform"))
                )
                for m in document.get("manifests", [])
            )
        else:
            platform = _config_platform(t, ref.repository, document.get("config") or {})
            entries = (_image(t, ref.repository, digest, platform),)
    return Inspection(
        reference=f"{ref.name}@{digest}",
        digest=digest,
        media_type=media_type,
        size=len(data),
        entries=entries,
        annotations=dict(document.get("annotations") or {}),
    )
