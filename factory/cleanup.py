"""`factory clean`: remove what factory left in the engine, and say how much that freed.

Everything factory creates carries ``org.factory.managed=true``: builder containers (normally
removed at once; leftovers after a crash or `--debug`), the ``factory-cache`` volume (vendored
crates and per-target build directories), builder images and bootstrapped base images.
Bytes freed are measured, not estimated: the engine's disk usage before minus after.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors
import requests

from factory.engine import LABEL
from factory.errors import EngineError

_FILTER = {"label": f"{LABEL}=true"}


@dataclass(frozen=True, kw_only=True)
class CleanReport:
    containers: int
    volumes: int
    images: int
    bytes_freed: int

    @property
    def summary(self) -> str:
        return (
            f"removed {self.containers} container(s), {self.volumes} volume(s), "
            f"{self.images} image(s); freed {human_bytes(self.bytes_freed)}"
        )

    def to_json(self) -> dict[str, int]:
        return {
            "containers": self.containers,
            "volumes": self.volumes,
            "images": self.images,
            "bytes_freed": self.bytes_freed,
        }


def human_bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


def disk_usage(df: dict[str, Any]) -> int:
    """The engine's bytes in use: image layers, containers' writable layers, volumes."""
    layers = int(df.get("LayersSize") or 0)
    containers = sum(int(c.get("SizeRw") or 0) for c in df.get("Containers") or [])
    volumes = sum(
        max(int((v.get("UsageData") or {}).get("Size") or 0), 0) for v in df.get("Volumes") or []
    )
    return layers + containers + volumes


def clean(engine: docker.DockerClient, *, images: bool = True) -> CleanReport:
    """Remove factory's containers, volumes and (if ``images``) images."""
    try:
        before = disk_usage(engine.df())
        containers = engine.containers.list(all=True, filters=_FILTER)
        for box in containers:
            with contextlib.suppress(docker.errors.NotFound):
                box.remove(force=True)
        volumes = engine.volumes.list(filters=_FILTER)
        for volume in volumes:
            with contextlib.suppress(docker.errors.NotFound):
                volume.remove(force=True)
        removed_images = 0
        if images:
            for image in engine.images.list(filters=_FILTER):
                for tag in image.tags or [image.id]:
                    with contextlib.suppress(docker.errors.ImageNotFound):
                        engine.images.remove(tag, force=True)
                removed_images += 1
        after = disk_usage(engine.df())
    except docker.errors.APIError as exc:
        raise EngineError(
            f"The engine refused to remove factory's leftovers: {exc.explanation or exc}.",
            hint="A container outside factory may still use a factory image or volume; stop it "
            "and run `factory clean` again.",
        ) from None
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise EngineError(
            f"The engine failed during `factory clean`: {exc}.",
            hint="Check that the engine runs (docker info) and retry.",
        ) from None
    return CleanReport(
        containers=len(containers),
        volumes=len(volumes),
        images=removed_images,
        bytes_freed=max(before - after, 0),
    )
