"""An SPDX 2.3 JSON SBOM of one image: the crates of the workspace's Cargo.lock and the toolchain.

Every package of Cargo.lock is listed (name, version, the lock's SHA-256 checksum for registry
crates, a ``pkg:cargo/<name>@<version>`` purl); the image CONTAINS them all (a superset when the
workspace has several binaries: Cargo.lock does not say which crate feeds which binary). The
toolchain (LLVM, musl, Rust) comes from the builder image's labels, or, when no builder image is
present, from the defaults its Dockerfile declares; each is a BUILD_TOOL_OF the image.

The document is deterministic: its time is the image's creation time and its namespace derives
from the index digest, so assembling and pushing the same inputs twice attaches the same bytes.
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
from typing import Any, Final
from urllib.parse import quote

from factory import resources
from factory.errors import ConfigError

MEDIA_TYPE: Final = "application/spdx+json"
SPDX_VERSION: Final = "SPDX-2.3"
DOCKERFILE: Final = resources.dockerfile("builder")
TOOLS: Final = (("llvm", "LLVM_VERSION"), ("musl", "MUSL_VERSION"), ("rust", "RUST_VERSION"))
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
class Toolchain:
    versions: Mapping[str, str]
    """`llvm`, `musl`, `rust` -> version."""
    source: str
    """Where the versions come from (the builder image's tag, or its Dockerfile)."""


def read_lock(path: Path) -> tuple[Crate, ...]:
    """The packages of a Cargo.lock, sorted by name and version."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(
            f"{path} is not valid TOML ({err}).",
            hint="Regenerate it with `cargo generate-lockfile` in the workspace.",
        ) from None
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


def toolchain_from_labels(tag: str, labels: Mapping[str, str]) -> Toolchain | None:
    """The versions a builder image's ``org.factory.<tool>`` labels name; None if it has none."""
    versions = {
        tool: labels[f"org.factory.{tool}"]
        for tool, _ in TOOLS
        if labels.get(f"org.factory.{tool}")
    }
    return Toolchain(versions=versions, source=f"builder image {tag}") if versions else None


def toolchain_from_dockerfile(path: Path = DOCKERFILE) -> Toolchain:
    """The default versions the builder's Dockerfile declares (``ARG LLVM_VERSION=...``)."""
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    versions = {}
    for tool, arg in TOOLS:
        match = re.search(rf"\b{arg}=(\S+)", text)
        if match:
            versions[tool] = match.group(1)
    return Toolchain(versions=versions, source=f"defaults of {path.name}")


def toolchain_from_binaries(found: Iterable[Mapping[str, str | None]]) -> dict[str, str]:
    """LLVM and Rust versions the binaries' ``.comment`` sections name (``clang``/``lld``,
    ``rustc`` as `elfcheck.Toolchain.to_json` gives them): the toolchain that really built
    them. Of several binaries, the first that names a tool wins."""
    versions: dict[str, str] = {}
    for comment in found:
        for tool, keys in (("llvm", ("clang", "lld")), ("rust", ("rustc",))):
            version = next((comment[k] for k in keys if comment.get(k)), None)
            if version and tool not in versions:
                versions[tool] = version
    return versions


def merge(base: Toolchain, observed: Mapping[str, str]) -> Toolchain:
    """``base`` with the versions ``observed`` in the binaries taking precedence."""
    if not observed:
        return base
    seen = ", ".join(sorted(observed))
    return Toolchain(
        versions={**base.versions, **observed},
        source=f"binaries' .comment sections ({seen}), else the {base.source}",
    )


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


def document(
    *,
    image: str,
    repository: str,
    index_digest: str,
    created: int,
    crates: Iterable[Crate],
    toolchain: Toolchain,
    lockfile: str | None,
) -> dict[str, Any]:
    """The SPDX 2.3 document of the image ``repository@index_digest``."""
    image_id = "SPDXRef-Image"
    purl = f"pkg:oci/{quote(image)}@{quote(index_digest)}?repository_url={quote(repository)}"
    checksum = {"algorithm": "SHA256", "checksumValue": index_digest.removeprefix("sha256:")}
    packages = [
        _package(
            image_id,
            image,
            index_digest,
            purl,
            primaryPackagePurpose="CONTAINER",
            checksums=[checksum],
        )
    ]
    relationships = [_relationship("SPDXRef-DOCUMENT", "DESCRIBES", image_id)]
    for tool, version in sorted(toolchain.versions.items()):
        tool_id = _spdx_id("Tool", tool)
        linked = tool == "musl"  # the image STATIC_LINKs musl; LLVM and Rust built it
        packages.append(
            _package(
                tool_id,
                tool,
                version,
                f"pkg:generic/{tool}@{quote(version)}",
                primaryPackagePurpose="LIBRARY" if linked else "APPLICATION",
                comment=f"toolchain version from the {toolchain.source}",
            )
        )
        relationships.append(
            _relationship(image_id, "STATIC_LINK", tool_id)
            if linked
            else _relationship(tool_id, "BUILD_TOOL_OF", image_id)
        )
    for crate in crates:
        package = _crate_package(crate)
        packages.append(package)
        relationships.append(_relationship(image_id, "CONTAINS", package["SPDXID"]))
    when = datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    name = f"{repository}@{index_digest}"
    return {
        "spdxVersion": SPDX_VERSION,
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": name,
        "documentNamespace": "https://spdx.org/spdxdocs/factory-"
        + str(uuid.uuid5(_NAMESPACE_UUID, name)),
        "creationInfo": {
            "created": when,
            "creators": ["Tool: factory"],
            "comment": f"crates from {lockfile}"
            if lockfile
            else "no Cargo.lock: crates not listed",
        },
        "packages": packages,
        "relationships": relationships,
    }


def encode(sbom: Mapping[str, Any]) -> bytes:
    """The document's bytes as attached (sorted keys, two-space indent, trailing newline)."""
    return (json.dumps(sbom, indent=2, sort_keys=True) + "\n").encode()
