"""The tools no one here wrote that the tests run, from an image: nothing installed on the host.

skopeo, umoci and oci-image-tool read factory's OCI layouts and registries, gcc (glibc) and
musl-gcc compile the ELF fixtures, openssl makes test certificates. They come from
``tests/test-tools.Dockerfile``, built FROM the bootstrapped Debian base through factory's own
image machinery (``factory.engine.images``) as ``factory-test-tools:<content hash>``, labelled like
factory's other images: built once per hash, then reused.

`Tools.run` runs one command in a fresh container as the invoking user, on the host's network (so
``127.0.0.1:<port>`` is the host's registry), with host directories mounted at their own paths
(read-only unless asked otherwise), so a command names host paths as they are. `Tools.compile_c`
compiles a C program in it, once per (source, compiler, flags) in a session, and copies the
result where the test wants it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shlex
import shutil
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import docker
import docker.errors
import requests

from factory.engine import docker_engine as engine
from factory.engine import images
from factory.model.config import DEFAULT_BASE
from factory.util import console

DOCKERFILE: Final = Path(__file__).with_name("test-tools.Dockerfile")
REPOSITORY: Final = "factory-test-tools"
ROLE: Final = "test-tools"
MESSAGES: Final = images.Messages(
    what="test-tools",
    hint="A failing apt-get usually means Debian's mirror is unreachable from containers; fix "
    "that and run the tests again.",
    step_prefix="test-tools",
)
TIMEOUT: Final = 600.0

HELLO: Final = r"""
#include <stdio.h>
int main(int argc, char **argv) { printf("hello from %d args\n", argc - 1); return 0; }
"""
VECTOR: Final = r"""
#include <stdio.h>
float a[4096], b[4096];
int main(int argc, char **argv) {
    float s = 0;
    for (int i = 0; i < 4096; i++) { a[i] = (float)(i * argc); b[i] = (float)i; }
    for (int i = 0; i < 4096; i++) s += a[i] * b[i];
    printf("%f\n", s);
    return 0;
}
"""
"""A loop that GCC vectorises: AVX2 at -march=x86-64-v3, AVX-512 at x86-64-v4."""


@dataclass(frozen=True, kw_only=True)
class Ran:
    """What one command in the tools image did."""

    argv: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str


def ensure_image(client: docker.DockerClient) -> str:
    """The test-tools image's tag: reused when present, else built on the bootstrapped base."""
    planned = images.identify(client, DOCKERFILE, repository=REPOSITORY, base=DEFAULT_BASE)
    if images.find(client, planned.tag) is None:
        console.info(f"test-tools: building {planned.tag} from {planned.base} (once per hash)")
        images.build(
            client,
            planned.context,
            tag=planned.tag,
            buildargs=planned.buildargs,
            image_labels=engine.labels(
                role=ROLE, **{"test-tools.hash": planned.content, "test-tools.base": DEFAULT_BASE}
            ),
            messages=MESSAGES,
            progress=console.detail,
            detail=console.detail,
        )
    return planned.tag


def _mounts(read_only: Iterable[Path], writable: Iterable[Path]) -> list[docker.types.Mount]:
    def mount(path: Path, *, read_only: bool) -> docker.types.Mount:
        where = str(path.resolve())
        return docker.types.Mount(target=where, source=where, type="bind", read_only=read_only)

    return [mount(p, read_only=True) for p in read_only] + [
        mount(p, read_only=False) for p in writable
    ]


@dataclass(frozen=True, kw_only=True)
class Tools:
    """Commands in the test-tools image, and C programs compiled there."""

    client: docker.DockerClient
    image: str
    compiled: Path
    """Where compiled programs are kept for the session, one directory per input hash."""

    def run(
        self,
        *argv: str,
        read_only: Sequence[Path] = (),
        writable: Sequence[Path] = (),
        workdir: Path | None = None,
        timeout: float = TIMEOUT,
        check: bool = True,
    ) -> Ran:
        """Run `argv` with the given host directories mounted at their own paths.

        With `check`, a non-zero exit fails the test, showing the command's output.
        """
        name = f"factory-test-tools-{engine.SESSION_ID}-{uuid.uuid4().hex[:6]}"
        container = self.client.containers.create(
            self.image,
            command=list(argv),
            name=name,
            user=f"{os.getuid()}:{os.getgid()}",
            labels=engine.labels(
                session=engine.SESSION_ID, purpose=ROLE, host=engine.HOST, pid=str(os.getpid())
            ),
            mounts=_mounts(read_only, writable),
            network_mode="host",
            working_dir=str(workdir.resolve()) if workdir else "/tmp",
        )
        try:
            container.start()
            try:
                code = int(container.wait(timeout=timeout)["StatusCode"])
            except (requests.exceptions.Timeout, requests.exceptions.ConnectionError) as err:
                raise AssertionError(
                    f"`{shlex.join(argv)}` in the test-tools image ran over {timeout:.0f} s"
                ) from err
            out = bytes(container.logs(stdout=True, stderr=False)).decode(errors="replace")
            err_text = bytes(container.logs(stdout=False, stderr=True)).decode(errors="replace")
        finally:
            with contextlib.suppress(docker.errors.DockerException, requests.RequestException):
                container.remove(force=True)
        assert code == 0 or not check, (
            f"`{shlex.join(argv)}` in the test-tools image failed ({code}):\n{out}\n{err_text}"
        )
        return Ran(argv=argv, exit_code=code, stdout=out, stderr=err_text)

    def compile_c(self, out: Path, source: str, *, cc: str, flags: Sequence[str]) -> Path:
        """`source` compiled by `cc` (gcc or musl-gcc) with `flags`, copied to `out`."""
        key = hashlib.sha256(f"{cc}\0{shlex.join(flags)}\0{source}".encode()).hexdigest()[:16]
        made = self.compiled / key / "program"
        if not made.exists():
            work = made.parent
            work.mkdir(parents=True, exist_ok=True)
            (work / "program.c").write_text(source)
            self.run(
                cc, *flags, "program.c", "-o", "program.partial", writable=[work], workdir=work
            )
            (work / "program.partial").replace(made)
        shutil.copy2(made, out)
        return out
