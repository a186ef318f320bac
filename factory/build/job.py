"""What every driver shares: the request it is given, one Job per binary, what its containers
get from the host (the proxy variables, the cache volumes, the workspace at /src), and the
delivery of a compiled binary to dist/bin/<image>/<target>/<binary>.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Protocol

import docker

from factory.build.bazel_stage import DOCKERFILE as BAZEL_DOCKERFILE
from factory.build.binary import Binary
from factory.engine.builder import BuilderImage
from factory.engine.docker_engine import ExecResult, Mount
from factory.engine.transfer import directory_mount
from factory.errors import BuildError, UsageError
from factory.model.cache_config import CacheConfig
from factory.model.config import BazelConfig, ImageConfig, Profile
from factory.model.dist import Dist
from factory.model.targets import Target
from factory.util.console import Progress
from factory.util.meter import Meter

SRC: Final = "/src"
"""Where the workspace is mounted (read-only) in every driver's container."""

PROXY_VARIABLES: Final = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy",
                          "no_proxy")  # fmt: skip
"""The host's variables a container that downloads (cargo vendor, Bazel) is given."""


def proxy_environment(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The proxy variables of ``environ`` that are set, and nothing else."""
    return {name: environ[name] for name in PROXY_VARIABLES if name in environ}


CACHE_VARIABLE: Final = "FACTORY_CACHE_VOLUME"
"""Names the Cargo cache volume (and, with `-bazel` appended, Bazel's): several users or CI
jobs sharing one engine (a remote one above all) can each keep their own."""
_VOLUME_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]+")


@dataclass(frozen=True, kw_only=True)
class Cache:
    """A driver's cache: a named volume (created labelled org.factory.managed=true, so
    `factory clean` removes it) and where its containers mount it."""

    default: str
    """The volume's name when FACTORY_CACHE_VOLUME is not set."""
    suffix: str
    """Appended to FACTORY_CACHE_VOLUME's value."""
    path: str

    @property
    def volume(self) -> str:
        chosen = os.environ.get(CACHE_VARIABLE, "").strip()
        if not chosen:
            return self.default
        if not _VOLUME_NAME.fullmatch(chosen):
            raise UsageError(
                f"{CACHE_VARIABLE}={chosen!r} is not a volume name.",
                hint="Use letters, digits, `_`, `.` and `-`, starting with a letter or digit.",
            )
        return chosen + self.suffix

    def mount(self) -> Mount:
        return Mount(source=self.volume, target=self.path)


CARGO_CACHE: Final = Cache(default="factory-cache", suffix="", path="/cache")
"""Vendored crates (/cache/vendor) and one target directory per workspace x target x profile."""
BAZEL_CACHE: Final = Cache(default="factory-bazel-cache", suffix="-bazel", path="/cache/bazel")
"""Bazel's output bases, install base and repository cache."""


@contextmanager
def source_mount(
    engine: docker.DockerClient,
    image: str,
    workspace: Path,
    *,
    progress: Progress,
    keep: bool = False,
) -> Iterator[Mount]:
    """The workspace, read-only at /src, for the containers made inside the block: bind-mounted
    from this host, or uploaded to a remote engine (factory.engine.transfer; ``keep``: the
    uploaded volume stays, for factory --debug)."""
    with directory_mount(engine, image, workspace, SRC, progress=progress, keep=keep) as mount:
        yield mount


class Box(Protocol):
    """Where a driver's commands run: a builder container (factory.engine.Container) or a fake."""

    def run(
        self,
        argv: Sequence[str],
        *,
        environment: Mapping[str, str] | None = None,
        workdir: str | None = None,
        on_output: Progress | None = None,
        check: bool = True,
        what: str | None = None,
    ) -> ExecResult: ...

    def copy_out(self, path: str, destination: Path) -> Path: ...


@dataclass(frozen=True, kw_only=True)
class Job:
    """One binary of one image for one target, in one profile. A driver that needs more (a
    Cargo package, a Bazel label) holds a Job and adds its own fields."""

    image: str
    binary: str
    target: Target
    profile: Profile

    def destination(self, dist: Dist) -> Path:
        return dist.binary(self.image, self.target.name, self.binary)


@dataclass(frozen=True, kw_only=True)
class Request:
    """What a driver is asked for: every image x target of ``images`` compiled in ``workspace``
    with ``builder``, the binaries delivered to ``dist``. Progress lines go to ``progress``,
    the tools' own output (shown with -v) to ``detail``."""

    engine: docker.DockerClient
    builder: BuilderImage
    workspace: Path
    images: Sequence[ImageConfig]
    targets_of: Callable[[ImageConfig], Sequence[Target]]
    profile: Profile
    dist: Dist
    progress: Progress
    detail: Progress
    keep: bool = False
    """Leave the containers for inspection (factory --debug)."""
    bazel: BazelConfig = field(default_factory=BazelConfig)
    """images.toml's [bazel] (only the Bazel driver reads it)."""
    bazel_dockerfile: Path = BAZEL_DOCKERFILE
    """The Bazel stage's Dockerfile (only the Bazel driver reads it)."""
    parallel: int | None = None
    """Targets compiled at once (--jobs; None: factory.build.parallel.plan's default). The Cargo
    driver reads it; Bazel schedules its own actions."""
    meter: Meter | None = None
    """Where a compile's progress goes (units done of the total, the crate compiling now);
    None: plain lines through ``progress``."""
    cache: CacheConfig = field(default_factory=CacheConfig)
    """images.toml's [cache]: sccache for the Cargo driver (factory.build.compile_cache)."""

    def jobs(self) -> list[tuple[ImageConfig, Job]]:
        """Every image x target, in order, with the image it comes from."""
        return [
            (image, Job(image=image.name, binary=image.binary, target=t, profile=self.profile))
            for image in self.images
            for t in self.targets_of(image)
        ]


def owner(environ: Mapping[str, str] = os.environ) -> tuple[int, int] | None:
    """Whom outputs belong to when factory runs as root through sudo (else None: ourselves)."""
    if os.geteuid() != 0 or "SUDO_UID" not in environ:
        return None
    return int(environ["SUDO_UID"]), int(environ.get("SUDO_GID", environ["SUDO_UID"]))


def give_away(path: Path, stop: Path, who: tuple[int, int] | None) -> None:
    """Hand ``path`` and its parents up to ``stop`` to ``who`` (nothing when None)."""
    if who is None:
        return
    for item in (path, *path.parents):
        os.chown(item, *who)
        if item == stop:
            break


def deliver(box: Box, inside: str, job: Job, dist: Dist) -> Binary:
    """Copy the compiled file ``inside`` the container to the job's place in dist/bin, owned by
    the user who ran factory, and digest it."""
    destination = job.destination(dist)
    try:
        box.copy_out(inside, destination)
    except OSError as exc:
        raise BuildError(
            f"Could not write {destination}: {exc.strerror}.",
            hint="Free disk space on this host, or make the dist directory writable, and run "
            "`factory build` again.",
        ) from exc
    give_away(destination, dist.root, owner())
    return Binary.from_disk(
        destination, image=job.image, target=job.target.name, profile=job.profile
    )
