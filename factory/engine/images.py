"""Images built from a Dockerfile: their context, content hash, tag, lookup and legacy build.

The builder, its Bazel stage and the local registry are each made from a Dockerfile in
``dockerfiles/`` (or the one images.toml names). The build context is that Dockerfile plus the
files of the folder beside it with the Dockerfile's stem (``dockerfiles/builder/`` for
``builder.Dockerfile``). The image's tag is ``<repository>:<16 hex>``, a hash of the context, the
build arguments and the id of the image it is built on, so an unchanged input reuses the image and
a changed one gets a new tag.

A build never leaves an untagged image behind: builds of one tag on this host wait for each other
(the second reuses what the first built), a failed or interrupted build removes the images its
finished steps committed, and a rebuild under the same tag removes the image it replaced (unless
a container still uses it).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import tarfile
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import docker
import docker.errors
import requests

from factory.engine.bootstrap import resolve_base
from factory.engine.docker_engine import image_names, named
from factory.errors import EngineError, UsageError
from factory.util import console, fsutil, meter
from factory.util.console import Progress
from factory.util.meter import Meter

_HASH_VERSION: Final = b"factory-builder/1\0"
_STEP_IMAGE: Final = re.compile(r"^ ?-{2,3}> ([0-9a-f]{11,64})$")
"""The line naming the image a step committed (or took from its cache): ` ---> <12 hex>` from
Docker's legacy builder, `--> <11 hex>` from Podman's (Buildah)."""
_STEP: Final = re.compile(r"^(?:\[\d+/\d+\] )?(?:Step|STEP) \d+/\d+ ?:")
"""A step's first line: `Step 3/9 : RUN ...` (Docker), `STEP 3/9: RUN ...` or, in a multi-stage
build, `[1/2] STEP 3/9: RUN ...` (Podman)."""
_TAIL_LINES: Final = 40


@dataclass(frozen=True, kw_only=True)
class BuildContext:
    """The files an image is made from, as (path in the context, mode, bytes)."""

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
class Found:
    """An image in the engine, found by its tag."""

    tag: str
    id: str
    labels: Mapping[str, str]


@dataclass(frozen=True, kw_only=True)
class Messages:
    """What a build says when it fails, for the kind of image it makes."""

    what: str
    """`builder`, `registry`, ...: the failure reads "Building the <what> image <tag> failed"."""
    hint: str
    """The fix when a step of the Dockerfile fails."""
    step_prefix: str
    """Each `Step n/m` line goes to progress as `<step_prefix>: Step n/m ...`."""


def load_context(dockerfile: Path) -> BuildContext:
    """Read the Dockerfile and its context directory (``<stem>/`` beside it, if any)."""
    if not dockerfile.is_file():
        raise UsageError(
            f"The builder Dockerfile {dockerfile} does not exist.",
            hint="Fix `[builder] dockerfile` in images.toml, or leave it out to use factory's "
            "own builder.",
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
    """An image's identity: context files, build arguments and the id of the image below it."""
    digest = hashlib.sha256(_HASH_VERSION)
    for name, mode, data in context.files:
        digest.update(f"file {name} {mode:o} {len(data)}\0".encode())
        digest.update(data)
    for key in sorted(buildargs):
        digest.update(f"arg {key}={buildargs[key]}\0".encode())
    digest.update(f"base {base_id}\0".encode())
    return digest.hexdigest()[:16]


def tag_for(repository: str, content: str) -> str:
    return f"{repository}:{content}"


@dataclass(frozen=True, kw_only=True)
class Identity:
    """What an image built from a Dockerfile on a base will be: its inputs and its tag."""

    context: BuildContext
    base: str
    """The base image's reference in the engine (bootstrapped when it could not be pulled)."""
    buildargs: Mapping[str, str]
    content: str
    tag: str


def identify(
    engine: docker.DockerClient,
    dockerfile: Path,
    *,
    repository: str,
    base: str,
    args: Mapping[str, str] | None = None,
    progress: Progress = console.info,
) -> Identity:
    """The identity of ``dockerfile`` (and its context) built ``FROM`` ``base`` with the build
    arguments ``args``: the base is resolved (or bootstrapped), and the tag is
    ``repository:<content hash>``."""
    context = load_context(dockerfile)
    base_ref = resolve_base(engine, base, log=progress)
    try:
        base_id = str(engine.images.get(base_ref).id)
    except docker.errors.DockerException as exc:
        raise EngineError(f"The base image {base_ref} vanished from the engine: {exc}.") from exc
    buildargs = {**(args or {}), "BASE": base_ref}
    content = content_hash(context, buildargs, base_id)
    return Identity(
        context=context,
        base=base_ref,
        buildargs=buildargs,
        content=content,
        tag=tag_for(repository, content),
    )


def find(engine: docker.DockerClient, tag: str) -> Found | None:
    """The image `tag` names in the engine, or None."""
    try:
        image = engine.images.get(tag)
    except docker.errors.ImageNotFound:
        return None
    if not named(image_names(image), tag):
        return None
    return Found(tag=tag, id=str(image.id), labels=dict(image.labels or {}))


def lock_path(tag: str) -> Path:
    """The file that builds of `tag` by this user on this host take turns on."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", tag)
    return Path(tempfile.gettempdir()) / f"factory-{os.getuid()}" / "images" / f"{name}.lock"


def build(
    engine: docker.DockerClient,
    context: BuildContext,
    *,
    tag: str,
    buildargs: Mapping[str, str],
    image_labels: Mapping[str, str],
    messages: Messages,
    rebuild: bool = False,
    progress: Progress = console.info,
    detail: Progress = console.detail,
) -> Found:
    """Build `context` as `tag` (legacy builder, no pull) and return the tagged image.

    Another build of `tag` on this host is waited for; then the image it made is used unless
    `rebuild` (which builds again without layer cache and removes the image it replaced).
    """
    with fsutil.exclusive(lock_path(tag), what=f"the image {tag}", wait_message=progress):
        replaced = find(engine, tag)
        if replaced is not None and not rebuild:
            return replaced
        committed = stream_build(
            engine,
            context,
            tag=tag,
            buildargs=buildargs,
            image_labels=image_labels,
            nocache=rebuild,
            messages=messages,
            progress=progress,
            detail=detail,
        )
        built = find(engine, tag)
        if built is None:
            raise EngineError(f"The engine reported success but has no image {tag}.")
        _remove_stages(engine, committed, built.id)
        if replaced is not None and replaced.id != built.id:
            _remove_replaced(engine, replaced, progress)
        return built


def stream_build(
    engine: docker.DockerClient,
    context: BuildContext,
    *,
    tag: str,
    buildargs: Mapping[str, str],
    image_labels: Mapping[str, str],
    nocache: bool,
    messages: Messages,
    progress: Progress,
    detail: Progress,
) -> list[str]:
    """One legacy build of `context` as `tag`, its steps streamed to `progress` and `detail`;
    the ids of the images its steps committed.

    When it fails or is interrupted, the images its finished steps committed are removed.
    """
    with meter.for_console(progress) as display:
        out = _Output(messages=messages, progress=progress, detail=detail, meter=display)
        request = dict(
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
        return _stream(engine, request, tag, out)


@dataclass(kw_only=True)
class _Output:
    """Where one image build's output goes: each step to progress, the rest to detail, and a
    line now and then (or a live display) while a long step runs."""

    messages: Messages
    progress: Progress
    detail: Progress
    meter: Meter
    committed: list[str] = field(default_factory=list)
    """The ids of the images the finished steps committed."""
    recent: list[str] = field(default_factory=list)
    lines: int = 0
    """Lines of output of the current step so far."""

    def __call__(self, line: str) -> None:
        self.recent.append(line)
        part = self.messages.step_prefix
        if step := _STEP_IMAGE.match(line):
            self.committed.append(step.group(1))
        if _STEP.match(line):
            more = "…" if len(line) > 110 else ""
            self.progress(f"{part}: {line[:110]}{more}")
            self.lines = 0
            self.meter.start(part, None, noun="lines of output", verb="last:")
        else:
            self.detail(line)
            self.lines += 1
            self.meter.advance(part, self.lines, line.strip()[:80])


def _stream(
    engine: docker.DockerClient, request: dict[str, Any], tag: str, out: _Output
) -> list[str]:
    committed, recent, messages = out.committed, out.recent, out.messages
    try:
        stream: Iterable[dict[str, Any]] = engine.api.build(**request)
        for chunk in stream:
            if "error" in chunk:
                raise EngineError(
                    f"Building the {messages.what} image {tag} failed: "
                    f"{str(chunk['error']).strip()}\n" + "\n".join(recent[-_TAIL_LINES:]),
                    hint=messages.hint,
                )
            for line in str(chunk.get("stream", "")).splitlines():
                if line.strip():
                    out(line)
    except (docker.errors.DockerException, requests.RequestException) as exc:
        _remove_unfinished(engine, committed)
        raise EngineError(
            f"The engine failed while building the {messages.what} image {tag}: {exc}.",
            hint="Check the engine (docker info) and its free disk space, then retry.",
        ) from exc
    except BaseException:
        _remove_unfinished(engine, committed)
        raise
    return committed


def _untagged(engine: docker.DockerClient, image_id: str) -> bool:
    try:
        return not engine.images.get(image_id).tags
    except (docker.errors.DockerException, requests.RequestException):
        return False


def _remove_unfinished(engine: docker.DockerClient, committed: list[str]) -> None:
    """Remove the last image a failed build committed, and with it its untagged parents.

    The engine keeps an image that is tagged, has children (another build's cache) or is used
    by a container; so does this: nothing here is forced.
    """
    if committed and _untagged(engine, committed[-1]):
        with contextlib.suppress(docker.errors.DockerException, requests.RequestException):
            engine.images.remove(committed[-1])


def _remove_stages(engine: docker.DockerClient, committed: list[str], built: str) -> None:
    """Remove what the earlier stages of a multi-stage build committed: the image is made of its
    last stage, and the legacy builder leaves the others behind untagged (a compiler's worth of
    disk for the runtimes image). Images of the last stage are its ancestors and stay."""
    try:
        ancestry = {str(layer.get("Id", "")) for layer in engine.api.history(built)}
    except (docker.errors.DockerException, requests.RequestException):
        return
    # Docker names ancestors `sha256:<hex>`, Podman `<hex>`; both `<missing>` for a layer
    # without an image of its own.
    kept = [a.removeprefix("sha256:") for a in ancestry if a != "<missing>"]
    for image_id in reversed(committed):
        ancestor = any(a.startswith(image_id) for a in kept)
        if not ancestor and _untagged(engine, image_id):
            with contextlib.suppress(docker.errors.DockerException, requests.RequestException):
                engine.images.remove(image_id)


def _remove_replaced(engine: docker.DockerClient, replaced: Found, progress: Progress) -> None:
    """After a rebuild: remove the image the tag named before, unless it is still in use."""
    if not _untagged(engine, replaced.id):
        return
    try:
        engine.images.remove(replaced.id)
    except docker.errors.APIError as exc:
        progress(
            f"kept {replaced.id[:19]}, the image {replaced.tag} named before this rebuild: "
            f"{exc.explanation or exc}; `docker rmi` it once nothing uses it"
        )
    except (docker.errors.DockerException, requests.RequestException):
        return
