"""Push an OCI image layout to a registry (OCI distribution spec), in an order a consumer can trust.

0. a HEAD of every tag (``Accept``: its manifest's or index's media type): what it names now;
   then a HEAD by digest of each image manifest no tag names yet. A manifest the registry has
   vouches for its blobs (a registry refuses a manifest whose blobs it lacks), so only the
   blobs of the others are looked at;
1. every blob those manifests reference: HEAD first (never uploaded twice); when it is absent,
   a cross-repository mount from a sibling repository of the same registry that has it; else
   an upload: monolithic (POST, then PUT with the bytes) up to ``chunk_size``, chunked PATCHes
   above it (resuming from the registry's offset if a chunk is refused as out of range);
2. every image manifest the registry lacks, by digest, then the per-target tags
   (``<tag>-<target>``);
3. the image index under each of its tags, last, so a tag never names an index whose
   manifests are not there yet;
4. a GET of each index tag: the bytes served must have the digest pushed.

A shard push (``index=False``) stops after step 2: the per-target manifests and tags, no
index tag; ``push_index`` later writes an index made from several shards' manifests (steps 3
and 4, after checking that every manifest it lists is in the repository).

A tag is written only when it did not name that digest already: re-tagging the same digest is
a write all the same (webhooks fire, registries with immutable tags refuse it), so a push of an
unchanged layout writes nothing: its requests are the HEADs of its tags and one GET per index
tag.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO, Final

from factory.distribution import plan as push_plan
from factory.distribution import reference, upload
from factory.distribution.media_types import sha256_digest
from factory.distribution.plan import Plan
from factory.distribution.refusals import refused
from factory.distribution.results import PushResult, Tally, push_result
from factory.distribution.retry import RetryPolicy
from factory.distribution.transport import Transport
from factory.errors import RegistryError
from factory.util import console
from factory.util.concurrency import side_by_side

DEFAULT_CHUNK_SIZE: Final = 16 << 20
ByteProgress = Callable[[int, int], None]
"""Called with (bytes of the layout's blobs now in the registry, bytes of all its blobs)."""

_KNOWN_BLOBS: dict[str, dict[str, set[str]]] = {}
"""Per registry host, the repositories where this process has seen each blob (mount sources)."""


class Pusher:
    """Pushes blobs and manifests to one repository over one transport, counting what it sent."""

    def __init__(
        self,
        transport: Transport,
        repository: str,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        mount_from: Sequence[str] = (),
        log: console.Progress,
    ) -> None:
        self.t = transport
        self.repo = repository
        self.chunk_size = chunk_size
        self.log = log
        self.known = _KNOWN_BLOBS.setdefault(transport.host, {})
        self.mount_from = tuple(r for r in mount_from if r != repository)
        self._tally = Tally()
        transport.add_scope(repository, "pull", "push")
        for source in self.mount_from:
            transport.add_scope(source, "pull")

    @property
    def manifest_counts(self) -> tuple[int, int]:
        """Manifests and tags written so far, and those found already naming their digest."""
        return self._tally.written, self._tally.unchanged

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
        raise refused(response, f"a check of blob {digest} in {repository}", self.t.host)

    def push_blob(self, digest: str, size: int, source: BinaryIO) -> None:
        """Make the blob ``digest`` (``size`` bytes, read from the seekable ``source``)
        present in the repository: already there, mounted from a sibling, or uploaded."""
        if self.blob_exists(self.repo, digest):
            self._tally.skipped += 1
            self.log(f"blob {digest[:19]} already in {self.repo}")
            self._remember(digest, self.repo)
            return
        attempt = 0
        while True:
            attempt += 1
            location = self._mount_or_start(digest)
            if location is None:
                return
            try:
                session = upload.Session(self.t, location, digest, log=self.log)
                session.send(size, source, chunk_size=self.chunk_size)
                break
            except upload.UploadLost as lost:
                # A connection cut mid-body leaves part of it in the upload, which the registry
                # then refuses to resume (BLOB_UPLOAD_INVALID); a lost reply leaves a committed
                # blob and a finished upload (BLOB_UPLOAD_UNKNOWN). Either way: look, then start
                # a new upload.
                if self.blob_exists(self.repo, digest):
                    self.log(f"blob {digest[:19]} arrived although its reply was lost")
                    break
                if attempt >= self.t.policy.attempts:
                    raise lost.error from lost
                self.log(f"blob {digest[:19]}: {lost.error.message} Starting a new upload.")
        self._tally.uploaded += 1
        self._tally.uploaded_bytes += size
        self._remember(digest, self.repo)
        self.log(f"blob {digest[:19]} uploaded ({size} bytes)")

    def vouched_for(self, digest: str) -> None:
        """Count the blob ``digest`` as present without asking: a manifest the repository has
        references it."""
        self._tally.skipped += 1
        self._remember(digest, self.repo)

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

    def _mount_or_start(self, digest: str) -> str | None:
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
                self._tally.mounted += 1
                self._remember(digest, self.repo)
                self.log(f"blob {digest[:19]} mounted from {source}")
                return None
            if response.status_code == 202:
                return upload.location(response, self.t.host)
        response = self.t.request(
            "POST", f"/v2/{self.repo}/blobs/uploads/", what=f"the start of an upload of {digest}"
        )
        response.close()
        if response.status_code != 202:
            raise refused(response, f"the start of an upload of blob {digest}", self.t.host)
        return upload.location(response, self.t.host)

    # --- manifests -----------------------------------------------------------------------

    def served_digest(self, target: str, media_type: str) -> str | None:
        """What the repository's ``target`` (a tag or a digest) names now, by a HEAD accepting
        ``media_type``; None when it is absent or the registry does not say."""
        response = self.t.request(
            "HEAD",
            f"/v2/{self.repo}/manifests/{target}",
            headers={"Accept": media_type},
            what=f"a check of {self.repo}:{target}",
        )
        response.close()
        if response.status_code != 200:
            return None
        served = response.headers.get("Docker-Content-Digest")
        # Asked by digest, a 200 is the answer even without the header.
        return served or (target if target.startswith("sha256:") else None)

    def unchanged(self, digest: str, target: str) -> None:
        """Count ``target`` (a tag, or ``digest`` itself) as naming ``digest``: not written."""
        self._tally.unchanged += 1
        if target == digest:
            self.log(f"manifest {digest[:19]} already in {self.repo}")
        else:
            self.log(f"{self.repo}:{target} already names {digest[:19]}")

    def put_manifest(self, data: bytes, media_type: str, target: str) -> Mapping[str, str]:
        """PUT the manifest (or index) ``data`` as ``target`` (a tag or its digest); the
        response's headers. The registry must keep the bytes (the digest it reports)."""
        digest = sha256_digest(data)
        what = f"the manifest {digest} as {self.repo}:{target}"
        response = self.t.request(
            "PUT",
            f"/v2/{self.repo}/manifests/{target}",
            headers={"Content-Type": media_type},
            data=data,
            what=what,
        )
        response.close()
        if response.status_code != 201:
            raise refused(response, what, self.t.host)
        served = response.headers.get("Docker-Content-Digest")
        if served and served != digest:
            raise RegistryError(
                f"{self.t.host} stored {what} under the digest {served}.",
                hint="The registry rewrote the manifest; factory needs one that keeps bytes.",
            )
        self._tally.manifest_bytes += len(data)
        self._tally.written += 1
        self.log(f"manifest {digest[:19]} -> {self.repo}:{target}")
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
            raise refused(response, f"the verification of {self.repo}:{tagged.tag}", self.t.host)
        served = sha256_digest(response.content)
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
    log: console.Progress = console.detail,
    progress: ByteProgress | None = None,
    index: bool = True,
) -> PushResult:
    """Push every image of the layout at ``layout_dir`` to ``repository`` (`host/path`).

    ``index`` False: a shard's push, the per-target manifests and their tags without the
    index tags (`factory index merge` writes those).

    ``mount_from`` names sibling repositories (paths on the same registry) worth trying as
    cross-repository mount sources; repositories this process pushed to are tried too.
    ``progress`` is called after each blob with (bytes of the layout's blobs now in the
    registry, bytes of all its blobs), for a progress bar.
    """
    plan = push_plan.read(layout_dir)
    if not index:
        plan = dataclasses.replace(plan, index_tags=())
    ref = reference.repository(repository)
    own = transport is None
    t = transport or Transport(ref.api_host, insecure=insecure, policy=policy, log=log)
    try:
        pusher = Pusher(t, ref.repository, chunk_size=chunk_size, mount_from=mount_from, log=log)
        named = _named(pusher, (*plan.manifest_tags, *plan.index_tags))
        missing = tuple(
            m
            for m in plan.manifests
            if m.digest not in named.values()
            and pusher.served_digest(m.digest, m.media_type) != m.digest
        )
        _push_blobs(pusher, plan, missing, progress)
        _push_manifests(pusher, plan, missing, named)
        return push_result(ref.name, plan, pusher._tally)
    finally:
        if own:
            t.close()


def _named(pusher: Pusher, tagged: Sequence[push_plan.Tagged]) -> dict[str, str | None]:
    """Tag -> the digest it names now: the first HEAD alone (it may probe and authenticate for
    all), the others side by side (each mostly waits for the registry)."""

    def served(x: push_plan.Tagged) -> str | None:
        return pusher.served_digest(x.tag, x.document.media_type)

    digests = [served(x) for x in tagged[:1]] + side_by_side(served, tagged[1:])
    return {x.tag: digest for x, digest in zip(tagged, digests, strict=True)}


def _push_blobs(
    pusher: Pusher,
    plan: Plan,
    missing: Sequence[push_plan.Document],
    progress: ByteProgress | None,
) -> None:
    """The blobs of the ``missing`` manifests; those of the others are there already."""
    needed = plan.blobs_of(missing)
    for blob in plan.blobs:
        if blob not in needed:
            pusher.vouched_for(blob.digest)
    total = sum(blob.size for blob in plan.blobs)
    done = total - sum(blob.size for blob in needed)
    if done and progress is not None:
        progress(done, total)
    for blob in needed:
        with plan.blob_path(blob.digest).open("rb") as source:
            pusher.push_blob(blob.digest, blob.size, source)
        done += blob.size
        if progress is not None:
            progress(done, total)


def _push_manifests(
    pusher: Pusher,
    plan: Plan,
    missing: Sequence[push_plan.Document],
    named: Mapping[str, str | None],
) -> None:
    """The ``missing`` manifests by digest, then each tag that did not name its document when
    the push started (``named``: tag -> the digest it named), the index tags last; then each
    index tag read back."""
    lacking = {m.digest for m in missing}
    for manifest in plan.manifests:
        if manifest.digest in lacking:
            pusher.put_manifest(manifest.data, manifest.media_type, manifest.digest)
        else:
            pusher.unchanged(manifest.digest, manifest.digest)
    _write_tags(pusher, (*plan.manifest_tags, *plan.index_tags), named)
    for tagged in plan.index_tags:
        pusher.verify(tagged)


def _write_tags(
    pusher: Pusher, tagged: Sequence[push_plan.Tagged], named: Mapping[str, str | None]
) -> None:
    """Each tag, in order, unless it named its document already (``named``)."""
    for item in tagged:
        document = item.document
        if named.get(item.tag) == document.digest:
            pusher.unchanged(document.digest, item.tag)
        else:
            pusher.put_manifest(document.data, document.media_type, item.tag)


def push_index(
    index: push_plan.Document,
    tags: Sequence[str],
    repository: str,
    *,
    transport: Transport,
    log: console.Progress = console.detail,
) -> PushResult:
    """Write the image index ``index`` (its exact bytes) under ``tags`` in ``repository``
    (`host/path`), whose manifests other pushes (shards) left there: each manifest the index
    lists must be in the repository first (else nothing is written), then its tags, each
    read back (a tag that names it already is not written again). So a tag names either the
    old index or the complete new one."""
    ref = reference.repository(repository)
    pusher = Pusher(transport, ref.repository, log=log)
    children = [
        push_plan.Document(
            digest=str(c["digest"]),
            media_type=str(c["mediaType"]),
            data=b"",
            platform=push_plan.platform_text(c.get("platform")),
        )
        for c in json.loads(index.data)["manifests"]
    ]
    absent = [c for c in children if pusher.served_digest(c.digest, c.media_type) != c.digest]
    if absent:
        listed = ", ".join(f"{c.platform} ({c.digest})" for c in absent)
        raise RegistryError(
            f"{ref.name} lacks manifests the index lists: {listed}; no tag was written.",
            hint="Run the shards that push these platforms again, then merge again.",
        )
    tagged = tuple(push_plan.Tagged(tag=tag, document=index) for tag in tags)
    _write_tags(pusher, tagged, _named(pusher, tagged))
    for item in tagged:
        pusher.verify(item)
    plan = Plan(
        layout=Path(), blobs=(), manifests=(), manifest_tags=(), index_tags=tagged, references={}
    )
    return push_result(ref.name, plan, pusher._tally)
