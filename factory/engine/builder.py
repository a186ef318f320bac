"""The builder image: resolve its base, build it with the engine's legacy builder, reuse it.

The image's tag is a content hash, ``factory-builder:<16 hex>``, of everything that decides its
contents: the Dockerfile, the files of its context directory (``<stem>/`` next to
``<stem>.Dockerfile``, e.g. ``dockerfiles/builder/``), the build arguments and the base image's
id (see factory.engine.images). Nothing changed: the image is reused and nothing runs. Something
changed: a new tag is built.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import docker
import docker.errors

from factory import resources
from factory.engine import images
from factory.engine.docker_engine import labels
from factory.util import console
from factory.util.console import Progress

REPOSITORY: Final = "factory-builder"
BASE_LABEL: Final = "org.factory.builder.base"
MESSAGES: Final = images.Messages(
    what="builder",
    hint="Read the output above; a failing apt-get usually means Debian's mirror is "
    "unreachable from containers. Fix it and run `factory builder`.",
    step_prefix="builder",
)
RUNTIMES_REPOSITORY: Final = "factory-runtimes"
RUNTIMES_MESSAGES: Final = images.Messages(
    what="runtimes",
    hint="Read the output above: the runtimes image fetches LLVM's sources from Debian's mirror "
    "(deb-src) and compiles libc++, libc++abi and libunwind for musl. Fix it and run "
    "`factory builder`.",
    step_prefix="runtimes",
)
_RUNTIMES_ARG: Final = re.compile(r"^\s*ARG\s+RUNTIMES\b", re.MULTILINE)
"""A builder Dockerfile that declares this build argument is given the runtimes image's tag."""
_FACTORY_BUILDER_ARG: Final = re.compile(r"^\s*ARG\s+FACTORY_BUILDER\b", re.MULTILINE)
"""A builder Dockerfile of one's own that declares this build argument is given the tag of
factory's own builder (built first when missing), to build on top of it."""


@dataclass(frozen=True, kw_only=True)
class BuilderImage:
    """A builder image in the engine and what its labels say about it."""

    tag: str
    id: str
    labels: Mapping[str, str]

    @classmethod
    def of(cls, found: images.Found) -> BuilderImage:
        return cls(tag=found.tag, id=found.id, labels=found.labels)

    def label(self, key: str) -> str:
        return self.labels.get(f"org.factory.{key}", "unknown")

    @property
    def summary(self) -> str:
        return (
            f"{self.tag}: LLVM {self.label('llvm')}, musl {self.label('musl')}, "
            f"Rust {self.label('rust')}, std {self.label('std')}"
        )


def ensure_builder(
    engine: docker.DockerClient,
    *,
    dockerfile: Path,
    base: str,
    rebuild: bool = False,
    progress: Progress = console.info,
    detail: Progress = console.detail,
) -> BuilderImage:
    """The builder image for this Dockerfile and base: reused if present, else built.

    ``rebuild`` builds it again without layer cache, under the same tag (the runtimes image it
    copies from is reused: it depends only on its own Dockerfile and the base).
    """
    args: dict[str, str] = {}
    if derives_from_factory(dockerfile):
        args["FACTORY_BUILDER"] = ensure_builder(
            engine,
            dockerfile=resources.dockerfile("builder"),
            base=base,
            progress=progress,
            detail=detail,
        ).tag
    if uses_runtimes(dockerfile):
        args["RUNTIMES"] = ensure_runtimes(engine, base=base, progress=progress, detail=detail).tag
    planned = images.identify(
        engine, dockerfile, repository=REPOSITORY, base=base, args=args, progress=progress
    )
    found = images.find(engine, planned.tag)
    if found is not None and not rebuild:
        reused = BuilderImage.of(found)
        progress(f"builder: reusing {reused.summary}")
        return reused
    progress(
        f"builder: building {planned.tag} from {planned.base} "
        "(takes several minutes the first time)"
    )
    built = BuilderImage.of(
        images.build(
            engine,
            planned.context,
            tag=planned.tag,
            buildargs=planned.buildargs,
            image_labels=labels(**{"builder.hash": planned.content, "builder.base": base}),
            messages=MESSAGES,
            rebuild=rebuild,
            progress=progress,
            detail=detail,
        )
    )
    progress(f"builder: built {built.summary}")
    return built


def _declares(dockerfile: Path, argument: re.Pattern[str]) -> bool:
    return dockerfile.is_file() and argument.search(dockerfile.read_text()) is not None


def derives_from_factory(dockerfile: Path) -> bool:
    """Whether a builder Dockerfile of one's own builds on factory's (ARG FACTORY_BUILDER)."""
    own = resources.dockerfile("builder").resolve()
    return dockerfile.resolve() != own and _declares(dockerfile, _FACTORY_BUILDER_ARG)


def uses_runtimes(dockerfile: Path) -> bool:
    """Whether a builder Dockerfile copies from the runtimes image (declares ARG RUNTIMES)."""
    return _declares(dockerfile, _RUNTIMES_ARG)


def ensure_runtimes(
    engine: docker.DockerClient,
    *,
    base: str,
    progress: Progress = console.info,
    detail: Progress = console.detail,
) -> images.Found:
    """The runtimes image (LLVM's libc++, libc++abi and libunwind compiled for musl, both
    architectures) on ``base``: reused if present, else built, once per base and Dockerfile."""
    planned = images.identify(
        engine,
        resources.dockerfile("runtimes"),
        repository=RUNTIMES_REPOSITORY,
        base=base,
        progress=progress,
    )
    found = images.find(engine, planned.tag)
    if found is not None:
        return found
    progress(
        f"runtimes: building {planned.tag}: libc++, libc++abi and libunwind for musl from "
        "LLVM's Debian sources (once per base; about 15 minutes on 2 cores)"
    )
    built = images.build(
        engine,
        planned.context,
        tag=planned.tag,
        buildargs=planned.buildargs,
        image_labels=labels(**{"runtimes.hash": planned.content, "runtimes.base": base}),
        messages=RUNTIMES_MESSAGES,
        progress=progress,
        detail=detail,
    )
    progress(f"runtimes: built {built.tag}")
    return built


def describe(image: BuilderImage) -> dict[str, str]:
    """The builder as a JSON object."""
    return {
        "tag": image.tag,
        "id": image.id,
        "llvm": image.label("llvm"),
        "musl": image.label("musl"),
        "rust": image.label("rust"),
        "std": image.label("std"),
        "base": image.labels.get(BASE_LABEL, "unknown"),
    }
