"""Where an assembled image goes: the ``Publisher`` protocol and the publishers.

A publisher takes one assembled layout and its destination (the repository the image is named
after) and says what it did (``Published``). The core publishers do one thing each: the docker
load (``--load``; ``docker_load`` makes the archive), the registry push (all of a layout, or a
shard's per-target images without the index tags) and the push of a merged index. What rides on a
push (an SBOM, a signature) is a wrapper, ``Referring``: it publishes through the publisher it
wraps, then attaches one ``Attachment`` to the index that was pushed, unless the subject
already has that very artifact among its referrers. The registry publishers of one run share
their ``Transports`` (one probe, one token, kept-alive connections per registry). The pipeline
(``factory.pipeline.publishing``) composes them from the options and runs them over the layouts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from factory.distribution import reference, referrers
from factory.distribution.media_types import Descriptor
from factory.distribution.plan import Document
from factory.distribution.push import push_index, push_layout
from factory.distribution.results import PushResult
from factory.distribution.transport import Transport
from factory.engine.local_registry import ensure_local_registry
from factory.image.assemble import LayoutResult
from factory.image.oci import read_blob
from factory.publish import docker_load
from factory.publish.docker_load import LoadResult
from factory.util import console


@dataclass(frozen=True, kw_only=True)
class Published:
    """What publishing did, in the order it happened."""

    loaded: tuple[LoadResult, ...] = ()
    pushed: tuple[PushResult, ...] = ()
    attached: tuple[referrers.Attached, ...] = ()

    def __add__(self, other: Published) -> Published:
        return Published(
            loaded=self.loaded + other.loaded,
            pushed=self.pushed + other.pushed,
            attached=self.attached + other.attached,
        )


class Transports:
    """One `Transport` per registry host (and TLS choice), opened on first use and closed
    together: the pushes and attachments of one run share each registry's probe, token and
    kept-alive connections instead of starting over for each."""

    def __init__(self, *, log: console.Progress = console.detail) -> None:
        self._log = log
        self._open: dict[tuple[str, bool], Transport] = {}

    def get(self, host: str, *, insecure: bool) -> Transport:
        key = (host, insecure)
        if key not in self._open:
            self._open[key] = Transport(host, insecure=insecure, log=self._log)
        return self._open[key]

    def close(self) -> None:
        for transport in self._open.values():
            transport.close()
        self._open.clear()

    def __enter__(self) -> Transports:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class Publisher(Protocol):
    def publish(self, layout: LayoutResult, destination: str) -> Published:
        """Publish ``layout`` as the repository ``destination`` (`host/path`)."""
        ...


class Attachment(Protocol):
    """Something attached to a pushed index as its referrer (an SBOM, a signature)."""

    def artifact(
        self, layout: LayoutResult, destination: reference.Reference
    ) -> referrers.ReferrerArtifact:
        """The artifact that refers to ``layout``'s index in ``destination``."""
        ...

    def tags(self, subject: Descriptor) -> tuple[str, ...]:
        """Tags that also name the artifact."""
        ...


@dataclass(frozen=True, kw_only=True)
class DockerLoad:
    """Load the host's image of the layout into the local Docker engine (``--load``), tagged
    after ``destination``."""

    def publish(self, layout: LayoutResult, destination: str) -> Published:
        loaded = docker_load.load(layout, repository=destination)
        console.info(f"loaded {loaded.image} ({loaded.target}) as {', '.join(loaded.references)}")
        return Published(loaded=(loaded,))


@dataclass(frozen=True, kw_only=True)
class RegistryPush:
    """Push the layout; a loopback repository where nothing answers gets the local registry.
    ``index`` False: a shard's push, without the index tags (`factory index merge` writes
    them)."""

    insecure: bool
    transports: Transports
    index: bool = True

    def publish(self, layout: LayoutResult, destination: str) -> Published:
        ensure_local_registry(destination)
        console.info(f"pushing {layout.image} to {destination}")
        transport = self.transports.get(
            reference.repository(destination).api_host, insecure=self.insecure
        )
        pushed = push_layout(layout.path, destination, transport=transport, index=self.index)
        return Published(pushed=(pushed,))


@dataclass(frozen=True, kw_only=True)
class IndexPush:
    """Write a merged index (`factory index merge`): the layout holds the index alone, whose
    manifests the shards pushed; its tags are written once every manifest is there."""

    insecure: bool
    transports: Transports

    def publish(self, layout: LayoutResult, destination: str) -> Published:
        console.info(f"writing the index of {layout.image} to {destination}")
        transport = self.transports.get(
            reference.repository(destination).api_host, insecure=self.insecure
        )
        index = Document(
            digest=layout.index.digest,
            media_type=layout.index.media_type,
            data=read_blob(layout.path, layout.index.digest),
        )
        return Published(pushed=(push_index(index, layout.tags, destination, transport=transport),))


@dataclass(frozen=True, kw_only=True)
class Referring:
    """Publish through ``inner``, then attach ``attachment`` to the pushed index."""

    inner: Publisher
    attachment: Attachment
    insecure: bool
    transports: Transports

    def publish(self, layout: LayoutResult, destination: str) -> Published:
        done = self.inner.publish(layout, destination)
        ref = reference.repository(destination)
        subject = Descriptor(
            media_type=layout.index.media_type, digest=layout.index.digest, size=layout.index.size
        )
        attached = referrers.attach(
            self.transports.get(ref.api_host, insecure=self.insecure),
            ref.repository,
            subject,
            self.attachment.artifact(layout, ref),
            layout=layout.path,
            tags=self.attachment.tags(subject),
        )
        return done + Published(attached=(attached,))
