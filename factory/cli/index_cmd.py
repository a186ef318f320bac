"""`factory index merge [RESULT]...`: one image index from what several shards pushed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from factory.cli.app import app, load_config
from factory.cli.image_cmd import with_registry
from factory.cli.options import (
    ImageOption,
    InsecureOption,
    RegistryOption,
    SbomOption,
    SignKeyOption,
    TagOption,
)
from factory.model import targets as target_table
from factory.pipeline import publishing
from factory.util import console

RESULT_SCHEMA = "factory.merge/v1"

index_app = typer.Typer(
    name="index",
    help="Image indexes: merge what shards pushed (`factory image --push --shard`) into one.",
    short_help="Merge what shards pushed into one multi-arch index.",
    no_args_is_help=True,
)
app.add_typer(index_app)


@index_app.command(
    "merge", short_help="Make each image's index from what its shards pushed; tags last."
)
def merge_command(
    results: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="[RESULT]...",
            help="Shard result files (`factory image --push --shard --metadata-file PATH`); "
            "targets they do not list are taken from the registry's per-target tags.",
            show_default=False,
        ),
    ] = None,
    expect: Annotated[
        list[str] | None,
        typer.Option(
            "--expect",
            metavar="TARGET",
            help="The targets the index must list: names, `all`, globs or OCI platforms "
            "(repeatable; default: each image's targets in images.toml).",
            show_default=False,
        ),
    ] = None,
    image: ImageOption = None,
    tag: TagOption = None,
    registry: RegistryOption = None,
    insecure: InsecureOption = False,
    sbom: SbomOption = True,
    sign_key: SignKeyOption = None,
) -> None:
    """Make each image's index from the per-target manifests the shards pushed and write its
    tags last: refuses (exit 8, nothing written) a missing target, a platform twice, a
    manifest whose config is another platform's, and shards of another revision, Cargo.lock
    or builder."""
    config = load_config()
    if registry is not None:
        config = with_registry(config, registry)
    job = publishing.merge_job(
        config,
        config.select_images(image or []),
        results=results or [],
        expect=target_table.select(expect) if expect else None,
        tags=tag,
        publish=publishing.PublishOptions(
            push=True, insecure=insecure, sbom=sbom, sign_key=sign_key
        ),
    )
    if console.options().json:
        console.result_json(summary_json(job))
        return
    for merged in job.merged:
        layout = merged.layout
        rows = [
            [e.chosen.target.name, str(e.chosen.target.platform), e.chosen.digest, e.chosen.source]
            for e in merged.entries
        ]
        console.table(["target", "platform", "manifest", "from"], rows)
        name = layout.repository
        for tag_name in layout.tags:
            console.result(f"{name}:{tag_name} = {name}@{layout.index.digest}")
    for a in job.published.attached:
        console.result(f"  {a.artifact_type} {a.digest} refers to {a.subject} ({a.via})")


def summary_json(job: publishing.MergeResult) -> dict[str, Any]:
    return {
        "schema": RESULT_SCHEMA,
        "images": [m.to_json() for m in job.merged],
        "pushed": [p.to_json() for p in job.published.pushed],
        "attached": [a.to_json() for a in job.published.attached],
    }
