"""`factory image`: the whole job: build, validate, assemble, and load or push."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import typer

from factory.cli.app import app, load_config, parse_profile
from factory.cli.options import (
    CompilationModeOption,
    ImageOption,
    InsecureOption,
    JobsOption,
    RecompileDeprecated,
    RecompileOption,
    RegistryOption,
    SbomOption,
    SignKeyOption,
    TagOption,
    TargetOption,
)
from factory.cli.render import size as _size
from factory.distribution.referrers import Attached
from factory.distribution.results import PushResult
from factory.errors import UsageError
from factory.image.assemble import LayoutResult
from factory.model import config as cfg
from factory.model import targets as target_table
from factory.model.dist import Dist
from factory.pipeline import publishing
from factory.publish import docker_load as dockerload
from factory.publish import shard as shards
from factory.util import console

RESULT_SCHEMA = "factory.image/v1"


@app.command("image", short_help="Build, validate and assemble the images, then load or push them.")
def image_command(
    target: TargetOption = None,
    image: ImageOption = None,
    tag: TagOption = None,
    registry: RegistryOption = None,
    oci_layout: Annotated[
        Path | None,
        typer.Option(
            "--oci-layout",
            metavar="DIR",
            help="Write each image's layout to DIR/<name> instead of dist/oci/<name>.",
        ),
    ] = None,
    load: Annotated[
        bool,
        typer.Option(
            "--load", help="Load the host's image into the local Docker engine (for docker run)."
        ),
    ] = False,
    push: Annotated[
        bool,
        typer.Option("--push", help="Push each layout to its repository (index tags last)."),
    ] = False,
    insecure: InsecureOption = False,
    sbom: SbomOption = True,
    sign_key: SignKeyOption = None,
    shard: Annotated[
        bool,
        typer.Option(
            "--shard",
            help="With --push: push the selected targets' images and per-target tags only, no "
            "index tag and no SBOM or signature (`factory index merge` writes those).",
        ),
    ] = False,
    metadata_file: Annotated[
        Path | None,
        typer.Option(
            "--metadata-file",
            metavar="PATH",
            help="With --shard: write the shard's result (factory.shard/v1) to PATH for "
            "`factory index merge`.",
        ),
    ] = None,
    no_build: Annotated[
        bool,
        typer.Option(
            "--no-build",
            help="Do not run the builder, build and validate stages: pack what `factory build` "
            "and `factory validate` left in dist/.",
        ),
    ] = False,
    rebuild: RecompileOption = False,
    _rebuild_deprecated: RecompileDeprecated = False,
    compilation_mode: CompilationModeOption = None,
    jobs: JobsOption = None,
) -> None:
    """Build, validate and assemble one FROM-scratch image per target and one index per image.

    Runs every stage that is not up to date: the builder image, the compile of each image x
    target (dist/bin), validation (dist/report.json), the OCI layouts (dist/oci); then --load
    and --push. Only binaries that passed validation are ever packed.
    """
    config = load_config()
    if registry is not None:
        config = with_registry(config, registry)
    images = config.select_images(image or [])
    targets = target_table.select(target) if target else None
    profile = parse_profile(compilation_mode or config.workspace.profile)
    out_dir = oci_layout if oci_layout is not None else Dist.of(config).oci
    if sign_key is not None and not push:
        raise UsageError("--sign-key signs what is pushed: add --push (or use `factory sign`).")
    check_shard_options(push=push, shard=shard, metadata_file=metadata_file, sign_key=sign_key)
    job = publishing.image_job(
        config,
        images,
        targets,
        profile=profile,
        out_dir=out_dir,
        tags=tag,
        skip_build=no_build,
        rebuild=rebuild,
        jobs=jobs,
        publish=publishing.PublishOptions(
            load=load, push=push, insecure=insecure, sbom=sbom, sign_key=sign_key, shard=shard
        ),
    )
    results = list(job.outcome.layouts)
    published = job.published
    shard_result = shards.of_layouts(results) if shard else None
    if shard_result is not None and metadata_file is not None:
        shard_result.write(metadata_file)
    if console.options().json:
        document = summary_json(
            results, list(published.loaded), list(published.pushed), list(published.attached)
        )
        document["stages"] = job.outcome.to_json()
        if shard_result is not None:
            document["shard"] = shard_result.to_json()
        console.result_json(document)
    else:
        show_summary(results, list(published.pushed), list(published.attached), shard=shard)


def check_shard_options(
    *, push: bool, shard: bool, metadata_file: Path | None, sign_key: Path | None
) -> None:
    if shard and not push:
        raise UsageError("--shard is a kind of push: add --push.")
    if metadata_file is not None and not shard:
        raise UsageError(
            "--metadata-file writes a shard's result: add --push --shard (a push without "
            "--shard prints its result with --json)."
        )
    if shard and sign_key is not None:
        raise UsageError(
            "A shard writes no index, so there is nothing to sign: pass --sign-key to "
            "`factory index merge`, which signs the merged index."
        )


def with_registry(config: cfg.Config, repository: str) -> cfg.Config:
    """`config` with every image going to `<repository>/<name>`."""
    if not cfg.REPOSITORY_RE.fullmatch(repository) or len(repository) > 255:
        raise UsageError(
            f"--registry {repository!r} is not a repository reference. Write host[:port]/path "
            "in lowercase, without a tag, e.g. 127.0.0.1:5000/factory."
        )
    return dataclasses.replace(
        config,
        registry=dataclasses.replace(config.registry, repository=repository),
        image=tuple(dataclasses.replace(i, repository=None) for i in config.image),
    )


def summary_json(
    results: list[LayoutResult],
    loaded: list[dockerload.LoadResult],
    pushed: list[PushResult],
    attached: list[Attached],
) -> dict[str, Any]:
    return {
        "schema": RESULT_SCHEMA,
        "images": [r.to_json() for r in results],
        "loaded": [item.to_json() for item in loaded],
        "pushed": [item.to_json() for item in pushed],
        "attached": [item.to_json() for item in attached],
    }


def show_summary(
    results: list[LayoutResult],
    pushed: list[PushResult],
    attached: list[Attached],
    *,
    shard: bool = False,
) -> None:
    rows = [
        [
            r.image,
            i.target.name,
            str(i.target.platform),
            _size(i.binary.size),
            _size(i.layer.size),
            i.manifest.digest,
        ]
        for r in results
        for i in r.images
    ]
    console.table(["image", "target", "platform", "binary", "layer", "manifest"], rows)
    for r in results:
        console.result(f"{r.image}: index {r.index.digest} in {r.path}")
        if shard:
            console.result(
                f"  a shard: no index tag pushed (`factory index merge` writes {r.tags[0]})"
            )
            continue
        for tag in r.tags:
            console.result(f"  {r.repository}:{tag}")
    for p in pushed:
        uploaded = f"{_size(p.bytes_uploaded)} uploaded" if p.bytes_uploaded else "nothing uploaded"
        written = (
            f"{p.manifests_written} manifest(s) or tag(s) written"
            if p.manifests_written
            else "nothing written"
        )
        console.result(f"pushed {p.repository} ({uploaded}, {written}):")
        for index in p.indexes:
            console.result(f"  {p.repository}:{index.tag} = {index.reference}")
    for a in attached:
        console.result(f"  {a.artifact_type} {a.digest} refers to {a.subject} ({a.via})")
