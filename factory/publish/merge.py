"""`factory index merge`: one image index from the per-target manifests several shards pushed.

Shards (`factory image --push --shard`, each on its own machine) push the manifests and
per-target tags of some targets and no index tag. The merge, per image:

1. chooses one manifest per expected target (images.toml's targets, or ``--expect``): the one a
   shard result file names, else the one the registry's per-target tag (`<tag>-<target>`)
   names; a result file wins over a tag that names another manifest, and the merge says so.
   It refuses a target that two result files name, a target no shard expected, a shard that
   pushed to another repository or under other tags, and names every expected target missing;
2. reads each chosen manifest and its config from the registry: it must be there, its config's
   platform must be its target's, and all of them must carry the same annotations (the same
   revision, Cargo.lock and builder, which factory annotates every manifest with): those are
   the index's annotations, as in a one-machine push;
3. makes the index with `assemble.index_blob`, the function `factory image` makes it with, so
   the same manifests give the same index, byte for byte, baselines first.

Nothing is written until every image of the merge passed all of this; the push of the index
(`push.push_index`) checks the manifests are there once more and writes the index tags last.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from factory.distribution import plan as push_plan
from factory.distribution import reference, referrers
from factory.distribution.media_types import (
    MEDIA_MANIFEST,
    REF_NAME,
    Descriptor,
)
from factory.distribution.push import Pusher
from factory.distribution.transport import Transport
from factory.errors import MergeError
from factory.image import oci
from factory.image.assemble import BUILDER, CARGO_LOCK, LayoutResult, index_blob, index_order
from factory.image.provenance import Provenance
from factory.model.targets import Target
from factory.publish.shard import ShardResult
from factory.util import console

CREATED: Final = "org.opencontainers.image.created"
REVISION: Final = "org.opencontainers.image.revision"
# What must be the same in every shard of an image, with how a message names it and the fix.
_SAME: Final = (
    (REVISION, "revisions", "Build every shard from the same commit."),
    (CARGO_LOCK, "Cargo.lock files", "Build every shard with the same Cargo.lock."),
    (
        BUILDER,
        "builders",
        "Build every shard with the same factory and the same [builder] of images.toml.",
    ),
)


@dataclass(frozen=True, kw_only=True)
class Chosen:
    """The manifest the merge takes for one target, and where it learnt of it."""

    target: Target
    digest: str
    media_type: str
    source: str


@dataclass(frozen=True, kw_only=True)
class Read:
    """A chosen manifest as the registry serves it, with its config's platform."""

    chosen: Chosen
    size: int
    annotations: Mapping[str, str]
    config_platform: str | None


@dataclass(frozen=True, kw_only=True)
class Merged:
    """One image's merged index (in a layout of its own, for the publishers) and its entries."""

    layout: LayoutResult
    entries: tuple[Read, ...]
    notes: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "image": self.layout.image,
            "repository": self.layout.repository,
            "tags": list(self.layout.tags),
            "index_digest": self.layout.index.digest,
            "index_size": self.layout.index.size,
            "targets": [
                {
                    "target": e.chosen.target.name,
                    "platform": str(e.chosen.target.platform),
                    "manifest_digest": e.chosen.digest,
                    "manifest_size": e.size,
                    "source": e.chosen.source,
                }
                for e in self.entries
            ],
            "notes": list(self.notes),
        }


# --- 1. one manifest per target -----------------------------------------------------------


def choose(
    image: str,
    repository: str,
    tags: Sequence[str],
    expected: Sequence[Target],
    shards: Sequence[ShardResult],
    served: Callable[[str], str | None],
) -> tuple[list[Chosen], list[str]]:
    """The manifest of each expected target, in index order, and notes on what was overruled.
    ``served(tag)``: the digest the registry's tag names now (None: no such tag)."""
    from_files = _from_files(image, repository, tags, shards)
    unexpected = [n for n in from_files if n not in {t.name for t in expected}]
    if unexpected:
        raise MergeError(
            f"{image}: the shards pushed {', '.join(unexpected)}, which the merge does not "
            f"expect (it expects {', '.join(t.name for t in expected)}). Nothing was written.",
            hint="Pass --expect with every target the index is to list, or run the shards with "
            "the targets of images.toml.",
        )
    chosen: list[Chosen] = []
    notes: list[str] = []
    missing: list[Target] = []
    for target in index_order(expected):
        tag = f"{tags[0]}-{target.tag_suffix}"
        in_registry = served(tag)
        in_file = from_files.get(target.name)
        if in_file is not None:
            if in_registry is not None and in_registry != in_file.digest:
                notes.append(
                    f"{target.name}: {in_file.source} names {in_file.digest}, the tag {tag} "
                    f"names {in_registry}: the result file wins."
                )
            chosen.append(in_file)
        elif in_registry is not None:
            source = f"the tag {repository}:{tag}"
            chosen.append(
                Chosen(target=target, digest=in_registry, media_type=MEDIA_MANIFEST, source=source)
            )
        else:
            missing.append(target)
    if missing:
        raise _missing(image, repository, tags, expected, missing, from_files=bool(shards))
    return chosen, notes


def _from_files(
    image: str, repository: str, tags: Sequence[str], shards: Sequence[ShardResult]
) -> dict[str, Chosen]:
    """Target name -> the manifest a result file names for it; refuses a target named twice,
    and a shard of another repository or other tags."""
    found: dict[str, Chosen] = {}
    for result in shards:
        shard = result.image(image)
        if shard is None:
            continue
        if shard.repository != repository:
            raise MergeError(
                f"{result.source} says the shard pushed {image} to {shard.repository}, but the "
                f"merge writes {repository}.",
                hint=f"Pass --registry so both name the same repository, or leave "
                f"{result.source} out.",
            )
        if tuple(shard.tags) != tuple(tags):
            raise MergeError(
                f"{result.source} says the shard pushed {image} for the tags "
                f"{', '.join(shard.tags)}, but the merge writes {', '.join(tags)}.",
                hint="Pass the shards' --tag values to the merge too.",
            )
        for item in shard.targets:
            name = item.target.name
            if name in found:
                raise MergeError(
                    f"{image}: the platform {item.target.platform} ({name}) appears twice: in "
                    f"{found[name].source} ({found[name].digest}) and in {result.source} "
                    f"({item.digest}). Nothing was written.",
                    hint="Each target must come from one shard: give the shards disjoint -t "
                    "selections, and pass each shard's result file once.",
                )
            found[name] = Chosen(
                target=item.target,
                digest=item.digest,
                media_type=item.media_type,
                source=result.source,
            )
    return found


def _missing(
    image: str,
    repository: str,
    tags: Sequence[str],
    expected: Sequence[Target],
    missing: Sequence[Target],
    *,
    from_files: bool,
) -> MergeError:
    one = len(missing) == 1
    where = f"no result file lists {'it' if one else 'them'} and " if from_files else ""
    looked = ", ".join(f"{tags[0]}-{m.tag_suffix}" for m in missing)
    return MergeError(
        f"{image}: the merge expects {', '.join(t.name for t in expected)}, but "
        f"{', '.join(m.name for m in missing)} {'is' if one else 'are'} missing ({where}"
        f"{repository} has no tag{'' if one else 's'} {looked}): a shard failed or did not run. "
        f"Nothing was written; {repository}:{tags[0]} names what it named before.",
        hint="Run the shard that builds the missing targets (`factory image --push --shard "
        "-t TARGET`), or pass --expect with the targets the shards built.",
    )


# --- 2. the manifests, checked ------------------------------------------------------------


def check(image: str, entries: Sequence[Read]) -> dict[str, str]:
    """The annotations the index gets (those of every manifest, which must agree); refuses a
    manifest whose config's platform is not its target's, and shards of another revision,
    Cargo.lock or builder."""
    for entry in entries:
        target = entry.chosen.target
        if entry.config_platform != str(target.platform):
            raise MergeError(
                f"{image}: the manifest {entry.chosen.digest} for {target.name} (from "
                f"{entry.chosen.source}) is an image for {entry.config_platform or 'no platform'}"
                f" by its config, not {target.platform}. Nothing was written.",
                hint="A per-target tag or result file names another target's image: push that "
                "target's shard again.",
            )
    for key, what, fix in _SAME:
        _same(image, entries, key, what, fix)
    first = dict(entries[0].annotations)
    for entry in entries[1:]:
        if dict(entry.annotations) != first:
            keys = sorted(
                k
                for k in first.keys() | entry.annotations.keys()
                if first.get(k) != entry.annotations.get(k)
            )
            raise MergeError(
                f"{image}: the manifests of {entries[0].chosen.target.name} and "
                f"{entry.chosen.target.name} carry different annotations ({', '.join(keys)}), "
                "so they are no shards of one image. Nothing was written.",
                hint="Build every shard from the same checkout, images.toml and SOURCE_DATE_EPOCH.",
            )
    return first


def _same(image: str, entries: Sequence[Read], key: str, what: str, fix: str) -> None:
    groups: dict[str, list[str]] = {}
    for entry in entries:
        value = entry.annotations.get(key, "(none)")
        groups.setdefault(value, []).append(entry.chosen.target.name)
    if len(groups) > 1:
        listed = "; ".join(f"{', '.join(names)} from {value}" for value, names in groups.items())
        raise MergeError(
            f"{image}: the shards were built from different {what} ({key}): {listed}. "
            "Nothing was written.",
            hint=f"{fix} Then run the shards and the merge again.",
        )


# --- the registry -------------------------------------------------------------------------


def read_manifest(pusher: Pusher, chosen: Chosen) -> Read:
    """The chosen manifest and its config's platform, from the registry."""
    transport, repository = pusher.t, pusher.repo
    if pusher.served_digest(chosen.digest, chosen.media_type) != chosen.digest:
        raise MergeError(
            f"{transport.host}/{repository} lacks the manifest {chosen.digest} of "
            f"{chosen.target.name} that {chosen.source} names: that shard's push did not "
            "finish. Nothing was written.",
            hint="Run that shard again, then the merge.",
        )
    data = referrers.fetch_manifest_data(transport, repository, chosen.digest)
    document = json.loads(data)
    config = document.get("config") or {}
    platform = None
    if "digest" in config:
        blob = referrers.fetch_blob(transport, repository, str(config["digest"]))
        platform = push_plan.platform_text(json.loads(blob))
    return Read(
        chosen=Chosen(
            target=chosen.target,
            digest=chosen.digest,
            media_type=str(document.get("mediaType") or chosen.media_type),
            source=chosen.source,
        ),
        size=len(data),
        annotations=dict(document.get("annotations") or {}),
        config_platform=platform,
    )


def merge_image(
    image: str,
    repository: str,
    tags: Sequence[str],
    expected: Sequence[Target],
    shards: Sequence[ShardResult],
    *,
    transport: Transport,
    out_dir: Path,
) -> Merged:
    """The merged index of ``image`` in ``repository``, checked, in a layout at
    ``out_dir/<image>`` (the index alone: the per-target images stay in the registry)."""
    name = reference.repository(repository).repository
    pusher = Pusher(transport, name, log=console.detail)
    chosen, notes = choose(
        image,
        repository,
        tags,
        expected,
        shards,
        lambda tag: pusher.served_digest(tag, MEDIA_MANIFEST),
    )
    for note in notes:
        console.warn(f"{image}: {note}")
    entries = tuple(read_manifest(pusher, c) for c in chosen)
    annotations = check(image, entries)
    index = index_blob(
        [
            (
                e.chosen.target,
                Descriptor(media_type=e.chosen.media_type, digest=e.chosen.digest, size=e.size),
            )
            for e in entries
        ],
        annotations,
    )
    path = out_dir / image
    oci.write_layout(
        path, blobs=[index], refs=[index.descriptor(annotations={REF_NAME: t}) for t in tags]
    )
    layout = LayoutResult(
        image=image,
        path=path,
        repository=repository,
        tags=tuple(tags),
        index=index.descriptor(),
        images=(),
        provenance=_provenance(annotations),
        ca_certificates=None,
        size=index.size,
    )
    return Merged(layout=layout, entries=entries, notes=tuple(notes))


def _provenance(annotations: Mapping[str, str]) -> Provenance:
    """The shards' provenance, as their manifests' annotations say it."""
    created = annotations.get(CREATED)
    epoch = 0
    if created:
        epoch = int(datetime.strptime(created, "%Y-%m-%dT%H:%M:%S%z").timestamp())
    return Provenance(
        created=epoch,
        created_from="the shards' manifests",
        revision=annotations.get(REVISION),
        source=annotations.get("org.opencontainers.image.source"),
        version=annotations.get("org.opencontainers.image.version"),
        cargo_lock=annotations.get(CARGO_LOCK),
        builder=annotations.get(BUILDER),
    )
