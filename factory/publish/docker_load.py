"""`factory image --load`: put the host's image of a layout into the local Docker engine.

Docker 20.10 cannot load an OCI layout, so the chosen per-target image is rewritten as a
`docker save` archive (manifest.json, the config under its digest, the uncompressed layer) and
handed to the engine's image load. That goes through the engine's API, so a remote engine gets
it too: the image for the baseline of its architecture, as its CPU's features cannot be read from
this host. The config bytes are the layout's, so the loaded image's ID is the layout's config
digest.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors

from factory.distribution import media_types
from factory.engine import docker_engine as engine
from factory.engine import locality
from factory.errors import EngineError, UsageError
from factory.image import oci
from factory.image.assemble import LayoutResult, TargetImage
from factory.model.targets import Arch
from factory.validate.smoke import cpu_flags

# What engines report as their architecture (`docker info`, uname -m), per target architecture.
_MACHINES = {
    "x86_64": Arch.AMD64,
    "amd64": Arch.AMD64,
    "aarch64": Arch.ARM64,
    "arm64": Arch.ARM64,
}


@dataclass(frozen=True, kw_only=True)
class LoadResult:
    image: str
    target: str
    image_id: str
    references: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "target": self.target,
            "image_id": self.image_id,
            "references": list(self.references),
        }


def host_arch(machine: str) -> Arch:
    try:
        return _MACHINES[machine.lower()]
    except KeyError as err:
        raise UsageError(
            f"The Docker engine runs on {machine!r}, which is neither x86-64 nor AArch64: "
            "there is no image to load for it. Push the index instead (--push)."
        ) from err


def choose(images: Sequence[TargetImage], arch: Arch, flags: Iterable[str]) -> TargetImage:
    """The image to run on this host: the baseline of its architecture, else the highest
    variant whose features the host has."""
    have = set(flags)
    candidates = [i for i in images if i.target.arch is arch]
    for candidate in candidates:
        if candidate.target.is_baseline:
            return candidate
    runnable = [i for i in candidates if set(i.target.host_features) <= have]
    if not runnable:
        built = ", ".join(i.target.name for i in images) or "none"
        raise UsageError(
            f"No image in the layout runs on this {arch.value} host (targets: {built}). "
            f"Add the `{arch.value}` target (`-t {arch.value}`) and assemble again."
        )
    return runnable[-1]


def _cpuinfo() -> str:
    """This host's /proc/cpuinfo; nothing for a remote engine, whose CPU this host cannot see
    (then the baseline of the engine's architecture is loaded)."""
    if locality.locality().remote:
        return ""
    return Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")


def docker_archive(layout: Path, image: TargetImage, references: Sequence[str]) -> bytes:
    """A `docker save` archive of one per-target image of a layout."""
    config = oci.read_blob(layout, image.config.digest)
    layer = gzip.decompress(oci.read_blob(layout, image.layer.digest))
    config_name = image.config.digest.removeprefix("sha256:") + ".json"
    layer_name = media_types.sha256_digest(layer).removeprefix("sha256:") + "/layer.tar"
    manifest = [{"Config": config_name, "RepoTags": list(references), "Layers": [layer_name]}]
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in (
            (config_name, config),
            (layer_name, layer),
            ("manifest.json", json.dumps(manifest).encode()),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def load(
    result: LayoutResult, *, repository: str | None = None, cpuinfo: str | None = None
) -> LoadResult:
    """Load the host's image of `result` into the engine, tagged `<repository>:<tag>` and
    `<repository>:<tag>-<target>` for each tag (`repository`: the layout's by default)."""
    repository = repository or result.repository
    client = engine.client()
    arch = host_arch(str(client.info().get("Architecture", "")))
    if cpuinfo is None:
        cpuinfo = _cpuinfo()
    chosen = choose(result.images, arch, cpu_flags(cpuinfo))
    references = tuple(
        ref
        for tag in result.tags
        for ref in (
            f"{repository}:{tag}",
            f"{repository}:{tag}-{chosen.target.tag_suffix}",
        )
    )
    archive = docker_archive(result.path, chosen, references)
    refused = f"The Docker engine refused the image of {result.image} ({chosen.target.name})"
    try:
        # Not docker-py's images.load: it looks up each name of a `Loaded image:` line, and
        # Podman writes all names on one line, comma-separated (docs/remote-engines.md).
        for chunk in client.api.load_image(archive):
            if "error" in chunk:
                raise EngineError(f"{refused}: {chunk['error']}.")
        client.images.get(chosen.config.digest)
    except docker.errors.DockerException as err:
        explanation = getattr(err, "explanation", None) or err
        raise EngineError(
            f"{refused}: {explanation}. Check `docker info` and the engine's log."
        ) from err
    return LoadResult(
        image=result.image,
        target=chosen.target.name,
        image_id=chosen.config.digest,
        references=references,
    )
