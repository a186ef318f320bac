"""`factory clean`: remove what factory left in the engine, and say how much that freed.

Everything factory creates carries ``org.factory.managed=true``: builder containers (normally
removed at once; leftovers after a crash or `--debug`), the ``factory-cache`` volume (vendored
crates and per-target build directories), builder images and bootstrapped base images.
Bytes freed are measured, not estimated: the engine's disk usage before minus after.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors
import requests

from factory.engine.docker_engine import LABEL
from factory.errors import EngineError

_FILTER = {"label": f"{LABEL}=true"}


@dataclass(frozen=True, kw_only=True)
class CleanReport:
    containers: int
    volumes: int
    images: int
    bytes_freed: int
    skipped: tuple[str, ...] = ()
    """What was left, and why (a running factory elsewhere, an image in use)."""

    @property
    def summary(self) -> str:
        text = (
            f"removed {self.containers} container(s), {self.volumes} volume(s), "
            f"{self.images} image(s); freed {human_bytes(self.bytes_freed)}"
        )
        if self.skipped:
            text += f"; kept {len(self.skipped)} in use: " + "; ".join(self.skipped)
        return text

    def to_json(self) -> dict[str, object]:
        return {
            "containers": self.containers,
            "volumes": self.volumes,
            "images": self.images,
            "bytes_freed": self.bytes_freed,
            "skipped": list(self.skipped),
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


def clean(engine: docker.DockerClient, *, images: bool = True, force: bool = False) -> CleanReport:
    """Remove factory's containers, volumes and (if ``images``) images.

    Running containers (another factory command at work) are kept unless ``force``; what is
    still in use is kept and listed in the report instead of failing the whole clean.
    """
    skipped: list[str] = []
    removed = {"containers": 0, "volumes": 0, "images": 0}

    def attempt(kind: str, name: str, remove: Callable[..., object], **kwargs: object) -> None:
        try:
            remove(**kwargs)
        except (docker.errors.NotFound, docker.errors.ImageNotFound):
            return
        except docker.errors.APIError as exc:
            skipped.append(f"{kind} {name} ({exc.explanation or exc})")
            return
        removed[kind + "s"] += 1

    try:
        before = disk_usage(engine.df())
        for box in engine.containers.list(all=True, filters=_FILTER):
            if box.status == "running" and not force:
                skipped.append(f"container {box.name} (running; use --force)")
                continue
            attempt("container", str(box.name), box.remove, force=True)
        for volume in engine.volumes.list(filters=_FILTER):
            attempt("volume", str(volume.name), volume.remove)
        if images:
            # Newest first: a builder goes before the bootstrapped base it was built on.
            found = engine.images.list(filters=_FILTER)
            for image in sorted(found, key=lambda i: str(i.attrs.get("Created", "")), reverse=True):
                name = (image.tags or [str(image.id)])[0]
                attempt("image", name, engine.images.remove, image=image.id, force=True)
        after = disk_usage(engine.df())
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise EngineError(
            f"The engine failed during `factory clean`: {exc}.",
            hint="Check that the engine runs (docker info) and retry.",
        ) from exc
    return CleanReport(
        containers=removed["containers"],
        volumes=removed["volumes"],
        images=removed["images"],
        bytes_freed=max(before - after, 0),
        skipped=tuple(skipped),
    )
