"""An SPDX 2.3 JSON SBOM of one image: the crates of the workspace's Cargo.lock and the toolchain.

Every package of Cargo.lock is listed (name, version, the lock's SHA-256 checksum for registry
crates, a ``pkg:cargo/<name>@<version>`` purl); the image CONTAINS them all (a superset when the
workspace has several binaries: Cargo.lock does not say which crate feeds which binary). The
toolchain: LLVM and Rust as the binaries' ``.comment`` sections name them, else (and musl
always) the versions the builder's Dockerfile declares; LLVM and Rust are BUILD_TOOL_OF the
image, which STATIC_LINKs musl.

The document is a function of the image and its inputs only: its time is the image's creation
time, its namespace derives from the index digest, and it names no path of the build machine
and nothing of the engine's state, so the same image gets the same bytes from any checkout.
"""

from __future__ import annotations

import json
import re
import tomllib
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

from factory.errors import ConfigError

if TYPE_CHECKING:
    from factory.validate import elf

MEDIA_TYPE: Final = "application/spdx+json"
SPDX_VERSION: Final = "SPDX-2.3"
TOOLS: Final = (("llvm", "LLVM_VERSION"), ("musl", "MUSL_VERSION"), ("rust", "RUST_VERSION"))
IMAGE_ID: Final = "SPDXRef-Image"
_NAMESPACE_UUID: Final = uuid.UUID("6f1c51a2-6d0e-4b8e-9a55-0f3d7c1e2b44")


@dataclass(frozen=True, kw_only=True)
class Crate:
    name: str
    version: str
    source: str | None
    """`registry+...`, `git+...`, or None for a workspace (path) package."""
    checksum: str | None

    @property
    def purl(self) -> str:
        return f"pkg:cargo/{quote(self.name)}@{quote(self.version)}"


@dataclass(frozen=True, kw_only=True)
class ToolVersion:
    """One tool of the toolchain that built the image, and where its version was read."""

    tool: str
    """`llvm`, `musl` or `rust`."""
    version: str
    source: str
    """Where the version was read, named the same from any checkout (no paths, no engine)."""


def read_lock(path: Path) -> tuple[Crate, ...]:
    """The packages of a Cargo.lock, sorted by name and version."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(
            f"{path} is not valid TOML ({err}).",
            hint="Regenerate it with `cargo generate-lockfile` in the workspace.",
        ) from err
    packages = document.get("package", [])
    if not isinstance(packages, list):
        raise ConfigError(f"{path}: `package` must be an array of tables.", hint="Regenerate it.")
    crates = [
        Crate(
            name=str(p["name"]),
            version=str(p["version"]),
            source=str(p["source"]) if p.get("source") else None,
            checksum=str(p["checksum"]) if p.get("checksum") else None,
        )
        for p in packages
        if isinstance(p, dict) and "name" in p and "version" in p
    ]
    return tuple(sorted(crates, key=lambda c: (c.name, c.version, c.source or "")))


def dockerfile_versions(path: Path) -> list[ToolVersion]:
    """The versions the builder's Dockerfile declares (``ARG LLVM_VERSION=...``): the builder
    is built with these defaults (only BASE is passed as a build argument)."""
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    found = []
    for tool, arg in TOOLS:
        match = re.search(rf"\b{arg}=(\S+)", text)
        if match:
            found.append(
                ToolVersion(tool=tool, version=match.group(1), source=f"{arg} of {path.name}")
            )
    return found


def binary_versions(toolchains: Iterable[elf.Toolchain]) -> list[ToolVersion]:
    """The LLVM and Rust versions the binaries' ``.comment`` sections name (``clang``/``lld``,
    ``rustc``): the toolchain that really built them. Of several binaries, the first that
    names a tool wins."""
    versions: dict[str, str] = {}
    for toolchain in toolchains:
        for tool, keys in (("llvm", ("clang", "lld")), ("rust", ("rustc",))):
            version = next(filter(None, (toolchain.version_of(k) for k in keys)), None)
            if version and tool not in versions:
                versions[tool] = version
    return [
        ToolVersion(tool=tool, version=version, source="the binaries' .comment sections")
        for tool, version in versions.items()
    ]


def toolchain(
    observed: Iterable[ToolVersion], declared: Iterable[ToolVersion]
) -> tuple[ToolVersion, ...]:
    """One version per tool, sorted by tool: what the binaries say wins over the Dockerfile."""
    chosen: dict[str, ToolVersion] = {}
    for found in (*observed, *declared):
        chosen.setdefault(found.tool, found)
    return tuple(chosen[tool] for tool in sorted(chosen))


def _spdx_id(kind: str, *parts: str) -> str:
    text = "-".join(parts)
    return f"SPDXRef-{kind}-" + re.sub(r"[^A-Za-z0-9.-]", "-", text)


def _package(spdx_id: str, name: str, version: str, purl: str, **extra: Any) -> dict[str, Any]:
    """An SPDX package with its purl; licenses and copyright are not asserted."""
    return {
        "SPDXID": spdx_id,
        "name": name,
        "versionInfo": version,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": False,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "externalRefs": [
            {
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": purl,
            }
        ],
        **extra,
    }


def _crate_package(crate: Crate) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if crate.source and crate.source.startswith("git+"):
        extra["downloadLocation"] = crate.source
    if crate.checksum:
        extra["checksums"] = [{"algorithm": "SHA256", "checksumValue": crate.checksum}]
    if crate.source is None:
        extra["comment"] = "a package of the workspace itself"
    spdx_id = _spdx_id("Cargo", crate.name, crate.version)
    return _package(spdx_id, crate.name, crate.version, crate.purl, **extra)


def _relationship(element: str, kind: str, related: str) -> dict[str, str]:
    return {"spdxElementId": element, "relationshipType": kind, "relatedSpdxElement": related}


def _image_package(image: str, repository: str, index_digest: str) -> dict[str, Any]:
    purl = f"pkg:oci/{quote(image)}@{quote(index_digest)}?repository_url={quote(repository)}"
    checksum = {"algorithm": "SHA256", "checksumValue": index_digest.removeprefix("sha256:")}
    return _package(
        IMAGE_ID, image, index_digest, purl, primaryPackagePurpose="CONTAINER", checksums=[checksum]
    )


def _tool_package(tool: ToolVersion) -> tuple[dict[str, Any], dict[str, str]]:
    """The tool's package and its relationship to the image: the image STATIC_LINKs musl;
    LLVM and Rust are BUILD_TOOL_OF it."""
    tool_id = _spdx_id("Tool", tool.tool)
    linked = tool.tool == "musl"
    package = _package(
        tool_id,
        tool.tool,
        tool.version,
        f"pkg:generic/{tool.tool}@{quote(tool.version)}",
        primaryPackagePurpose="LIBRARY" if linked else "APPLICATION",
        comment=f"toolchain version from {tool.source}",
    )
    relationship = (
        _relationship(IMAGE_ID, "STATIC_LINK", tool_id)
        if linked
        else _relationship(tool_id, "BUILD_TOOL_OF", IMAGE_ID)
    )
    return package, relationship


def document(
    *,
    image: str,
    repository: str,
    index_digest: str,
    created: int,
    crates: Iterable[Crate],
    toolchain: Iterable[ToolVersion],
    lockfile: str | None,
) -> dict[str, Any]:
    """The SPDX 2.3 document of the image ``repository@index_digest``; ``lockfile`` names the
    Cargo.lock the crates come from, relative to the workspace (None: there is none)."""
    packages = [_image_package(image, repository, index_digest)]
    relationships = [_relationship("SPDXRef-DOCUMENT", "DESCRIBES", IMAGE_ID)]
    for tool in sorted(toolchain, key=lambda t: t.tool):
        package, relationship = _tool_package(tool)
        packages.append(package)
        relationships.append(relationship)
    for crate in crates:
        package = _crate_package(crate)
        packages.append(package)
        relationships.append(_relationship(IMAGE_ID, "CONTAINS", package["SPDXID"]))
    name = f"{repository}@{index_digest}"
    return {
        "spdxVersion": SPDX_VERSION,
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": name,
        "documentNamespace": "https://spdx.org/spdxdocs/factory-"
        + str(uuid.uuid5(_NAMESPACE_UUID, name)),
        "creationInfo": {
            "created": datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "creators": ["Tool: factory"],
            "comment": f"crates from the workspace's {lockfile}"
            if lockfile
            else "no Cargo.lock: crates not listed",
        },
        "packages": packages,
        "relationships": relationships,
    }


def encode(sbom: Mapping[str, Any]) -> bytes:
    """The document's bytes as attached (sorted keys, two-space indent, trailing newline)."""
    return (json.dumps(sbom, indent=2, sort_keys=True) + "\n").encode()
