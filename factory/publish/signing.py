"""Signatures of pushed images, in cosign's format, with an ECDSA P-256 key pair in PEM.

- Keys: the private key is PKCS#8 PEM (encrypted when ``COSIGN_PASSWORD`` is set, as cosign's
  variable is named), the public key SubjectPublicKeyInfo PEM, which ``cosign verify --key``
  reads as it is (``cosign import-key-pair`` converts the private key into cosign's own format).
- Payload: cosign's "simple signing" JSON naming the repository and the index digest.
- Signature: ECDSA over SHA-256 of the payload bytes, ASN.1 DER, base64.
- Storage: as cosign lays it out: an artifact whose one layer is the payload
  (``application/vnd.dev.cosign.simplesigning.v1+json``) with the signature in the layer's
  ``dev.cosignproject.cosign/signature`` annotation; here it also has a ``subject`` (so the
  referrers API or its fallback tag finds it) and the tag ``sha256-<hex>.sig`` cosign looks up.

`verify` accepts an image when at least one signature artifact verifies with the public key and
its payload names the image's digest; a tampered payload or another key fails.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from factory.distribution.referrers import ArtifactLayer, ReferrerArtifact, fallback_tag
from factory.errors import UsageError, ValidationError

ARTIFACT_TYPE: Final = "application/vnd.dev.cosign.artifact.sig.v1+json"
PAYLOAD_TYPE: Final = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION: Final = "dev.cosignproject.cosign/signature"
SIGNATURE_TYPE: Final = "cosign container image signature"
PASSWORD_VARIABLE: Final = "COSIGN_PASSWORD"


@dataclass(frozen=True, kw_only=True)
class KeyPair:
    private: Path
    public: Path


def _password(environ: Mapping[str, str] | None) -> bytes | None:
    value = (os.environ if environ is None else environ).get(PASSWORD_VARIABLE)
    return value.encode() if value else None


def generate(prefix: Path, *, environ: Mapping[str, str] | None = None) -> KeyPair:
    """Write ``<prefix>.key`` (mode 0600) and ``<prefix>.pub``; refuses to overwrite."""
    pair = KeyPair(
        private=prefix.with_name(prefix.name + ".key"),
        public=prefix.with_name(prefix.name + ".pub"),
    )
    for path in (pair.private, pair.public):
        if path.exists():
            raise UsageError(
                f"{path} already exists; factory does not overwrite keys.",
                hint="Choose another prefix, or remove the old pair first.",
            )
    key = ec.generate_private_key(ec.SECP256R1())
    password = _password(environ)
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pair.private.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(pair.private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(private)
    pair.public.write_bytes(public)
    return pair


def load_private_key(
    path: Path, *, environ: Mapping[str, str] | None = None
) -> ec.EllipticCurvePrivateKey:
    try:
        data = path.read_bytes()
    except OSError as err:
        raise UsageError(
            f"Cannot read the signing key {path}: {err.strerror}.",
            hint="Pass --sign-key with the .key file `factory keygen` wrote.",
        ) from err
    try:
        key = serialization.load_pem_private_key(data, password=_password(environ))
    except TypeError as err:
        raise UsageError(
            f"The signing key {path} is encrypted and {PASSWORD_VARIABLE} is not set "
            "(or the key is not encrypted but it is).",
            hint=f"Set {PASSWORD_VARIABLE} to the key's password (or unset it).",
        ) from err
    except ValueError as err:
        raise UsageError(
            f"{path} is not a PEM private key (or {PASSWORD_VARIABLE} is not its password).",
            hint="Use a PKCS#8 PEM ECDSA P-256 key, e.g. one from `factory keygen`.",
        ) from err
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise UsageError(
            f"The signing key {path} is not an ECDSA P-256 key.",
            hint="cosign's signatures use ECDSA P-256: make a key with `factory keygen`.",
        )
    return key


def load_public_key(path: Path) -> ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except OSError as err:
        raise UsageError(
            f"Cannot read the public key {path}: {err.strerror}.",
            hint="Pass --key with the .pub file of the signing key.",
        ) from err
    except ValueError as err:
        raise UsageError(
            f"{path} is not a PEM public key.", hint="Pass the .pub file `factory keygen` wrote."
        ) from err
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise UsageError(f"{path} is not an ECDSA P-256 public key.", hint="Pass the right key.")
    return key


def payload(reference: str, digest: str) -> bytes:
    """cosign's simple signing payload for the image ``reference`` (`host/repo`) at ``digest``."""
    document = {
        "critical": {
            "identity": {"docker-reference": reference},
            "image": {"docker-manifest-digest": digest},
            "type": SIGNATURE_TYPE,
        },
        "optional": None,
    }
    return json.dumps(document, separators=(",", ":")).encode()


def sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> str:
    """The base64 ASN.1 DER ECDSA-SHA256 signature of ``data``."""
    return base64.b64encode(key.sign(data, ec.ECDSA(hashes.SHA256()))).decode()


def signature_artifact(
    key: ec.EllipticCurvePrivateKey, reference: str, digest: str
) -> ReferrerArtifact:
    data = payload(reference, digest)
    layer = ArtifactLayer(
        media_type=PAYLOAD_TYPE, data=data, annotations={SIGNATURE_ANNOTATION: sign(key, data)}
    )
    return ReferrerArtifact(artifact_type=ARTIFACT_TYPE, layers=(layer,))


def cosign_tag(digest: str) -> str:
    """The tag cosign reads an image's signatures from: `sha256-<hex>.sig`."""
    return fallback_tag(digest)[:124] + ".sig"


@dataclass(frozen=True, kw_only=True)
class Checked:
    """One signature artifact and what its check found."""

    artifact: str
    valid: bool
    reason: str
    reference: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "artifact": self.artifact,
            "valid": self.valid,
            "reason": self.reason,
            "reference": self.reference,
        }


def check(
    key: ec.EllipticCurvePublicKey,
    digest: str,
    manifest: Mapping[str, Any],
    blobs: Mapping[str, bytes],
    *,
    artifact: str,
) -> Checked:
    """Whether the signature artifact ``manifest`` (with its layers' ``blobs`` by digest) is a
    valid signature of ``digest`` by ``key``."""
    layers = [x for x in manifest.get("layers", []) if isinstance(x, dict)]
    for layer in layers:
        if layer.get("mediaType") != PAYLOAD_TYPE:
            continue
        data = blobs.get(str(layer.get("digest")))
        encoded = (layer.get("annotations") or {}).get(SIGNATURE_ANNOTATION)
        if data is None or not encoded:
            return Checked(artifact=artifact, valid=False, reason="no payload or no signature")
        try:
            key.verify(base64.b64decode(encoded), data, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError):
            return Checked(
                artifact=artifact,
                valid=False,
                reason="the signature does not match the payload and this key",
            )
        try:
            critical = json.loads(data)["critical"]
            named, kind = critical["image"]["docker-manifest-digest"], critical["type"]
            reference = str(critical["identity"]["docker-reference"])
        except (ValueError, KeyError, TypeError):
            return Checked(artifact=artifact, valid=False, reason="the payload is not cosign's")
        if kind != SIGNATURE_TYPE or named != digest:
            return Checked(
                artifact=artifact,
                valid=False,
                reason=f"the signed payload names {named}, not {digest}",
                reference=reference,
            )
        return Checked(artifact=artifact, valid=True, reason="valid", reference=reference)
    return Checked(artifact=artifact, valid=False, reason="no simple-signing layer")


def require_valid(checked: list[Checked], subject: str, public_key: Path) -> None:
    if any(c.valid for c in checked):
        return
    reasons = "; ".join(f"{c.artifact[:19]}: {c.reason}" for c in checked) or "no signature found"
    raise ValidationError(
        f"No valid signature of {subject} by {public_key}: {reasons}.",
        hint="Sign it with the matching private key (`factory sign --key`), or check that the "
        "right public key was given.",
    )
