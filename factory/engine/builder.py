"""The builder image: resolve its base, build it with the engine's legacy builder, reuse it.

The image's tag is a content hash, ``factory-builder:<16 hex>``, of everything that decides its
contents: the Dockerfile, the files of its context directory (``<stem>/`` next to
``<stem>.Dockerfile``, e.g. ``dockerfiles/builder/``), the build arguments and the base image's
id. Nothing changed: the image is reused and nothing runs. Something changed: a new tag is built.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import docker
import docker.errors
import requests

from factory.engine.bootstrap import resolve_base
from factory.engine.docker_engine import LABEL, labels
from factory.errors import EngineError, UsageError
from factory.util import console

REPOSITORY: Final = "factory-builder"
HASH_LABEL: Final = "org.factory.builder.hash"
BASE_LABEL: Final = "org.factory.builder.base"
_HASH_VERSION: Final = b"factory-builder/1\0"

Sink = Callable[[str], None]


@dataclass(frozen=True, kw_only=True)
class BuildContext:
    """The files the builder image is made from, as (path in the context, mode, bytes)."""

    dockerfile: str
    files: tuple[tuple[str, int, bytes], ...]

    def tar(self) -> io.BytesIO:
        """The context as a deterministic tar stream."""
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
            for name, mode, data in self.files:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mode = mode
                info.mtime = 0
                archive.addfile(info, io.BytesIO(data))
        buffer.seek(0)
        return buffer


@dataclass(frozen=True, kw_only=True)
class BuilderImage:
    """A builder image in the engine and what its labels say about it."""

    tag: str
    id: str
    labels: Mapping[str, str]

    def label(self, key: str) -> str:
        return self.labels.get(f"org.factory.{key}", "unknown")

    @property
    def summary(self) -> str:
        return (
            f"{self.tag}: LLVM {self.label('llvm')}, musl {self.label('musl')}, "
            f"Rust {self.label('rust')}, std {self.label('std')}"
        )


def load_context(dockerfile: Path) -> BuildContext:
    """Read the Dockerfile and its context directory (``<stem>/`` beside it, if any)."""
    if not dockerfile.is_file():
        raise UsageError(
            f"The builder Dockerfile {dockerfile} does not exist.",
            hint="Fix [builder] dockerfile in images.toml, or restore the file from git.",
        )
    files: list[tuple[str, int, bytes]] = [(dockerfile.name, 0o644, dockerfile.read_bytes())]
    directory = dockerfile.with_name(dockerfile.name.removesuffix(".Dockerfile"))
    if directory.is_dir() and directory != dockerfile.parent:
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
            rel = f"{directory.name}/{path.relative_to(directory).as_posix()}"
            files.append((rel, mode, path.read_bytes()))
    return BuildContext(dockerfile=dockerfile.name, files=tuple(files))


def content_hash(context: BuildContext, buildargs: Mapping[str, str], base_id: str) -> str:
    """The builder's identity: context files, build arguments and the base image's id."""
    digest = hashlib.sha256(_HASH_VERSION)
    for name, mode, data in context.files:
        digest.update(f"file {name} {mode:o} {len(data)}\0".encode())
        digest.update(data)
    for key in sorted(buildargs):
        digest.update(f"arg {key}={buildargs[key]}\0".encode())
    digest.update(f"base {base_id}\0".encode())
    return digest.hexdigest()[:16]


def tag_for(content: str) -> str:
    return f"{REPOSITORY}:{content}"


def find_image(engine: docker.DockerClient, tag: str) -> BuilderImage | None:
    try:
        image = engine.images.get(tag)
    except docker.errors.ImageNotFound:
        return None
    return BuilderImage(tag=tag, id=str(image.id), labels=dict(image.labels or {}))


def stream_build(
    engine: docker.DockerClient,
    context: BuildContext,
    *,
    tag: str,
    buildargs: Mapping[str, str],
    image_labels: Mapping[str, str],
    nocache: bool,
    progress: Sink,
    detail: Sink,
) -> None:
    recent: list[str] = []
    try:
        stream: Iterable[dict[str, Any]] = engine.api.build(
            fileobj=context.tar(),
            custom_context=True,
            dockerfile=context.dockerfile,
            tag=tag,
            buildargs=dict(buildargs),
            labels=dict(image_labels),
            nocache=nocache,
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
        )
        for chunk in stream:
            if "error" in chunk:
                raise EngineError(
                    f"Building the builder image {tag} failed: {chunk['error'].strip()}\n"
                    + "\n".join(recent[-40:]),
                    hint="Read the output above; a failing apt-get usually means Debian's "
                    "mirror is unreachable from containers. Fix it and run `factory builder`.",
                )
            for line in str(chunk.get("stream", "")).splitlines():
                if not line.strip():
                    continue
                recent.append(line)
                if line.startswith("Step "):
                    progress(f"builder: {line[:110]}{'…' if len(line) > 110 else ''}")
                else:
                    detail(line)
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise EngineError(
            f"The engine failed while building the builder image {tag}: {exc}.",
            hint="Check the engine (docker info) and its free disk space, then retry.",
        ) from None


def ensure_builder(
    engine: docker.DockerClient,
    *,
    dockerfile: Path,
    base: str,
    rebuild: bool = False,
    progress: Sink = console.info,
    detail: Sink = console.detail,
) -> BuilderImage:
    """The builder image for this Dockerfile and base: reused if present, else built."""
    context = load_context(dockerfile)
    base_ref = resolve_base(engine, base, log=progress)
    try:
        base_id = str(engine.images.get(base_ref).id)
    except docker.errors.DockerException as exc:
        raise EngineError(f"The base image {base_ref} vanished from the engine: {exc}.") from None
    buildargs = {"BASE": base_ref}
    content = content_hash(context, buildargs, base_id)
    tag = tag_for(content)
    found = find_image(engine, tag)
    if found is not None and not rebuild:
        progress(f"builder: reusing {found.summary}")
        return found
    progress(f"builder: building {tag} from {base_ref} (takes several minutes the first time)")
    stream_build(
        engine,
        context,
        tag=tag,
        buildargs=buildargs,
        image_labels=labels(**{"builder.hash": content, "builder.base": base}),
        nocache=rebuild,
        progress=progress,
        detail=detail,
    )
    built = find_image(engine, tag)
    if built is None:
        raise EngineError(f"The engine reported success but has no image {tag}.")
    progress(f"builder: built {built.summary}")
    return built


def managed_images(engine: docker.DockerClient) -> list[Any]:
    """Every image that carries factory's label."""
    return list(engine.images.list(filters={"label": f"{LABEL}=true"}))


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


def dumps(image: BuilderImage) -> str:
    return json.dumps(describe(image))
