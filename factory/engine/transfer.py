"""Host directories into containers, on an engine on this host or a remote one.

On this host a directory is bind-mounted (nothing is copied). With a remote engine
(factory.engine.locality) a bind mount would name a path of the engine's host, so the files go
through the engine's API instead: a tar archive built here (the workspace's files as
factory.util.upload_set chooses them, modes and modification times kept so that Cargo's
fingerprints see unchanged sources as fresh) is unpacked with ``put_archive`` into a fresh named
volume, through a container that is created and never started; the containers of the run then
mount that volume read-only, and it is removed when the run ends. Outputs come back with
``get_archive`` (factory.engine.docker_engine.Container.copy_out) in both cases.
"""

from __future__ import annotations

import contextlib
import io
import tarfile
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

import docker
import docker.errors
import requests

from factory.engine import locality
from factory.engine.docker_engine import SESSION_ID, Container, Mount, labels
from factory.errors import EngineError, UsageError
from factory.util import upload_set
from factory.util.console import Progress


@dataclass(frozen=True, kw_only=True)
class Upload:
    """What went to the engine: how many files, how many bytes of tar, in how long."""

    volume: str
    files: int
    size: int
    seconds: float

    def describe(self) -> str:
        return (
            f"{self.files} files, {self.size / 1024:.0f} KiB of tar into volume {self.volume} "
            f"in {self.seconds:.2f} s"
        )


def _add(tar: tarfile.TarFile, source: Path, name: PurePosixPath) -> bool:
    """Add one file, link or FIFO; False for what tar cannot hold (a socket)."""
    info = tar.gettarinfo(str(source), arcname=name.as_posix())
    if info is None:
        return False
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if info.isreg():
        with source.open("rb") as data:
            tar.addfile(info, data)
    else:
        tar.addfile(info)
    return True


def write_archive(top: Path, paths: Iterable[PurePosixPath], sink: IO[bytes]) -> int:
    """A tar of ``paths`` (relative to ``top``) written to ``sink``: owner root, modes and
    modification times as on disk. Returns how many entries it holds."""
    count = 0
    with tarfile.open(fileobj=sink, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for relative in paths:
            count += _add(tar, top / relative, relative)
    return count


def copy_file_in(box: Container, source: Path, inside: PurePosixPath) -> None:
    """One host file to the absolute path ``inside`` of a running container (its parent
    directories made), mode and modification time kept."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, source, inside.relative_to("/"))
    box.copy_in("/", buffer.getvalue())


def upload(engine: docker.DockerClient, image: str, volume: str, top: Path) -> Upload:
    """The files of ``top`` (factory.util.upload_set) into a new volume ``volume``."""
    started = time.monotonic()
    holder: Any = None
    try:
        with tempfile.TemporaryFile(prefix="factory-upload-") as spool:
            count = write_archive(top, upload_set.files(top), spool)
            size = spool.tell()
            spool.seek(0)
            engine.volumes.create(name=volume, labels=labels(role="upload"))
            holder = engine.containers.create(
                image,
                command=["true"],
                entrypoint=[],
                labels=labels(session=SESSION_ID, purpose="upload"),
                mounts=[docker.types.Mount(target="/upload", source=volume, type="volume")],
                network_mode="none",
            )
            holder.put_archive("/upload", spool)
    except OSError as exc:
        raise UsageError(
            f"Could not read {exc.filename or top} to upload it to the engine: {exc.strerror}.",
            hint="Make it readable, or leave it out with .dockerignore (docs/remote-engines.md).",
        ) from exc
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise EngineError(
            f"Uploading {top} to the engine failed: {getattr(exc, 'explanation', None) or exc}.",
            hint="Check that the engine answers (docker info) and has free disk space, then retry.",
        ) from exc
    finally:
        if holder is not None:
            with contextlib.suppress(docker.errors.DockerException, requests.RequestException):
                holder.remove(force=True)
    return Upload(volume=volume, files=count, size=size, seconds=time.monotonic() - started)


@contextmanager
def directory_mount(
    engine: docker.DockerClient,
    image: str,
    top: Path,
    target: str,
    *,
    progress: Progress,
    keep: bool = False,
) -> Iterator[Mount]:
    """``top`` read-only at ``target`` for the containers made inside the block: a bind mount
    on this host, an uploaded volume on a remote engine (removed at the end unless ``keep``).
    ``image`` is any image in the engine (the upload creates, never starts, one container)."""
    if not locality.locality().remote:
        yield Mount(source=str(top), target=target, read_only=True, bind=True)
        return
    volume = f"factory-upload-{SESSION_ID}-{uuid.uuid4().hex[:6]}"
    try:
        done = upload(engine, image, volume, top)
        progress(f"engine: remote; uploaded {top.name}: {done.describe()}")
        yield Mount(source=volume, target=target, read_only=True)
    finally:
        if not keep:
            with contextlib.suppress(docker.errors.DockerException, requests.RequestException):
                engine.volumes.get(volume).remove(force=True)
