"""From validated binaries and images.toml to one OCI image layout per image.

Input: `dist/bin/<image>/<target>/<binary>` (the build's output) and `dist/report.json` (the
validation's verdict). A binary is only ever packed when report.json lists its exact sha256 as
passed. Output: `<out_dir>/<image>/`, an OCI image layout whose index.json names

- every per-target manifest as `<tag>-<target tag suffix>` (`latest-amd64-v3`), then
- the image index as `<tag>`, once per tag,

which is the order a registry push follows (manifests before the index that references them).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from factory.build.binary import Binary
from factory.distribution import media_types
from factory.errors import ConfigError, UsageError, ValidationError
from factory.image import oci, provenance
from factory.model import config as cfg
from factory.model.dist import Dist
from factory.model.targets import TARGETS, Target
from factory.util import console, fsutil
from factory.validate.gate import check_validated, find_binaries

CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
CA_PATH = "/etc/ssl/certs/ca-certificates.crt"
NONROOT_UID = 65532

PASSWD = (
    "root:x:0:0:root:/root:/sbin/nologin\n"
    f"nonroot:x:{NONROOT_UID}:{NONROOT_UID}:nonroot:/home/nonroot:/sbin/nologin\n"
)
GROUP = f"root:x:0:\nnonroot:x:{NONROOT_UID}:\n"

CARGO_LOCK = "org.factory.cargo-lock"
"""The annotation naming the digest of the Cargo.lock the image was built from."""
BUILDER = "org.factory.builder"
"""The annotation naming the builder's content hash (its Dockerfile, context and base)."""


@dataclass(frozen=True, kw_only=True)
class TargetImage:
    """One per-target image of a layout."""

    target: Target
    manifest: media_types.Descriptor
    config: media_types.Descriptor
    layer: media_types.Descriptor
    binary: Binary

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target.name,
            "platform": str(self.target.platform),
            "tag_suffix": self.target.tag_suffix,
            "manifest_digest": self.manifest.digest,
            "manifest_size": self.manifest.size,
            "config_digest": self.config.digest,
            "layer_digest": self.layer.digest,
            "layer_size": self.layer.size,
            "binary_sha256": self.binary.sha256,
            "binary_size": self.binary.size,
        }


@dataclass(frozen=True, kw_only=True)
class LayoutResult:
    """One image's layout: where it is, its index and its per-target images."""

    image: str
    path: Path
    repository: str
    tags: tuple[str, ...]
    index: media_types.Descriptor
    images: tuple[TargetImage, ...]
    provenance: provenance.Provenance
    ca_certificates: str | None
    """Where the CA bundle came from, with its digest; None when the image has none."""
    size: int
    """Bytes of every distinct blob in the layout (what a first push uploads)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "layout": str(self.path),
            "repository": self.repository,
            "tags": list(self.tags),
            "index_digest": self.index.digest,
            "index_size": self.index.size,
            "size": self.size,
            "targets": [i.to_json() for i in self.images],
            "provenance": self.provenance.to_json(),
            "ca_certificates": self.ca_certificates,
        }


def index_order(targets: Sequence[Target]) -> tuple[Target, ...]:
    """Baselines first (linux/amd64, linux/arm64), then variants, each in table order."""
    rank = {t.name: i for i, t in enumerate(TARGETS)}
    return tuple(sorted(targets, key=lambda t: (not t.is_baseline, rank[t.name])))


def index_blob(
    manifests: Sequence[tuple[Target, media_types.Descriptor]], annotations: Mapping[str, str]
) -> oci.Blob:
    """The image index of per-target manifests, in `index_order`, each entry with its target's
    platform. The one way an index is made: `factory image` and `factory index merge` (from
    the manifests of several shards) give the same bytes for the same manifests."""
    by_name = {target.name: manifest for target, manifest in manifests}
    entries = [
        media_types.Descriptor(
            media_type=by_name[target.name].media_type,
            digest=by_name[target.name].digest,
            size=by_name[target.name].size,
            platform=target.platform,
        )
        for target in index_order([target for target, _ in manifests])
    ]
    return oci.image_index(entries, annotations=annotations)


# --- the image's files --------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ExtraFiles:
    """The files every per-target image of one image shares, and what to say about them."""

    files: tuple[oci.FileEntry, ...]
    ca_origin: str | None


def extra_files(image: cfg.ImageConfig, *, ca_bundle: Path) -> ExtraFiles:
    files: list[oci.FileEntry] = []
    origin: str | None = None
    if image.files.ca_certificates:
        try:
            data = ca_bundle.read_bytes()
        except OSError as err:
            raise ConfigError(
                f"Image {image.name!r} asks for CA certificates (files.ca_certificates = true), "
                f"but {ca_bundle} cannot be read ({err.strerror}). Install Debian's "
                "ca-certificates package on this host, or set files.ca_certificates = false."
            ) from err
        origin = f"{ca_bundle} on the build host (sha256:{hashlib.sha256(data).hexdigest()})"
        files.append(oci.FileEntry(path=CA_PATH, data=data, mode=0o644))
    if image.files.passwd:
        files.append(oci.FileEntry(path="/etc/passwd", data=PASSWD.encode(), mode=0o644))
        files.append(oci.FileEntry(path="/etc/group", data=GROUP.encode(), mode=0o644))
    return ExtraFiles(files=tuple(files), ca_origin=origin)


def _check_image(image: cfg.ImageConfig, source: Path) -> str:
    """The binary's path inside the image (the entrypoint's first word), checked."""
    where = f"{source}: image {image.name!r}"
    entry = image.resolved_entrypoint[0]
    if not entry.startswith("/") or entry.endswith("/") or ".." in entry.split("/"):
        raise ConfigError(
            f"{where}: `entrypoint` {entry!r} must start with the absolute path the binary "
            f'gets inside the image. Write e.g. entrypoint = ["/{image.binary}"].'
        )
    names = {"root", "nonroot"} if image.files.passwd else set()
    for part in (image.user or "").split(":"):
        if part and not part.isdigit() and part not in names:
            known = "it knows only root and nonroot" if names else "the image has no /etc/passwd"
            raise ConfigError(
                f"{where}: `user` {image.user!r} names {part!r}, but {known}. Write "
                f'user = "{NONROOT_UID}:{NONROOT_UID}" (or "nonroot" with files.passwd = true).'
            )
    return entry


def _annotations(image: cfg.ImageConfig, prov: provenance.Provenance) -> dict[str, str]:
    """What every manifest of the image, its index and (as labels) its configs are annotated
    with."""
    out = {
        "org.opencontainers.image.created": oci.rfc3339(prov.created),
        "org.opencontainers.image.title": image.name,
        "org.opencontainers.image.base.name": "scratch",
    }
    for key, value in (
        ("source", prov.source),
        ("revision", prov.revision),
        ("version", prov.version),
    ):
        if value:
            out[f"org.opencontainers.image.{key}"] = value
    for key, value in ((CARGO_LOCK, prov.cargo_lock), (BUILDER, prov.builder)):
        if value:
            out[key] = value
    out.update(image.annotations)
    return out


# --- assembly -----------------------------------------------------------------------------


def _target_image(
    *,
    image: cfg.ImageConfig,
    target: Target,
    binary: Binary,
    entry: str,
    extras: ExtraFiles,
    annotations: Mapping[str, str],
    created: int,
    blobs: dict[str, oci.Blob],
    compress: Callable[[bytes], bytes] = oci.deterministic_gzip,
) -> TargetImage:
    files = (oci.FileEntry(path=entry, data=binary.path.read_bytes(), mode=0o755), *extras.files)
    try:
        layer = oci.make_layer(files, mtime=created, compress=compress)
    except ValueError as err:
        raise ConfigError(
            f"Image {image.name!r}: {err}. Change its `entrypoint` so the binary does not "
            "collide with the files the image adds."
        ) from err
    if media_types.sha256_digest(files[0].data) != f"sha256:{binary.sha256}":
        raise ValidationError(
            f"{binary.path} changed while it was being packed. Run `factory build` and "
            "`factory validate` again."
        )
    added = [entry, *(f.path for f in extras.files)]
    history = oci.HistoryEntry(
        created_by=f"factory image: {', '.join(added)} ({target.name}, "
        f"binary sha256:{binary.sha256})",
        comment=f"CA certificates from {extras.ca_origin}" if extras.ca_origin else "",
    )
    run = oci.RunConfig(
        entrypoint=image.resolved_entrypoint,
        cmd=image.cmd,
        user=image.user,
        env=tuple(f"{k}={v}" for k, v in image.env.items()),
        labels={**annotations, **image.labels},
    )
    config = oci.image_config(
        platform=target.platform, run=run, layers=[layer], history=[history], created=created
    )
    manifest = oci.image_manifest(config=config, layers=[layer], annotations=annotations)
    for blob in (layer.blob, config, manifest):
        blobs[blob.digest] = blob
    return TargetImage(
        target=target,
        manifest=manifest.descriptor(platform=target.platform),
        config=config.descriptor(),
        layer=layer.blob.descriptor(),
        binary=binary,
    )


def assemble_image(
    config: cfg.Config,
    image: cfg.ImageConfig,
    targets: Sequence[Target],
    out_dir: Path,
    *,
    tags: Sequence[str] | None = None,
    dist: Dist | None = None,
    profile: cfg.Profile | None = None,
    ca_bundle: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> LayoutResult:
    """Assemble one image's layout at `out_dir/<image name>`."""
    dist = Dist.of(config) if dist is None else dist
    tags = tuple(tags) if tags else image.tags
    ordered = index_order(targets)
    _check_tags(tags, ordered)
    entry = _check_image(image, config.source)
    binaries = find_binaries(dist, image, ordered, profile or config.workspace.profile)
    check_validated(binaries, dist.report)
    _warn_missing_baselines(image, ordered)

    prov = provenance.collect(
        config.workspace_path,
        image.cargo_package,
        environ=environ,
        builder=provenance.builder_digest(config.dockerfile_path, config.builder.base),
    )
    annotations = _annotations(image, prov)
    extras = extra_files(image, ca_bundle=CA_BUNDLE if ca_bundle is None else ca_bundle)
    blobs: dict[str, oci.Blob] = {}
    images = tuple(
        _target_image(
            image=image,
            target=target,
            binary=binary,
            entry=entry,
            extras=extras,
            annotations=annotations,
            created=prov.created,
            blobs=blobs,
            compress=oci.cached_gzip(dist.layer_cache),
        )
        for target, binary in zip(ordered, binaries, strict=True)
    )
    index = index_blob([(i.target, i.manifest) for i in images], annotations)
    path = out_dir / image.name
    with fsutil.exclusive(out_dir / f".{image.name}.lock", what=f"the layout {path}"):
        oci.write_layout(path, blobs=[*blobs.values(), index], refs=_refs(tags, images, index))
    return LayoutResult(
        image=image.name,
        path=path,
        repository=config.repository_of(image),
        tags=tags,
        index=index.descriptor(),
        images=images,
        provenance=prov,
        ca_certificates=extras.ca_origin,
        size=index.size + sum(b.size for b in blobs.values()),
    )


def _refs(
    tags: Sequence[str], images: Sequence[TargetImage], index: oci.Blob
) -> list[media_types.Descriptor]:
    """index.json's names: `<tag>-<target tag suffix>` for each manifest, then `<tag>` for the
    index, per tag (the order a push follows: manifests before the index that references them)."""
    manifests = [
        media_types.Descriptor(
            media_type=i.manifest.media_type,
            digest=i.manifest.digest,
            size=i.manifest.size,
            platform=i.target.platform,
            annotations={media_types.REF_NAME: f"{tag}-{i.target.tag_suffix}"},
        )
        for tag in tags
        for i in images
    ]
    return manifests + [index.descriptor(annotations={media_types.REF_NAME: tag}) for tag in tags]


def assemble(
    config: cfg.Config,
    images: Sequence[cfg.ImageConfig],
    targets: Sequence[Target] | None,
    out_dir: Path,
    *,
    tags: Sequence[str] | None = None,
    dist: Dist | None = None,
    profile: cfg.Profile | None = None,
    ca_bundle: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[LayoutResult]:
    """One layout per image under `out_dir`. `targets` None: each image's own targets."""
    results = []
    for image in images:
        chosen = image.resolved_targets if targets is None else tuple(targets)
        console.info(f"assembling {image.name} ({len(chosen)} targets) in {out_dir / image.name}")
        results.append(
            assemble_image(
                config,
                image,
                chosen,
                out_dir,
                tags=tags,
                dist=dist,
                profile=profile,
                ca_bundle=ca_bundle,
                environ=environ,
            )
        )
    return results


def _check_tags(tags: Sequence[str], targets: Sequence[Target]) -> None:
    if not targets:
        raise UsageError("No target is selected. Name at least one with -t or in images.toml.")
    longest = max(len(t.tag_suffix) for t in targets) + 1
    for tag in tags:
        if not cfg.TAG_RE.fullmatch(tag) or len(tag) + longest > 128:
            raise UsageError(
                f"{tag!r} cannot be a tag here: a tag is letters, digits, '_', '.', '-' (not "
                f"starting with . or -), and `<tag>-<target>` must fit in 128 characters. "
                "Pass another --tag."
            )


def _warn_missing_baselines(image: cfg.ImageConfig, targets: Sequence[Target]) -> None:
    arches = {t.arch for t in targets}
    for arch in sorted(arches, key=lambda a: a.value):
        if not any(t.arch is arch and t.is_baseline for t in targets):
            console.warn(
                f"{image.name}: the index has {arch.value} variants but no {arch.value} baseline "
                f"entry, so a plain `docker pull` on {arch.value} finds no match; add the "
                f"`{arch.value}` target."
            )
