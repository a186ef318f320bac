"""`factory image` as one job: the stages of ``run``, then the publishers its options ask for.

The publishers are composed before anything is built, so that what they need read up front
(the signing key) fails at once: docker load (``--load``), then the registry push
(``--push``), wrapped by the SBOM attachment (unless ``--no-sbom``) and then by the signature
(``--sign-key``). Each publisher runs over every layout before the next one starts.

A shard (``--shard``) pushes without the index tags and attaches nothing: `factory index merge`
(``merge_job``) makes the index from the shards' manifests and pushes it through the same
attachments, so the SBOM and the signature refer to the merged index.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from factory.distribution import reference
from factory.image.assemble import LayoutResult
from factory.model import config as cfg
from factory.model.dist import Dist
from factory.model.targets import Target
from factory.pipeline import run as stages
from factory.publish import merge, shard
from factory.publish.publisher import (
    Attachment,
    DockerLoad,
    IndexPush,
    Published,
    Publisher,
    Referring,
    RegistryPush,
    Transports,
)
from factory.publish.supply import SbomAttachment, SignatureAttachment
from factory.util import console


@dataclass(frozen=True, kw_only=True)
class PublishOptions:
    """Where the assembled images go."""

    load: bool = False
    push: bool = False
    insecure: bool = False
    """Plain HTTP to a registry not on a loopback address (or images.toml's registry.insecure)."""
    sbom: bool = True
    """With push: attach an SPDX SBOM to each index."""
    sign_key: Path | None = None
    """With push: sign each index with this key."""
    shard: bool = False
    """With push: the per-target images only, no index tags, nothing attached."""


@dataclass(frozen=True, kw_only=True)
class JobResult:
    outcome: stages.Outcome
    published: Published


def publishers(
    config: cfg.Config, options: PublishOptions, transports: Transports
) -> list[Publisher]:
    """The publishers ``options`` ask for, in the order they run; reads the signing key. The
    registry publishers share ``transports``."""
    chain: list[Publisher] = []
    if options.load:
        chain.append(DockerLoad())
    if options.push:
        insecure = options.insecure or config.registry.insecure
        push = RegistryPush(insecure=insecure, transports=transports, index=not options.shard)
        chain.append(push if options.shard else referring(push, config, options, transports))
    return chain


def referring(
    push: Publisher, config: cfg.Config, options: PublishOptions, transports: Transports
) -> Publisher:
    """``push`` wrapped by the attachments ``options`` ask for (the SBOM, the signature)."""
    insecure = options.insecure or config.registry.insecure
    attachments: list[Attachment] = []
    if options.sbom:
        attachments.append(SbomAttachment(config=config))
    if options.sign_key is not None:
        attachments.append(SignatureAttachment.read(options.sign_key))
    for attachment in attachments:
        push = Referring(
            inner=push, attachment=attachment, insecure=insecure, transports=transports
        )
    return push


def publish_all(publishers: Sequence[Publisher], layouts: Sequence[LayoutResult]) -> Published:
    """Each publisher in turn over every layout (all loads before the first push), each layout
    to its own repository."""
    done = Published()
    for publisher in publishers:
        for layout in layouts:
            done += publisher.publish(layout, layout.repository)
    return done


def image_job(
    config: cfg.Config,
    images: Sequence[cfg.ImageConfig],
    targets: Sequence[Target] | None,
    *,
    profile: cfg.Profile,
    out_dir: Path,
    tags: Sequence[str] | None,
    skip_build: bool,
    rebuild: bool,
    jobs: int | None = None,
    publish: PublishOptions,
    progress: console.Progress = console.info,
) -> JobResult:
    """Compose the publishers (a wrong signing key fails here), run the stages, publish."""
    with Transports() as transports:
        chain = publishers(config, publish, transports)
        outcome = stages.run(
            config,
            images,
            targets,
            profile=profile,
            out_dir=out_dir,
            tags=tags,
            skip_build=skip_build,
            rebuild=rebuild,
            jobs=jobs,
            progress=progress,
        )
        return JobResult(outcome=outcome, published=publish_all(chain, outcome.layouts))


@dataclass(frozen=True, kw_only=True)
class MergeResult:
    merged: tuple[merge.Merged, ...]
    published: Published


def merge_job(
    config: cfg.Config,
    images: Sequence[cfg.ImageConfig],
    *,
    results: Sequence[Path],
    expect: Sequence[Target] | None,
    tags: Sequence[str] | None,
    publish: PublishOptions,
) -> MergeResult:
    """Merge each image's shards into its index: every image is checked before any index tag
    is written; then the index tags, the SBOM and the signature, as `factory image --push`
    writes them."""
    shards = [shard.read(path) for path in results]
    insecure = publish.insecure or config.registry.insecure
    out_dir = Dist.of(config).merged
    with Transports() as transports:
        push = referring(
            IndexPush(insecure=insecure, transports=transports), config, publish, transports
        )
        merged = []
        for image in images:
            repository = config.repository_of(image)
            merged.append(
                merge.merge_image(
                    image.name,
                    repository,
                    tuple(tags) if tags else image.tags,
                    expect if expect is not None else image.resolved_targets,
                    shards,
                    transport=transports.get(
                        reference.repository(repository).api_host, insecure=insecure
                    ),
                    out_dir=out_dir,
                )
            )
        published = publish_all([push], [m.layout for m in merged])
    return MergeResult(merged=tuple(merged), published=published)
