"""The builder's Bazel stage: the builder image plus bazelisk and the Bazel of .bazelversion.

Built from dockerfiles/bazel.Dockerfile only when the Bazel driver runs, tagged
``factory-builder-bazel:<16 hex>`` by a content hash of that Dockerfile, the builder image's id
and the Bazel version, and reused while none of them changes. When bazelisk or Bazel cannot be
obtained (no route to the Go module proxy or to Bazel's release server, as on machines without
internet), building the stage fails and this says so in one EngineError.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Final

import docker

from factory import resources
from factory.engine import images
from factory.engine.builder import BuilderImage
from factory.engine.docker_engine import labels
from factory.errors import EngineError
from factory.util import console
from factory.util.console import Progress

REPOSITORY: Final = "factory-builder-bazel"
DOCKERFILE: Final = resources.dockerfile("bazel")
MESSAGES: Final = images.Messages(
    what="Bazel stage",
    hint="Read the output above (-v shows all of it), fix it and run the build again.",
    step_prefix="bazel",
)


PASSED_THROUGH: Final = ("GOPROXY", "BAZELISK_BASE_URL")
"""Host variables that become build arguments: a Go module proxy and a Bazel release mirror."""


def build_arguments(
    builder: BuilderImage, bazel_version: str, environ: Mapping[str, str] = os.environ
) -> dict[str, str]:
    args = {"BUILDER": builder.tag, "USE_BAZEL_VERSION": bazel_version}
    args.update({name: environ[name] for name in PASSED_THROUGH if environ.get(name)})
    return args


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def failure_reason(log: str) -> str:
    """The stage's own diagnosis (`bazel stage: ...`) and the tool's error lines, else the log."""
    lines = [_ANSI.sub("", line).strip() for line in log.splitlines()]
    ours = [line.removeprefix("bazel stage: ") for line in lines if line.startswith("bazel stage:")]
    tools = [line for line in lines if line.startswith(("go: ", "bazelisk: ", "could not "))]
    found = [*ours, *tools]
    return "; ".join(dict.fromkeys(found)) if found else log.strip()[-2000:]


def ensure_bazel_stage(
    engine: docker.DockerClient,
    builder: BuilderImage,
    *,
    bazel_version: str,
    dockerfile: Path = DOCKERFILE,
    progress: Progress = console.info,
    detail: Progress = console.detail,
    environ: Mapping[str, str] = os.environ,
) -> BuilderImage:
    """The Bazel stage for this builder and Bazel version: reused if present, else built."""
    context = images.load_context(dockerfile)
    args = build_arguments(builder, bazel_version, environ)
    content = images.content_hash(context, args, builder.id)
    tag = images.tag_for(REPOSITORY, content)
    found = images.find(engine, tag)
    if found is not None:
        reused = BuilderImage.of(found)
        progress(f"bazel: reusing {tag} (Bazel {reused.label('bazel')})")
        return reused
    progress(f"bazel: building {tag}: {builder.tag} + bazelisk + Bazel {bazel_version}")
    try:
        built = images.build(
            engine,
            context,
            tag=tag,
            buildargs=args,
            image_labels=labels(**{"builder.hash": content, "builder.base": builder.tag}),
            messages=MESSAGES,
            progress=progress,
            detail=detail,
        )
    except EngineError as err:
        raise EngineError(
            f"Bazel {bazel_version} could not be obtained: building the Bazel stage "
            f"({dockerfile.name}) on {builder.tag} failed: {failure_reason(err.message)}",
            hint="The stage builds bazelisk with `go install` (it needs the Go module proxy, "
            "or --build-arg GOPROXY) and bazelisk downloads Bazel (it needs Bazel's release "
            "server, or BAZELISK_BASE_URL). On a machine without internet neither works: use "
            'driver = "cargo" there (see docs/bazel.md). -v shows the whole build log.',
        ) from err
    return BuilderImage.of(built)
