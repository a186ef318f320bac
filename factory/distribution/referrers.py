"""OCI artifacts that refer to an image (OCI distribution 1.1: ``subject`` and the referrers API).

An artifact is an image manifest with an ``artifactType``, the empty config
(``application/vnd.oci.empty.v1+json``, ``{}``), its layers (an SBOM, a signature payload) and a
``subject``: the descriptor of the image index it describes.

Registries that implement the referrers API index it when it is pushed and answer the PUT with an
``OCI-Subject`` header. For the others (Debian's docker-registry 2.8 among them) the client keeps
the list itself, as the spec's fallback says: the tag ``<alg>-<hex>`` of the subject's digest
names an image index whose ``manifests`` are the referrers' descriptors (with their
``artifactType`` and annotations), read, extended and written back. Lookups ask the API first
(``GET /v2/<name>/referrers/<digest>``); a 404 there means no API, and the fallback tag is read.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from factory.distribution.media_types import (
    EMPTY_JSON,
    MEDIA_INDEX,
    MEDIA_MANIFEST,
    Descriptor,
    canonical_json,
    empty_config,
    sha256_digest,
)
from factory.distribution.push import Pusher
from factory.distribution.refusals import error_detail
from factory.distribution.transport import Transport
from factory.errors import RegistryError
from factory.util import console

FALLBACK_WRITES: Final = 3

Via = Literal["referrers API", "fallback tag"]


@dataclass(frozen=True, kw_only=True)
class ArtifactLayer:
    """One layer of a referrer artifact: an SBOM document, a signature payload."""

    media_type: str
    data: bytes
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def descriptor(self) -> dict[str, Any]:
        return Descriptor(
            media_type=self.media_type,
            digest=sha256_digest(self.data),
            size=len(self.data),
            annotations=self.annotations,
        ).to_json()


@dataclass(frozen=True, kw_only=True)
class ReferrerArtifact:
    """An OCI artifact to attach to an image: its type, its layers, its annotations."""

    artifact_type: str
    layers: tuple[ArtifactLayer, ...]
    annotations: Mapping[str, str] = field(default_factory=dict)

    def manifest(self, subject: Descriptor) -> bytes:
        """The artifact's manifest bytes (canonical JSON, so deterministic)."""
        document: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": MEDIA_MANIFEST,
            "artifactType": self.artifact_type,
            "config": empty_config(),
            "layers": [layer.descriptor for layer in self.layers],
            "subject": subject.to_json(),
        }
        if self.annotations:
            document["annotations"] = dict(self.annotations)
        return canonical_json(document)


@dataclass(frozen=True, kw_only=True)
class Attached:
    """An artifact in the registry, referring to ``subject``."""

    repository: str
    subject: str
    digest: str
    size: int
    artifact_type: str
    via: Via
    tags: tuple[str, ...] = ()
    manifests_written: int = 0
    """Manifest PUTs: the artifact, its tags, the fallback tag's index."""
    manifests_skipped: int = 0
    """The artifact (already listed) or its tags (already naming it): not written again."""

    def to_json(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "subject": self.subject,
            "digest": self.digest,
            "size": self.size,
            "artifact_type": self.artifact_type,
            "via": self.via,
            "tags": list(self.tags),
            "manifests_written": self.manifests_written,
            "manifests_skipped": self.manifests_skipped,
        }


def fallback_tag(digest: str) -> str:
    """The referrers tag schema: `sha256:ab..` -> `sha256-ab..` (at most 128 characters)."""
    algorithm, _, hexdigest = digest.partition(":")
    return f"{algorithm}-{hexdigest}"[:128]


def _store(layout: Path, data: bytes) -> None:
    path = layout / "blobs" / "sha256" / sha256_digest(data).removeprefix("sha256:")
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.write_bytes(data)
        partial.replace(path)


def attach(
    transport: Transport,
    repository: str,
    subject: Descriptor,
    artifact: ReferrerArtifact,
    *,
    layout: Path,
    tags: Sequence[str] = (),
    log: console.Progress = console.detail,
) -> Attached:
    """Push ``artifact`` (its blobs, then its manifest) to ``repository`` (a path on the
    transport's registry) as a referrer of ``subject``; ``tags`` also name it. The blobs are
    kept in ``layout``'s blob store (the image's OCI layout) on the way.

    An artifact whose manifest the subject's referrers already list (the same digest: an
    unchanged SBOM pushed again) is not written a second time; the listed one is reported."""
    data = artifact.manifest(subject)
    digest = sha256_digest(data)
    listed, via = find(transport, repository, subject.digest, artifact_type=artifact.artifact_type)
    written, skipped = 0, 1
    if any(m.get("digest") == digest for m in listed):
        log(f"{artifact.artifact_type} {digest[:19]} already refers to {subject.digest[:19]}")
    else:
        pusher = Pusher(transport, repository, log=log)
        via = _push(pusher, subject, artifact, data, layout=layout, tags=tags)
        written, skipped = pusher.manifest_counts
        log(f"{artifact.artifact_type} {digest[:19]} refers to {subject.digest[:19]} ({via})")
    return Attached(
        repository=repository,
        subject=subject.digest,
        digest=digest,
        size=len(data),
        artifact_type=artifact.artifact_type,
        via=via,
        tags=tuple(tags),
        manifests_written=written,
        manifests_skipped=skipped,
    )


def _push(
    pusher: Pusher,
    subject: Descriptor,
    artifact: ReferrerArtifact,
    data: bytes,
    *,
    layout: Path,
    tags: Sequence[str],
) -> Via:
    """Blobs, then the manifest ``data`` and the tags that do not name it yet, then (without a
    referrers API) the fallback tag."""
    digest = sha256_digest(data)
    blobs = (EMPTY_JSON, *(layer.data for layer in artifact.layers))
    for blob in blobs:
        _store(layout, blob)
    for blob in blobs:
        pusher.push_blob(sha256_digest(blob), len(blob), io.BytesIO(blob))
    headers = pusher.put_manifest(data, MEDIA_MANIFEST, digest)
    for tag in tags:  # written only when it does not name the artifact yet
        if pusher.served_digest(tag, MEDIA_MANIFEST) == digest:
            pusher.unchanged(digest, tag)
        else:
            pusher.put_manifest(data, MEDIA_MANIFEST, tag)
    if headers.get("OCI-Subject") == subject.digest:
        return "referrers API"
    descriptor = {
        "mediaType": MEDIA_MANIFEST,
        "digest": digest,
        "size": len(data),
        "artifactType": artifact.artifact_type,
    }
    if artifact.annotations:
        descriptor["annotations"] = dict(artifact.annotations)
    _add_to_fallback(pusher, subject.digest, descriptor)
    return "fallback tag"


def _get_index(transport: Transport, path: str, what: str) -> dict[str, Any] | None:
    """The image index at ``path``; None on 404."""
    response = transport.request("GET", path, headers={"Accept": MEDIA_INDEX}, what=what)
    if response.status_code == 404:
        response.close()
        return None
    if response.status_code != 200:
        raise RegistryError(
            f"{transport.host} refused {what} (HTTP {response.status_code}: "
            f"{error_detail(response)}).",
            hint="Check the registry's logs; run again with -v for each request.",
        )
    document = _index(response.content)
    if document is None:
        raise RegistryError(
            f"{transport.host} answered {what} with something other than an image index.",
            hint="The tag may have been written by another tool; remove it and push again.",
        )
    return document


def _index(data: bytes) -> dict[str, Any] | None:
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(document, dict) or not isinstance(document.get("manifests"), list):
        return None
    return document


def _add_to_fallback(pusher: Pusher, subject: str, descriptor: Mapping[str, Any]) -> None:
    """Read the referrers tag's index, add ``descriptor`` and write it back; then read again,
    since registries offer no compare-and-swap and another push may have written the tag in
    between (its descriptor and ours are both kept: each writer re-adds what it misses)."""
    tag = fallback_tag(subject)
    path = f"/v2/{pusher.repo}/manifests/{tag}"
    for written in range(FALLBACK_WRITES + 1):
        index = _get_index(pusher.t, path, f"the referrers tag {tag}") or {
            "schemaVersion": 2,
            "mediaType": MEDIA_INDEX,
            "manifests": [],
        }
        listed = [m for m in index["manifests"] if isinstance(m, dict)]
        if any(m.get("digest") == descriptor["digest"] for m in listed):
            return
        if written == FALLBACK_WRITES:
            break
        index["manifests"] = [*listed, dict(descriptor)]
        pusher.put_manifest(canonical_json(index), MEDIA_INDEX, tag)
    raise RegistryError(
        f"The referrers tag {tag} in {pusher.repo} kept changing while factory added "
        f"{descriptor['digest']} to it ({FALLBACK_WRITES} writes).",
        hint="Other pushes are attaching artifacts to the same image right now; run again.",
    )


def find(
    transport: Transport, repository: str, subject: str, *, artifact_type: str | None = None
) -> tuple[list[dict[str, Any]], Via]:
    """The descriptors of ``subject``'s referrers (of ``artifact_type`` when given), and how
    they were found: the referrers API, or (when it answers 404) the fallback tag."""
    path = f"/v2/{repository}/referrers/{subject}"
    transport.add_scope(repository, "pull")
    response = transport.request(
        "GET", path, headers={"Accept": MEDIA_INDEX}, what=f"the referrers of {subject}"
    )
    found = _index(response.content) if response.status_code == 200 else None
    response.close()
    via: Via = "referrers API"
    if found is None:  # 404: no referrers API here (the spec's signal for the fallback)
        tag = fallback_tag(subject)
        found = _get_index(transport, f"/v2/{repository}/manifests/{tag}", f"the tag {tag}")
        via = "fallback tag"
    listed = [m for m in (found or {}).get("manifests", []) if isinstance(m, dict)]
    if artifact_type is not None:
        listed = [m for m in listed if m.get("artifactType") == artifact_type]
    return listed, via


def fetch_manifest_data(transport: Transport, repository: str, digest: str) -> bytes:
    """A manifest's bytes by digest, checked against it."""
    return _fetch(transport, f"/v2/{repository}/manifests/{digest}", digest, MEDIA_MANIFEST)


def fetch_manifest(transport: Transport, repository: str, digest: str) -> dict[str, Any]:
    """A manifest by digest, checked against it."""
    data = fetch_manifest_data(transport, repository, digest)
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        document = None
    if not isinstance(document, dict):
        raise RegistryError(
            f"{transport.host} serves {digest} in {repository}, which is not a manifest.",
            hint="Remove the referrer that lists it, or push the image again.",
        )
    return document


def fetch_blob(transport: Transport, repository: str, digest: str) -> bytes:
    """A blob by digest, checked against it."""
    return _fetch(transport, f"/v2/{repository}/blobs/{digest}", digest, "*/*")


def _fetch(transport: Transport, path: str, digest: str, accept: str) -> bytes:
    what = f"the download of {digest}"
    response = transport.request("GET", path, headers={"Accept": accept}, what=what)
    if response.status_code != 200:
        raise RegistryError(
            f"{transport.host} refused {what} (HTTP {response.status_code}: "
            f"{error_detail(response)}).",
            hint="The artifact is listed but gone: push the image again.",
        )
    data = response.content
    if sha256_digest(data) != digest:
        raise RegistryError(
            f"{transport.host} served other bytes than {digest} for {path}.",
            hint="The registry's storage is damaged, or something between rewrites content.",
        )
    return data
