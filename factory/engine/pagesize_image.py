"""The page-size guest image: qemu-system-aarch64 and Debian's 16K-page arm64 kernel.

qemu-user runs every binary with the host's 4K pages; this image boots a real 16K-page kernel
instead. It is built from ``dockerfiles/pagesize.Dockerfile`` (and ``dockerfiles/pagesize/``,
the guest's ``/init`` in C) on the bootstrapped Debian base, tagged
``factory-pagesize:<content hash>``: built once per hash, then reused. What runs in it is
``factory.validate.pagesize``'s business; this module only knows the image and its paths.
"""

from __future__ import annotations

from typing import Final

import docker

from factory import resources
from factory.engine import images
from factory.engine.docker_engine import labels
from factory.util import console
from factory.util.console import Progress

DOCKERFILE: Final = resources.dockerfile("pagesize")
REPOSITORY: Final = "factory-pagesize"
ROLE: Final = "pagesize"
QEMU: Final = "qemu-system-aarch64"
KERNEL_16K: Final = "/opt/factory/pagesize/vmlinuz-16k"
"""Debian's linux-image-*-arm64-16k kernel, an uncompressed arm64 Image."""
INIT: Final = "/opt/factory/pagesize/init"
"""The guest's /init (AArch64, static, no C library), for the initramfs factory writes."""
MESSAGES: Final = images.Messages(
    what="page-size guest",
    hint="A failing apt-get usually means Debian's mirror is unreachable from containers; fix "
    "that and run `factory validate` again.",
    step_prefix="pagesize",
)


def ensure_image(engine: docker.DockerClient, *, base: str, log: Progress = console.info) -> str:
    """The guest image's tag: reused when present, else built on ``base`` (bootstrapped when
    it cannot be pulled)."""
    planned = images.identify(engine, DOCKERFILE, repository=REPOSITORY, base=base, progress=log)
    if images.find(engine, planned.tag) is not None:
        return planned.tag
    log(
        f"pagesize: building {planned.tag} from {planned.base} (qemu-system-arm and the "
        "16K-page arm64 kernel, once per hash)"
    )
    images.build(
        engine,
        planned.context,
        tag=planned.tag,
        buildargs=planned.buildargs,
        image_labels=labels(role=ROLE, **{"pagesize.hash": planned.content}),
        messages=MESSAGES,
        progress=console.detail,
        detail=console.detail,
    )
    return planned.tag
