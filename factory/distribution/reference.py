"""Image references: `[registry/]repository[:tag][@digest]`, as Docker reads them."""

from __future__ import annotations

import re
from dataclasses import dataclass

from factory.errors import UsageError

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"

_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[0-9a-fA-F]{32,}$")


@dataclass(frozen=True, kw_only=True)
class Reference:
    registry: str
    """The host (and port) as written; `docker.io` for Docker Hub."""
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def api_host(self) -> str:
        """The host that serves the registry API."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def name(self) -> str:
        """`registry/repository`."""
        return f"{self.registry}/{self.repository}"

    @property
    def target(self) -> str:
        """What to ask the registry for: the digest when there is one, else the tag."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def _bad(text: str, why: str) -> UsageError:
    return UsageError(
        f"{text!r} is not an image reference: {why}.",
        hint="Write [registry/]repository[:tag][@digest], "
        "e.g. 127.0.0.1:5000/factory/hello:latest.",
    )


def parse(text: str, *, default_tag: str | None = "latest") -> Reference:
    """Split a reference; a bare repository gets ``default_tag``."""
    rest, _, digest = text.strip().partition("@")
    if digest and not _DIGEST.match(digest):
        raise _bad(text, f"{digest!r} is not a digest (algorithm:hex)")
    first, slash, remainder = rest.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        registry, path = first.lower() if first != "localhost" else first, remainder
    else:
        registry, path = DOCKER_HUB, rest
    tag: str | None = None
    last_slash = path.rfind("/")
    colon = path.rfind(":")
    if colon > last_slash:
        path, tag = path[:colon], path[colon + 1 :]
        if not _TAG.match(tag):
            raise _bad(text, f"{tag!r} is not a valid tag")
    if not path or not all(_COMPONENT.match(c) for c in path.split("/")):
        raise _bad(text, "repository names are lower-case components separated by `/`")
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    if tag is None and not digest:
        tag = default_tag
    return Reference(registry=registry, repository=path, tag=tag, digest=digest or None)


def repository(text: str) -> Reference:
    """A destination repository (`host/path`); a tag or digest there is an error."""
    ref = parse(text, default_tag=None)
    if ref.tag or ref.digest:
        raise UsageError(
            f"{text!r} names a tag or digest, but a repository is expected here.",
            hint="Give tags with --tag; write the repository as host[:port]/path.",
        )
    return ref
