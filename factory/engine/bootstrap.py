"""Base image resolution, with a Debian bootstrap for air-gapped engines.

The builder's Dockerfile starts ``FROM`` a Debian base (default ``debian:trixie-slim``). On a
machine whose engine cannot pull, factory makes that base itself from Debian packages:

1. the reference is present in the engine: use it;
2. else try to pull it;
3. else run ``mmdebstrap --variant=minbase <suite> -`` (falling back to ``debootstrap
   --variant=minbase`` into a temporary directory, then ``tar``) and stream the root filesystem
   tarball into the engine's image import.

A bootstrapped image is tagged ``factory-bootstrap/<repository>:<tag>`` (for example
``factory-bootstrap/debian:trixie-slim``) and labelled ``org.factory.managed=true`` and
``org.factory.bootstrap=<tool>``, so ``factory clean`` can find it and nobody mistakes it for the
official image. The suite is the tag's first dash-separated word (``trixie-slim`` -> ``trixie``).
Without a mirror argument both tools use Debian's default mirror.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final, Literal

import docker
import docker.errors

from factory.engine.docker_engine import LABEL as MANAGED_LABEL
from factory.engine.docker_engine import image_names, named
from factory.errors import EngineError
from factory.util import console
from factory.util.console import Progress

BOOTSTRAP_NAMESPACE: Final = "factory-bootstrap"
BOOTSTRAP_LABEL: Final = "org.factory.bootstrap"

# Debian code names and aliases that mmdebstrap/debootstrap understand.
DEBIAN_SUITES: Final = frozenset(
    {
        "buster", "bullseye", "bookworm", "trixie", "forky", "duke", "sid",
        "oldoldstable", "oldstable", "stable", "testing", "unstable",
    }
)  # fmt: skip
_DEBIAN_REPOSITORIES: Final = frozenset({"debian", "library/debian", "docker.io/library/debian"})
_CHUNK: Final = 1 << 20

Tool = Literal["mmdebstrap", "debootstrap"]


class BootstrapError(EngineError):
    """The base image is missing and factory could not make it from Debian packages."""


@dataclass(frozen=True, kw_only=True)
class BaseRef:
    """A Debian base image reference, split into the parts the bootstrap needs."""

    reference: str
    repository: str
    tag: str
    suite: str

    @property
    def bootstrap_tag(self) -> str:
        """The tag factory gives an image it bootstrapped for this reference."""
        name = self.repository.rsplit("/", 1)[-1]
        return f"{BOOTSTRAP_NAMESPACE}/{name}:{self.tag}"


def parse_base(reference: str) -> BaseRef:
    """Split ``debian:trixie-slim`` into repository, tag and Debian suite.

    Raises BootstrapError when the reference names no Debian suite (factory can only make
    Debian bases itself).
    """
    ref = reference.strip()
    if "@" in ref:
        raise BootstrapError(
            f"The base image {reference!r} is pinned by digest, which factory cannot rebuild "
            "from Debian packages. Load that image into the engine first (docker load), or use "
            "a tag such as debian:trixie-slim."
        )
    repository, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        repository, tag = ref, "latest"
    suite = "stable" if tag == "latest" else tag.split("-", 1)[0]
    if repository not in _DEBIAN_REPOSITORIES or suite not in DEBIAN_SUITES:
        raise BootstrapError(
            f"The base image {reference!r} is not in the engine, cannot be pulled, and is not a "
            "Debian suite factory can bootstrap (expected debian:<suite>[-slim], e.g. "
            "debian:trixie-slim). Load the image into the engine (docker load), or pass "
            "--base debian:<suite>-slim."
        )
    return BaseRef(reference=ref, repository=repository, tag=tag, suite=suite)


def find_tool(which: Callable[[str], str | None] = shutil.which) -> Tool:
    """The bootstrap tool available on this host, mmdebstrap preferred."""
    if which("mmdebstrap"):
        return "mmdebstrap"
    if which("debootstrap") and which("tar"):
        return "debootstrap"
    raise BootstrapError(
        "The base image is not in the engine and cannot be pulled, and this host has neither "
        "mmdebstrap nor debootstrap to make it from Debian packages. Install one "
        "(apt-get install mmdebstrap), or load the base image into the engine (docker load)."
    )


def bootstrap_command(tool: Tool, suite: str, rootfs: Path | None = None) -> list[str]:
    """The command that writes a minbase root filesystem (to stdout for mmdebstrap)."""
    if tool == "mmdebstrap":
        return ["mmdebstrap", "--variant=minbase", "--quiet", suite, "-"]
    if rootfs is None:
        raise ValueError("debootstrap needs a target directory")
    return ["debootstrap", "--variant=minbase", suite, str(rootfs)]


def import_changes(base: BaseRef, tool: Tool) -> list[str]:
    """Dockerfile instructions applied to the imported root filesystem."""
    return [
        f"LABEL {MANAGED_LABEL}=true",
        f"LABEL {BOOTSTRAP_LABEL}={tool}",
        f"LABEL org.factory.bootstrap.suite={base.suite}",
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        'CMD ["/bin/bash"]',
    ]


def _image_exists(client: docker.DockerClient, reference: str) -> bool:
    try:
        image = client.images.get(reference)
    except docker.errors.ImageNotFound:
        return False
    return named(image_names(image), reference)


def _try_pull(client: docker.DockerClient, reference: str) -> bool:
    try:
        client.images.pull(reference)
    except docker.errors.DockerException:
        return False
    return True


def _chunks(stream: IO[bytes]) -> Iterator[bytes]:
    while chunk := stream.read(_CHUNK):
        yield chunk


def _stream_import(
    client: docker.DockerClient, base: BaseRef, tool: Tool, argv: list[str], cwd: Path | None
) -> None:
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=errors, cwd=cwd)
        assert proc.stdout is not None
        try:
            # The tag goes inside `repo` (the API allows it): Podman's import reads no `tag`
            # parameter and would name the image `<repository>:latest` (docs/remote-engines.md).
            client.api.import_image(
                src=_chunks(proc.stdout),
                repository=base.bootstrap_tag,
                changes=import_changes(base, tool),
                stream_src=True,
            )
        except docker.errors.DockerException as exc:
            proc.kill()
            proc.wait()
            raise BootstrapError(
                f"The engine refused the bootstrapped root filesystem of {base.reference}: "
                f"{exc}. Check free disk space of the engine (docker system df) and retry."
            ) from exc
        finally:
            proc.stdout.close()
        code = proc.wait()
        if code != 0:
            errors.seek(0)
            tail = errors.read().decode(errors="replace").strip()[-2000:]
            # An import of a truncated stream must not survive as if it were the base.
            with contextlib.suppress(docker.errors.DockerException):
                client.images.remove(base.bootstrap_tag, force=True)
            raise BootstrapError(
                f"{argv[0]} failed (exit {code}) while bootstrapping Debian {base.suite} for "
                f"{base.reference}:\n{tail}\nCheck that this host reaches Debian's mirror and "
                "has free disk space, then retry."
            )


def bootstrap(
    client: docker.DockerClient,
    base: BaseRef,
    *,
    tool: Tool | None = None,
    log: Progress = console.info,
) -> str:
    """Make ``base`` from Debian packages and import it; returns the new image's tag."""
    chosen = tool or find_tool()
    log(
        f"factory: {base.reference} is not in the engine and cannot be pulled; "
        f"bootstrapping Debian {base.suite} (minbase) with {chosen} as {base.bootstrap_tag}"
    )
    if chosen == "mmdebstrap":
        _stream_import(client, base, chosen, bootstrap_command(chosen, base.suite), None)
    else:
        with tempfile.TemporaryDirectory(prefix="factory-bootstrap-") as tmp:
            rootfs = Path(tmp) / "rootfs"
            done = subprocess.run(
                bootstrap_command(chosen, base.suite, rootfs),
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                raise BootstrapError(
                    f"debootstrap failed (exit {done.returncode}) for Debian {base.suite}:\n"
                    f"{done.stderr.strip()[-2000:]}\nCheck that this host reaches Debian's "
                    "mirror, runs as root and has free disk space, then retry."
                )
            _stream_import(client, base, chosen, ["tar", "-C", str(rootfs), "-c", "."], None)
    log(f"factory: bootstrapped {base.bootstrap_tag}")
    return base.bootstrap_tag


def resolve_base(
    client: docker.DockerClient,
    reference: str,
    *,
    pull: Callable[[docker.DockerClient, str], bool] = _try_pull,
    log: Progress = console.info,
) -> str:
    """The image reference to build ``FROM`` for ``reference``: local, pulled or bootstrapped."""
    if _image_exists(client, reference):
        return reference
    try:
        base: BaseRef | None = parse_base(reference)
    except BootstrapError as exc:
        base, not_debian = None, exc
    if base is not None and _image_exists(client, base.bootstrap_tag):
        log(f"factory: using {base.bootstrap_tag} (bootstrapped earlier) for {reference}")
        return base.bootstrap_tag
    if pull(client, reference):
        return reference
    if base is None:
        raise not_debian
    return bootstrap(client, base, log=log)


def main(argv: list[str] | None = None) -> int:
    """``python -m factory.bootstrap [REF]``: resolve a base and print the image to use."""
    from factory.engine.docker_engine import client
    from factory.errors import FactoryError

    args = sys.argv[1:] if argv is None else argv
    reference = args[0] if args else "debian:trixie-slim"
    try:
        console.result(resolve_base(client(), reference))
    except FactoryError as err:
        console.error(str(err))
        return int(err.exit_code)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
