"""SBOM and signature referrers on Debian's docker-registry 2.8 (no referrers API: the tag-schema
fallback runs), written by `factory image --push --sign-key` and read by `factory verify`,
`factory referrers` and skopeo."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from factory.distribution import media_types, referrers
from factory.distribution.media_types import Descriptor
from factory.distribution.transport import Transport
from factory.publish import sbom, signing
from tests.conftest import ROOT
from tests.imagekit import factory_json, make_project, signing_project
from tests.imagekit import factory_run as factory
from tests.integration.registry_kit import Registry, local
from tests.testtools import Tools


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    with local() as started:
        yield started


def _fetch_blob(registry: Registry, repository: str, digest: str) -> bytes:
    response = registry.get(f"/v2/{repository}/blobs/{digest}")
    assert response.status_code == 200
    return response.content


def test_push_attaches_an_sbom_and_a_signature_that_verify_finds(
    registry: Registry, tools: Tools, tmp_path: Path
) -> None:
    project, keys = signing_project(tmp_path)
    config = str(project.root / "images.toml")
    push = ("image", "--no-build", "-C", config, "--push", "--registry", f"{registry.address}/sc")
    document, _ = factory_json(*push, "--sign-key", f"{keys}.key")
    [image] = document["images"]
    index = image["index_digest"]
    repository = "sc/greeter"
    sbom_entry, signature_entry = document["attached"]
    assert sbom_entry["artifact_type"] == "application/spdx+json"
    assert signature_entry["artifact_type"] == signing.ARTIFACT_TYPE
    assert {sbom_entry["via"], signature_entry["via"]} == {"fallback tag"}
    assert registry.get(f"/v2/{repository}/referrers/{index}").status_code == 404

    # the fallback tag lists both artifacts; each has the index as its subject
    listed = registry.get(f"/v2/{repository}/manifests/{referrers.fallback_tag(index)}").json()
    assert [m["digest"] for m in listed["manifests"]] == [
        sbom_entry["digest"],
        signature_entry["digest"],
    ]
    sbom_manifest: dict[str, Any] = registry.get(
        f"/v2/{repository}/manifests/{sbom_entry['digest']}"
    ).json()
    assert sbom_manifest["subject"]["digest"] == index
    served = _fetch_blob(registry, repository, sbom_manifest["layers"][0]["digest"])
    (tmp_path / "served.spdx.json").write_bytes(served)
    parsed = parse_file(str(tmp_path / "served.spdx.json"))
    assert validate_full_spdx_document(parsed) == []  # the SPDX project's validator
    spdx = json.loads(served)
    names = {p["name"]: p for p in spdx["packages"]}
    assert names["tokio"]["externalRefs"][0]["referenceLocator"].startswith("pkg:cargo/tokio@")
    assert names["tokio"]["checksums"][0]["algorithm"] == "SHA256"
    assert {"llvm", "musl", "rust"} <= set(names)
    assert spdx["name"] == f"{registry.address}/sc/greeter@{index}"
    # cosign's tag for signatures names the same artifact
    cosign_tag = signing.cosign_tag(index)
    assert registry.tag_digest(repository, cosign_tag) == signature_entry["digest"]

    reference = f"{registry.address}/{repository}:latest"
    listing = json.loads(factory("--json", "referrers", reference).stdout)
    assert listing["via"] == "fallback tag"
    assert len(listing["referrers"]) == 2
    skopeo = tools.run(
        "skopeo",
        "inspect",
        "--raw",
        "--tls-verify=false",
        f"docker://{registry.address}/{repository}:{referrers.fallback_tag(index)}",
    ).stdout
    assert json.loads(skopeo) == listed

    good = factory("--json", "verify", reference, "--key", f"{keys}.pub")
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout)["signatures"][0]["valid"] is True

    other = tmp_path / "keys" / "other"
    assert factory("keygen", str(other)).returncode == 0
    wrong = factory("verify", reference, "--key", f"{other}.pub")
    assert wrong.returncode == 5
    assert "does not match the payload and this key" in wrong.stderr
    assert "Traceback" not in wrong.stderr

    # pushing again attaches the same bytes: the fallback index does not grow
    again, _ = factory_json(*push, "--sign-key", f"{keys}.key")
    assert again["attached"][0]["digest"] == sbom_entry["digest"]
    relisted = registry.get(f"/v2/{repository}/manifests/{referrers.fallback_tag(index)}").json()
    assert len(relisted["manifests"]) == 3  # ECDSA signatures differ: a second one is listed

    # the same image from another checkout path: the same SBOM, and no second one attached
    elsewhere = make_project(tmp_path / "elsewhere" / "checkout", ("amd64", "arm64"))
    shutil.copy(ROOT / "examples" / "hello_world" / "Cargo.lock", elsewhere.root / "ws")
    moved, _ = factory_json(
        "image",
        "--no-build",
        "-C",
        str(elsewhere.root / "images.toml"),
        "--push",
        "--registry",
        f"{registry.address}/sc",
    )
    assert moved["images"][0]["index_digest"] == index
    assert [a["digest"] for a in moved["attached"]] == [sbom_entry["digest"]]
    listed = registry.get(f"/v2/{repository}/manifests/{referrers.fallback_tag(index)}").json()
    sboms = [m["digest"] for m in listed["manifests"] if m["artifactType"] == sbom.MEDIA_TYPE]
    assert sboms == [sbom_entry["digest"]]


def test_a_tampered_signature_payload_fails_verification(
    registry: Registry, tmp_path: Path
) -> None:
    project = make_project(tmp_path / "p", ("amd64",))
    config = str(project.root / "images.toml")
    document, _ = factory_json(
        "image",
        "--no-build",
        "-C",
        config,
        "--push",
        "--no-sbom",
        "--registry",
        f"{registry.address}/tamper",
    )
    assert document["attached"] == []
    index = document["images"][0]["index_digest"]
    keys = signing.generate(tmp_path / "k", environ={})
    key = signing.load_private_key(keys.private, environ={})
    honest = signing.signature_artifact(key, f"{registry.address}/tamper/greeter", index)
    [layer] = honest.layers
    forged = referrers.ReferrerArtifact(
        artifact_type=signing.ARTIFACT_TYPE,
        layers=(
            referrers.ArtifactLayer(
                media_type=layer.media_type,
                data=layer.data.replace(b"tamper/greeter", b"tamper/greetex"),
                annotations=layer.annotations,
            ),
        ),
    )
    subject = Descriptor(
        media_type=media_types.MEDIA_INDEX,
        digest=index,
        size=len(registry.get(f"/v2/tamper/greeter/manifests/{index}").content),
    )
    with Transport(registry.address) as t:
        referrers.attach(t, "tamper/greeter", subject, forged, layout=tmp_path / "store")
    reference = f"{registry.address}/tamper/greeter@{index}"
    tampered = factory("verify", reference, "--key", str(keys.public))
    assert tampered.returncode == 5, tampered.stderr
    assert "does not match the payload" in tampered.stderr
    with Transport(registry.address) as t:
        referrers.attach(t, "tamper/greeter", subject, honest, layout=tmp_path / "store")
    assert factory("verify", reference, "--key", str(keys.public)).returncode == 0
