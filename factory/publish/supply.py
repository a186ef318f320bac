"""Supply-chain documents of pushed images: the SBOM and the signature attached as referrers,
and the checks that read them back (`factory sign`, `factory verify`, `factory referrers`).

The signing code (and cryptography with it) is imported only where a key is read or a
signature made or checked: a push without --sign-key does not load it."""

from __future__ import annotations

import contextlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from factory import resources
from factory.distribution import inspect as inspection
from factory.distribution import media_types, reference, referrers
from factory.distribution.media_types import Descriptor, canonical_json, sha256_digest
from factory.distribution.transport import Transport
from factory.image.assemble import LayoutResult
from factory.image.provenance import file_digest
from factory.model import config as cfg
from factory.model.dist import Dist
from factory.publish import sbom
from factory.util import console, fsutil
from factory.util.fingerprint import code_digest

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

    from factory.publish import signing

_SBOM_CODE: Final = ("factory.publish.sbom", "factory.publish.supply", "factory.validate.elf")
"""The code an SBOM is made by: a change to it makes the cached SBOMs stale."""


def sbom_bytes(config: cfg.Config, layout: LayoutResult) -> bytes:
    """The SPDX document of one assembled image: a function of the image and its inputs (the
    workspace's Cargo.lock, the binaries, the builder's Dockerfile), whatever the checkout's
    path or the engine's state. Made once per set of inputs (the binaries are the index's),
    then read from dist/.cache/sbom/: a push of an unchanged image reads no ELF file."""
    lock = config.workspace_path / "Cargo.lock"
    if not lock.is_file():
        console.warn(
            f"{lock} does not exist: the SBOM of {layout.image} lists the toolchain only "
            "(run `cargo generate-lockfile` in the workspace to list its crates)."
        )
    dockerfile = config.dockerfile_path
    if not dockerfile.is_file():  # built elsewhere (--no-build): factory's own builder's
        dockerfile = resources.dockerfile("builder")
    inputs = {
        "code": code_digest(_SBOM_CODE),
        "image": layout.image,
        "repository": layout.repository,
        "index": layout.index.digest,
        "created": layout.provenance.created,
        "lock": file_digest(lock),
        "dockerfile": [dockerfile.name, file_digest(dockerfile)],
    }
    key = sha256_digest(canonical_json(inputs)).removeprefix("sha256:")
    cached = Dist.of(config).sbom_cache / f"{key}.spdx.json"
    data = _read_sbom(cached, name=f"{layout.repository}@{layout.index.digest}")
    if data is None:
        data = _make_sbom(layout, lock, dockerfile)
        fsutil.atomic_write(cached, data)
    return data


def _read_sbom(path: Path, *, name: str) -> bytes | None:
    """A cached SBOM, when it is one and names the image ``name``."""
    try:
        data = path.read_bytes()
        document = json.loads(data)
    except (OSError, ValueError):
        return None
    return data if isinstance(document, dict) and document.get("name") == name else None


def _make_sbom(layout: LayoutResult, lock: Path, dockerfile: Path) -> bytes:
    crates = sbom.read_lock(lock) if lock.is_file() else ()
    from factory.validate import elf  # pyelftools loads only when an SBOM is made

    toolchains = []
    for image in layout.images:
        with contextlib.suppress(elf.UnreadableElf, OSError):
            toolchains.append(elf.inspect(image.binary.path).toolchain)
    document = sbom.document(
        image=layout.image,
        repository=layout.repository,
        index_digest=layout.index.digest,
        created=layout.provenance.created,
        crates=crates,
        toolchain=sbom.toolchain(
            sbom.binary_versions(toolchains), sbom.dockerfile_versions(dockerfile)
        ),
        lockfile=lock.name if lock.is_file() else None,
    )
    return sbom.encode(document)


def sbom_artifact(image: str, data: bytes) -> referrers.ReferrerArtifact:
    layer = referrers.ArtifactLayer(
        media_type=sbom.MEDIA_TYPE,
        data=data,
        annotations={media_types.TITLE: f"{image}.spdx.json"},
    )
    return referrers.ReferrerArtifact(artifact_type=sbom.MEDIA_TYPE, layers=(layer,))


@dataclass(frozen=True, kw_only=True)
class SbomAttachment:
    """The SPDX SBOM of each pushed index (`factory image --push`, unless --no-sbom)."""

    config: cfg.Config

    def artifact(
        self, layout: LayoutResult, destination: reference.Reference
    ) -> referrers.ReferrerArtifact:
        return sbom_artifact(layout.image, sbom_bytes(self.config, layout))

    def tags(self, subject: Descriptor) -> tuple[str, ...]:
        return ()


@dataclass(frozen=True, kw_only=True)
class SignatureAttachment:
    """A cosign-format signature of each pushed index (`factory image --push --sign-key`)."""

    key: ec.EllipticCurvePrivateKey

    @classmethod
    def read(cls, path: Path) -> SignatureAttachment:
        """With the key read now: before anything is built, so a wrong key fails at once."""
        from factory.publish import signing

        return cls(key=signing.load_private_key(path))

    def artifact(
        self, layout: LayoutResult, destination: reference.Reference
    ) -> referrers.ReferrerArtifact:
        from factory.publish import signing

        return signing.signature_artifact(self.key, destination.name, layout.index.digest)

    def tags(self, subject: Descriptor) -> tuple[str, ...]:
        from factory.publish import signing

        return (signing.cosign_tag(subject.digest),)


def resolve(text: str, *, insecure: bool) -> tuple[reference.Reference, Descriptor]:
    """The repository and the descriptor of what ``text`` (a tag or digest reference) names."""
    ref = reference.parse(text)
    found = inspection.inspect(text, insecure=insecure)
    return ref, Descriptor(media_type=found.media_type, digest=found.digest, size=found.size)


def sign(text: str, key_path: Path, *, insecure: bool) -> referrers.Attached:
    """Sign the image ``text`` names."""
    from factory.publish import signing

    key = signing.load_private_key(key_path)
    ref, subject = resolve(text, insecure=insecure)
    artifact = signing.signature_artifact(key, ref.name, subject.digest)
    with (
        Transport(ref.api_host, insecure=insecure, log=console.detail) as t,
        tempfile.TemporaryDirectory(prefix="factory-sign-") as store,
    ):
        return referrers.attach(
            t,
            ref.repository,
            subject,
            artifact,
            layout=Path(store),
            tags=(signing.cosign_tag(subject.digest),),
        )


def verify(text: str, public_key: Path, *, insecure: bool) -> list[signing.Checked]:
    """Check every signature of the image ``text`` names; raises unless one is valid."""
    from factory.publish import signing

    key = signing.load_public_key(public_key)
    ref, subject = resolve(text, insecure=insecure)
    checked = []
    with Transport(ref.api_host, insecure=insecure, log=console.detail) as t:
        listed, via = referrers.find(
            t, ref.repository, subject.digest, artifact_type=signing.ARTIFACT_TYPE
        )
        console.detail(f"{len(listed)} signature(s) of {subject.digest} found ({via})")
        for item in listed:
            digest = str(item.get("digest"))
            manifest = referrers.fetch_manifest(t, ref.repository, digest)
            blobs = {
                str(layer["digest"]): referrers.fetch_blob(t, ref.repository, str(layer["digest"]))
                for layer in manifest.get("layers", [])
                if isinstance(layer, dict) and layer.get("mediaType") == signing.PAYLOAD_TYPE
            }
            checked.append(signing.check(key, subject.digest, manifest, blobs, artifact=digest))
    signing.require_valid(checked, f"{ref.name}@{subject.digest}", public_key)
    return checked


def listing(text: str, *, insecure: bool) -> tuple[str, list[dict[str, Any]], str]:
    """The subject's digest, its referrers' descriptors, and how they were found."""
    ref, subject = resolve(text, insecure=insecure)
    with Transport(ref.api_host, insecure=insecure, log=console.detail) as t:
        listed, via = referrers.find(t, ref.repository, subject.digest)
    return subject.digest, listed, via
