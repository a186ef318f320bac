"""Push an OCI image layout to a registry (OCI distribution spec), in an order a consumer can trust.

1. every blob the manifests reference: HEAD first (never uploaded twice); when it is absent,
   a cross-repository mount from a sibling repository of the same registry that has it; else
   an upload: monolithic (POST, then PUT with the bytes) up to ``chunk_size``, chunked PATCHes
   above it (resuming from the registry's offset if a chunk is refused as out of range);
2. every image manifest by digest, then the per-target tags (``<tag>-<target>``);
3. the image index under each of its tags, last, so a tag never names an index whose
   manifests are not there yet;
4. a GET of each index tag: the bytes served must have the digest pushed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Final
from urllib.parse import urljoin

import requests

from factory.distribution import plan as push_plan
from factory.distribution import reference
from factory.distribution.plan import BlobRef, Document, Plan
from factory.distribution.transport import RetryPolicy, Transport, error_detail
from factory.errors import RegistryError
from factory.util import console

DEFAULT_CHUNK_SIZE: Final = 16 << 20
Log = Callable[[str], None]
Progress = Callable[[int, int], None]

_KNOWN_BLOBS: dict[str, dict[str, set[str]]] = {}
"""Per registry host, the repositories where this process has seen each blob (mount sources)."""


@dataclass(frozen=True, kw_only=True)
class PushedManifest:
    digest: str
    size: int
    media_type: str
    platform: str | None
    tags: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "size": self.size,
            "media_type": self.media_type,
            "platform": self.platform,
            "tags": list(self.tags),
        }


@dataclass(frozen=True, kw_only=True)
class PushedIndex:
    tag: str
    digest: str
    size: int
    reference: str
    """`host/repository@sha256:…`: what to pull."""

    def to_json(self) -> dict[str, Any]:
        return {
            "tag": self.tag,
            "digest": self.digest,
            "size": self.size,
            "reference": self.reference,
        }


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

    def to_json(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "indexes": [i.to_json() for i in self.indexes],
            "manifests": [m.to_json() for m in self.manifests],
            "bytes_uploaded": self.bytes_uploaded,
            "manifest_bytes": self.manifest_bytes,
            "blobs_uploaded": self.blobs_uploaded,
            "blobs_skipped": self.blobs_skipped,
            "blobs_mounted": self.blobs_mounted,
        }


@dataclass(kw_only=True)
class _Tally:
    uploaded_bytes: int = 0
    uploaded: int = 0
    skipped: int = 0
    mounted: int = 0
    manifest_bytes: int = 0


Tally = _Tally
"""What a push sent, for callers that push documents of their own (factory.referrers)."""


_LOST_UPLOAD_CODES: Final = frozenset(
    {"BLOB_UPLOAD_UNKNOWN", "BLOB_UPLOAD_INVALID", "DIGEST_INVALID", "SIZE_INVALID"}
)


class _UploadLost(Exception):
    """The registry no longer has this upload as sent (cut short, or already committed)."""

    def __init__(self, error: RegistryError) -> None:
        super().__init__(error.message)
        self.error = error


def _check_upload(response: requests.Response, what: str, host: str, expected: int) -> None:
    """Raise unless ``response`` has the ``expected`` status: `_UploadLost` when the registry
    says the upload session is gone or its bytes do not add up, else a `RegistryError`."""
    if response.status_code == expected:
        return
    error = _refused(response, what, host)
    if response.status_code in (400, 404, 416) and any(
        code in error.message for code in _LOST_UPLOAD_CODES
    ):
        raise _UploadLost(error)
    raise error


def _refused(response: requests.Response, what: str, host: str) -> RegistryError:
    status = response.status_code
    detail = error_detail(response)
    if status == 403:
        return RegistryError(
            f"{host} denied {what} (HTTP 403: {detail}).",
            hint="The account lacks push access to this repository: check its permissions.",
        )
    return RegistryError(
        f"{host} refused {what} (HTTP {status}: {detail}).",
        hint="Check the registry's logs and free space; run again with -v for each request.",
    )


class Pusher:
    """Pushes to one repository over one transport."""

    def __init__(
        self,
        transport: Transport,
        repository: str,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        mount_from: Sequence[str] = (),
        log: Log,
    ) -> None:
        self.t = transport
        self.repo = repository
        self.chunk_size = chunk_size
        self.log = log
        self.known = _KNOWN_BLOBS.setdefault(transport.host, {})
        self.mount_from = tuple(r for r in mount_from if r != repository)
        transport.add_scope(repository, "pull", "push")
        for source in self.mount_from:
            transport.add_scope(source, "pull")

    # --- blobs ---------------------------------------------------------------------------

    def blob_exists(self, repository: str, digest: str) -> bool:
        response = self.t.request(
            "HEAD", f"/v2/{repository}/blobs/{digest}", what=f"a check of blob {digest}"
        )
        response.close()
        if response.status_code == 200:
            return True
        if response.status_code == 404:
            return False
        raise _refused(response, f"a check of blob {digest} in {repository}", self.t.host)

    def push_blob(self, plan: Plan, blob: BlobRef, tally: _Tally) -> None:
        if self.blob_exists(self.repo, blob.digest):
            tally.skipped += 1
            self.log(f"blob {blob.digest[:19]} already in {self.repo}")
            self._remember(blob.digest, self.repo)
            return
        attempt = 0
        while True:
            attempt += 1
            location = self._mount_or_start(blob.digest, tally)
            if location is None:
                return
            try:
                with plan.blob_path(blob.digest).open("rb") as source:
                    if blob.size <= self.chunk_size:
                        self._put(location, blob, source.read())
                    else:
                        self._chunked(location, blob, source)
                break
            except _UploadLost as lost:
                # A connection cut mid-body leaves part of it in the upload, which the registry
                # then refuses to resume (BLOB_UPLOAD_INVALID); a lost reply leaves a committed
                # blob and a finished upload (BLOB_UPLOAD_UNKNOWN). Either way: look, then start
                # a new upload.
                if self.blob_exists(self.repo, blob.digest):
                    self.log(f"blob {blob.digest[:19]} arrived although its reply was lost")
                    break
                if attempt >= self.t.policy.attempts:
                    raise lost.error from None
                self.log(f"blob {blob.digest[:19]}: {lost.error.message} Starting a new upload.")
        tally.uploaded += 1
        tally.uploaded_bytes += blob.size
        self._remember(blob.digest, self.repo)
        self.log(f"blob {blob.digest[:19]} uploaded ({blob.size} bytes)")

    def _remember(self, digest: str, repository: str) -> None:
        self.known.setdefault(digest, set()).add(repository)

    def _sources(self, digest: str) -> list[str]:
        seen = sorted(self.known.get(digest, set()) - {self.repo})
        return seen + [r for r in self.mount_from if r not in seen]

    def _source_has(self, source: str, digest: str) -> bool:
        """Whether a mount source has the blob; a source we may not read is just no source."""
        self.t.add_scope(source, "pull")
        response = self.t.request(
            "HEAD",
            f"/v2/{source}/blobs/{digest}",
            what=f"a check of blob {digest} in {source}",
            denied_ok=True,
        )
        response.close()
        if response.status_code not in (200, 404):
            self.log(f"{source} is no mount source (HTTP {response.status_code})")
        return response.status_code == 200

    def _mount_or_start(self, digest: str, tally: _Tally) -> str | None:
        """Mount ``digest`` from a sibling repository; else the location of a new upload."""
        for source in self._sources(digest):
            if not self._source_has(source, digest):
                continue
            response = self.t.request(
                "POST",
                f"/v2/{self.repo}/blobs/uploads/",
                params={"mount": digest, "from": source},
                what=f"a mount of blob {digest} from {source}",
            )
            response.close()
            if response.status_code == 201:
                tally.mounted += 1
                self._remember(digest, self.repo)
                self.log(f"blob {digest[:19]} mounted from {source}")
                return None
            if response.status_code == 202:
                return self._location(response)
        response = self.t.request(
            "POST", f"/v2/{self.repo}/blobs/uploads/", what=f"the start of an upload of {digest}"
        )
        response.close()
        if response.status_code != 202:
            raise _refused(response, f"the start of an upload of blob {digest}", self.t.host)
        return self._location(response)

    def _location(self, response: requests.Response) -> str:
        location = response.headers.get("Location")
        if not location:
            raise RegistryError(
                f"{self.t.host} started an upload without a Location header.",
                hint="The registry does not follow the OCI distribution spec.",
            )
        return urljoin(response.url, location)

    def _put(self, location: str, blob: BlobRef, data: bytes | None) -> None:
        separator = "&" if "?" in location else "?"
        response = self.t.request(
            "PUT",
            f"{location}{separator}digest={blob.digest}",
            headers={"Content-Type": "application/octet-stream"},
            data=data if data is not None else b"",
            what=f"the upload of blob {blob.digest}",
        )
        response.close()
        _check_upload(response, f"the upload of blob {blob.digest}", self.t.host, 201)

    def _chunked(self, location: str, blob: BlobRef, source: BinaryIO) -> None:
        offset = 0
        while offset < blob.size:
            source.seek(offset)
            chunk = source.read(self.chunk_size)
            end = offset + len(chunk) - 1
            response = self.t.request(
                "PATCH",
                location,
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"{offset}-{end}",
                },
                data=chunk,
                what=f"a chunk ({offset}-{end}) of blob {blob.digest}",
            )
            response.close()
            if response.status_code == 416:
                location, offset = self._upload_status(location, blob)
                self.log(f"blob {blob.digest[:19]}: resuming the upload at byte {offset}")
                continue
            _check_upload(response, f"a chunk of blob {blob.digest}", self.t.host, 202)
            location = self._location(response)
            offset = end + 1
            self.log(f"blob {blob.digest[:19]}: {offset} of {blob.size} bytes")
        self._put(location, blob, None)

    def _upload_status(self, location: str, blob: BlobRef) -> tuple[str, int]:
        response = self.t.request("GET", location, what=f"the upload status of {blob.digest}")
        response.close()
        received = response.headers.get("Range", "")
        _check_upload(response, f"the upload status of blob {blob.digest}", self.t.host, 204)
        if "-" not in received:
            raise _refused(response, f"the upload status of blob {blob.digest}", self.t.host)
        return self._location(response), int(received.rsplit("-", 1)[1]) + 1

    # --- manifests -----------------------------------------------------------------------

    def manifest_exists(self, document: Document) -> bool:
        response = self.t.request(
            "HEAD",
            f"/v2/{self.repo}/manifests/{document.digest}",
            headers={"Accept": document.media_type},
            what=f"a check of manifest {document.digest}",
        )
        response.close()
        return response.status_code == 200

    def put_manifest(self, document: Document, target: str, tally: _Tally) -> Mapping[str, str]:
        """PUT ``document`` as ``target`` (a tag or its digest); the response's headers."""
        what = f"the manifest {document.digest} as {self.repo}:{target}"
        response = self.t.request(
            "PUT",
            f"/v2/{self.repo}/manifests/{target}",
            headers={"Content-Type": document.media_type},
            data=document.data,
            what=what,
        )
        response.close()
        if response.status_code != 201:
            raise _refused(response, what, self.t.host)
        served = response.headers.get("Docker-Content-Digest")
        if served and served != document.digest:
            raise RegistryError(
                f"{self.t.host} stored {what} under the digest {served}.",
                hint="The registry rewrote the manifest; factory needs one that keeps bytes.",
            )
        tally.manifest_bytes += document.size
        self.log(f"manifest {document.digest[:19]} -> {self.repo}:{target}")
        return response.headers

    def verify(self, tagged: push_plan.Tagged) -> None:
        """GET the tag: the registry must serve exactly the pushed bytes."""
        response = self.t.request(
            "GET",
            f"/v2/{self.repo}/manifests/{tagged.tag}",
            headers={"Accept": tagged.document.media_type},
            what=f"the verification of {self.repo}:{tagged.tag}",
        )
        if response.status_code != 200:
            raise _refused(response, f"the verification of {self.repo}:{tagged.tag}", self.t.host)
        served = "sha256:" + hashlib.sha256(response.content).hexdigest()
        if served != tagged.document.digest:
            raise RegistryError(
                f"{self.t.host} serves {self.repo}:{tagged.tag} as {served}, not the pushed "
                f"{tagged.document.digest} (another push to the same tag?).",
                hint="Push again; if it persists, check for concurrent pushes to this tag.",
            )


def push_layout(
    layout_dir: Path,
    repository: str,
    *,
    insecure: bool = False,
    mount_from: Sequence[str] = (),
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    transport: Transport | None = None,
    policy: RetryPolicy | None = None,
    log: Log = console.detail,
    progress: Progress | None = None,
) -> PushResult:
    """Push every image of the layout at ``layout_dir`` to ``repository`` (`host/path`).

    ``mount_from`` names sibling repositories (paths on the same registry) worth trying as
    cross-repository mount sources; repositories this process pushed to are tried too.
    ``progress`` is called after each blob with (bytes of the layout's blobs now in the
    registry, bytes of all its blobs), for a progress bar.
    """
    plan = push_plan.read(layout_dir)
    ref = reference.repository(repository)
    own = transport is None
    t = transport or Transport(ref.api_host, insecure=insecure, policy=policy, log=log)
    tally = _Tally()
    try:
        pusher = Pusher(t, ref.repository, chunk_size=chunk_size, mount_from=mount_from, log=log)
        total = sum(blob.size for blob in plan.blobs)
        done = 0
        for blob in plan.blobs:
            pusher.push_blob(plan, blob, tally)
            done += blob.size
            if progress is not None:
                progress(done, total)
        for manifest in plan.manifests:
            if pusher.manifest_exists(manifest):
                log(f"manifest {manifest.digest[:19]} already in {ref.repository}")
            else:
                pusher.put_manifest(manifest, manifest.digest, tally)
        for tagged in plan.manifest_tags:
            pusher.put_manifest(tagged.document, tagged.tag, tally)
        for tagged in plan.index_tags:
            pusher.put_manifest(tagged.document, tagged.tag, tally)
        for tagged in plan.index_tags:
            pusher.verify(tagged)
    finally:
        if own:
            t.close()
    return PushResult(
        repository=ref.name,
        indexes=tuple(
            PushedIndex(
                tag=x.tag,
                digest=x.document.digest,
                size=x.document.size,
                reference=f"{ref.name}@{x.document.digest}",
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
    )
