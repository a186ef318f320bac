"""SBOM, referrers (API and tag-schema fallback) and cosign-format signatures, without Docker."""

from __future__ import annotations

import base64
import dataclasses
import json
import shutil
import stat
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from factory import resources
from factory.distribution import media_types, referrers
from factory.distribution.media_types import Descriptor
from factory.distribution.retry import RetryPolicy
from factory.distribution.transport import Transport
from factory.errors import ConfigError, RegistryError, UsageError, ValidationError
from factory.model.dist import Dist
from factory.publish import sbom, signing
from factory.validate import elf
from tests.conftest import ROOT
from tests.fake_http import Reply, Request, serve
from tests.fake_registry import FakeRegistry

LOCK = ROOT / "examples" / "hello_world" / "Cargo.lock"
SUBJECT = Descriptor(media_type=media_types.MEDIA_INDEX, digest="sha256:" + "ab" * 32, size=512)
TOOLS = tuple(
    sbom.ToolVersion(tool=tool, version=version, source="x")
    for tool, version in (("llvm", "21.1.8"), ("musl", "1.2.5"), ("rust", "1.96.0"))
)


def _document(**overrides: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "image": "hello",
        "repository": "127.0.0.1:5000/factory/hello",
        "index_digest": SUBJECT.digest,
        "created": 1700000000,
        "crates": sbom.read_lock(LOCK),
        "toolchain": TOOLS,
        "lockfile": LOCK.name,
    }
    return sbom.document(**{**arguments, **overrides})


def test_the_sbom_lists_every_locked_crate_with_checksum_and_purl() -> None:
    document = _document()
    assert document["spdxVersion"] == "SPDX-2.3"
    assert document["creationInfo"]["created"] == "2023-11-14T22:13:20Z"
    packages = {p["name"]: p for p in document["packages"]}
    tokio = packages["tokio"]
    locked = next(c for c in sbom.read_lock(LOCK) if c.name == "tokio")
    assert tokio["versionInfo"] == locked.version
    assert tokio["checksums"] == [{"algorithm": "SHA256", "checksumValue": locked.checksum}]
    assert tokio["externalRefs"][0]["referenceLocator"] == f"pkg:cargo/tokio@{locked.version}"
    assert "checksums" not in packages["hello_world"], "workspace members have no checksum"
    crates = [p for p in document["packages"] if p["SPDXID"].startswith("SPDXRef-Cargo-")]
    assert len(crates) == LOCK.read_text().count("[[package]]")
    assert {packages[t]["versionInfo"] for t in ("llvm", "musl", "rust")} == {
        "21.1.8",
        "1.2.5",
        "1.96.0",
    }
    relations = {
        (r["spdxElementId"], r["relationshipType"], r["relatedSpdxElement"])
        for r in document["relationships"]
    }
    assert ("SPDXRef-DOCUMENT", "DESCRIBES", "SPDXRef-Image") in relations
    assert ("SPDXRef-Tool-llvm", "BUILD_TOOL_OF", "SPDXRef-Image") in relations
    assert ("SPDXRef-Image", "STATIC_LINK", "SPDXRef-Tool-musl") in relations
    ids = [p["SPDXID"] for p in document["packages"]]
    assert len(ids) == len(set(ids))
    assert all(r["relatedSpdxElement"] in ids for r in document["relationships"])


def test_the_sbom_is_deterministic_and_names_its_image() -> None:
    assert sbom.encode(_document()) == sbom.encode(_document())
    other = _document(index_digest="sha256:" + "cd" * 32)
    assert other["documentNamespace"] != _document()["documentNamespace"]
    assert _document(crates=(), lockfile=None)["creationInfo"]["comment"].startswith("no Cargo")


def test_toolchain_versions_from_the_dockerfile() -> None:
    defaults = sbom.dockerfile_versions(resources.dockerfile("builder"))
    assert {d.tool for d in defaults} == {"llvm", "musl", "rust"}
    assert [d.source for d in defaults] == [
        "LLVM_VERSION of builder.Dockerfile",
        "MUSL_VERSION of builder.Dockerfile",
        "RUST_VERSION of builder.Dockerfile",
    ]
    assert sbom.dockerfile_versions(Path("/nonexistent/builder.Dockerfile")) == []


def test_a_broken_lockfile_is_a_config_error(tmp_path: Path) -> None:
    lock = tmp_path / "Cargo.lock"
    lock.write_text("[[package]\nname=")
    with pytest.raises(ConfigError, match=r"Cargo\.lock is not valid TOML"):
        sbom.read_lock(lock)


class ReferrersRegistry(FakeRegistry):
    """The fake registry with the OCI 1.1 referrers API."""

    def __call__(self, request: Request) -> Reply:
        if "/referrers/" in request.path and request.method == "GET":
            name, _, subject = request.path.removeprefix("/v2/").partition("/referrers/")
            found = [
                {
                    "mediaType": media_types.MEDIA_MANIFEST,
                    "digest": digest,
                    "size": len(data),
                    "artifactType": json.loads(data)["artifactType"],
                }
                for digest, (media_type, data) in self.manifests.get(name, {}).items()
                if digest.startswith("sha256:")
                and json.loads(data).get("subject", {}).get("digest") == subject
            ]
            body = json.dumps(
                {"schemaVersion": 2, "mediaType": media_types.MEDIA_INDEX, "manifests": found}
            ).encode()
            return Reply(status=200, headers={"Content-Type": media_types.MEDIA_INDEX}, body=body)
        reply = super().__call__(request)
        if request.method == "PUT" and "/manifests/" in request.path and reply.status == 201:
            subject = json.loads(request.body).get("subject", {}).get("digest")
            if subject:
                return Reply(status=201, headers={**reply.headers, "OCI-Subject": subject})
        return reply


def _sbom_artifact() -> referrers.ReferrerArtifact:
    layer = referrers.ArtifactLayer(media_type=sbom.MEDIA_TYPE, data=sbom.encode(_document()))
    return referrers.ReferrerArtifact(artifact_type=sbom.MEDIA_TYPE, layers=(layer,))


def _transport(address: str) -> Transport:
    return Transport(
        address, policy=RetryPolicy(attempts=2, base_delay=0.0), lookup_credentials=False
    )


def test_attach_through_the_referrers_api(tmp_path: Path) -> None:
    fake = ReferrersRegistry()
    with serve(fake) as server, _transport(server.address) as t:
        attached = referrers.attach(t, "team/hello", SUBJECT, _sbom_artifact(), layout=tmp_path)
        listed, via = referrers.find(t, "team/hello", SUBJECT.digest)
    assert attached.via == "referrers API"
    assert via == "referrers API"
    assert [m["digest"] for m in listed] == [attached.digest]
    assert referrers.fallback_tag(SUBJECT.digest) not in fake.manifests["team/hello"]
    manifest = json.loads(fake.manifests["team/hello"][attached.digest][1])
    assert manifest["subject"] == SUBJECT.to_json()
    assert manifest["artifactType"] == "application/spdx+json"
    assert manifest["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"


def test_attach_without_the_api_keeps_the_fallback_tag(tmp_path: Path) -> None:
    fake = FakeRegistry()  # answers 404 on /referrers/, and no OCI-Subject header
    signature = signing.signature_artifact(
        ec.generate_private_key(ec.SECP256R1()), "r/team/hello", SUBJECT.digest
    )
    with serve(fake) as server, _transport(server.address) as t:
        first = referrers.attach(t, "team/hello", SUBJECT, _sbom_artifact(), layout=tmp_path)
        again = referrers.attach(t, "team/hello", SUBJECT, _sbom_artifact(), layout=tmp_path)
        signed = referrers.attach(t, "team/hello", SUBJECT, signature, layout=tmp_path)
        listed, via = referrers.find(t, "team/hello", SUBJECT.digest)
        only_signatures, _ = referrers.find(
            t, "team/hello", SUBJECT.digest, artifact_type=signing.ARTIFACT_TYPE
        )
        assert any(r.path.endswith(f"/referrers/{SUBJECT.digest}") for r in server.requests)
    assert first.via == again.via == signed.via == "fallback tag"
    assert via == "fallback tag"
    assert first.digest == again.digest
    assert [(m["digest"], m["artifactType"]) for m in listed] == [
        (first.digest, sbom.MEDIA_TYPE),
        (signed.digest, signing.ARTIFACT_TYPE),
    ]
    assert [m["digest"] for m in only_signatures] == [signed.digest]
    media_type, data = fake.manifests["team/hello"]["sha256-" + "ab" * 32]
    assert media_type == media_types.MEDIA_INDEX
    assert json.loads(data)["manifests"] == listed


def _pair(tmp_path: Path) -> signing.KeyPair:
    return signing.generate(tmp_path / "cosign", environ={})


def _signed(
    key: ec.EllipticCurvePrivateKey, digest: str = SUBJECT.digest
) -> tuple[dict[str, Any], dict[str, bytes]]:
    artifact = signing.signature_artifact(key, "127.0.0.1:5000/team/hello", digest)
    manifest = json.loads(artifact.manifest(SUBJECT))
    [layer] = artifact.layers
    return manifest, {media_types.sha256_digest(layer.data): layer.data}


def test_a_signature_verifies_with_its_public_key_only(tmp_path: Path) -> None:
    pair = _pair(tmp_path)
    assert stat.S_IMODE(pair.private.stat().st_mode) == 0o600
    assert pair.public.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    key = signing.load_private_key(pair.private, environ={})
    public = signing.load_public_key(pair.public)
    manifest, blobs = _signed(key)
    good = signing.check(public, SUBJECT.digest, manifest, blobs, artifact="a")
    assert good.valid, good.reason
    assert good.reference == "127.0.0.1:5000/team/hello"
    payload = json.loads(next(iter(blobs.values())))
    assert payload["critical"]["type"] == "cosign container image signature"
    assert payload["critical"]["image"]["docker-manifest-digest"] == SUBJECT.digest

    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    wrong_key = signing.check(other, SUBJECT.digest, manifest, blobs, artifact="a")
    assert not wrong_key.valid
    assert "does not match" in wrong_key.reason

    [digest] = blobs
    tampered = blobs[digest].replace(b"hello", b"hellx")
    bad = signing.check(public, SUBJECT.digest, manifest, {digest: tampered}, artifact="a")
    assert not bad.valid
    assert "does not match" in bad.reason

    elsewhere, other_blobs = _signed(key, "sha256:" + "cd" * 32)
    moved = signing.check(public, SUBJECT.digest, elsewhere, other_blobs, artifact="a")
    assert not moved.valid
    assert "names sha256:cdcd" in moved.reason

    with pytest.raises(ValidationError, match="No valid signature"):
        signing.require_valid([wrong_key, bad, moved], "r@" + SUBJECT.digest, pair.public)
    signing.require_valid([bad, good], "r@" + SUBJECT.digest, pair.public)


def test_the_signature_is_ecdsa_sha256_der_over_the_payload(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    manifest, blobs = _signed(key)
    encoded = manifest["layers"][0]["annotations"][signing.SIGNATURE_ANNOTATION]
    from cryptography.hazmat.primitives import hashes

    key.public_key().verify(
        base64.b64decode(encoded), next(iter(blobs.values())), ec.ECDSA(hashes.SHA256())
    )
    assert signing.cosign_tag(SUBJECT.digest) == "sha256-" + "ab" * 32 + ".sig"


def test_encrypted_keys_need_cosign_password(tmp_path: Path) -> None:
    pair = signing.generate(tmp_path / "enc", environ={"COSIGN_PASSWORD": "s3cret"})
    assert b"ENCRYPTED PRIVATE KEY" in pair.private.read_bytes()
    signing.load_private_key(pair.private, environ={"COSIGN_PASSWORD": "s3cret"})
    with pytest.raises(UsageError, match="COSIGN_PASSWORD"):
        signing.load_private_key(pair.private, environ={})
    with pytest.raises(UsageError, match="already exists"):
        signing.generate(tmp_path / "enc", environ={})


def test_keys_that_are_not_p256_are_refused(tmp_path: Path) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "rsa.key"
    path.write_bytes(
        rsa_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(UsageError, match="not an ECDSA P-256 key"):
        signing.load_private_key(path, environ={})
    (tmp_path / "junk.pub").write_text("junk")
    with pytest.raises(UsageError, match="not a PEM public key"):
        signing.load_public_key(tmp_path / "junk.pub")


def test_the_commands_refuse_bad_keys_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from factory.cli import main

    prefix = str(tmp_path / "k")
    assert main(["keygen", prefix]) == 0
    assert "public key:" in capsys.readouterr().out
    assert main(["keygen", prefix]) == 2
    assert "already exists" in capsys.readouterr().err
    (tmp_path / "bad.pub").write_text("not a key")
    code = main(["verify", "127.0.0.1:9/x/y:latest", "--key", str(tmp_path / "bad.pub")])
    assert code == 2
    err = capsys.readouterr().err
    assert "bad.pub is not a PEM public key" in err
    assert "Traceback" not in err
    code = main(["sign", "127.0.0.1:9/x/y:latest", "--key", str(tmp_path / "absent.key")])
    assert code == 2
    assert "Cannot read the signing key" in capsys.readouterr().err


def test_versions_seen_in_the_binaries_win_over_the_dockerfile() -> None:
    comments = [
        elf.Toolchain(comments=("GCC: (Debian 12.2.0-14) 12.2.0",)),
        elf.Toolchain(comments=("Linker: LLD 21.1.8", "rustc version 1.96.0 (abc 2026-01-01)")),
        elf.Toolchain(comments=("clang version 20.0.0", "rustc version 1.90.0")),
    ]
    observed = sbom.binary_versions(comments)
    assert {o.tool: o.version for o in observed} == {"llvm": "21.1.8", "rust": "1.96.0"}
    assert {o.source for o in observed} == {"the binaries' .comment sections"}
    declared = [
        sbom.ToolVersion(tool=tool, version=version, source="d")
        for tool, version in (("rust", "1.9"), ("musl", "1.2.5"), ("llvm", "21"))
    ]
    merged = sbom.toolchain(observed, declared)
    assert [(m.tool, m.version) for m in merged] == [
        ("llvm", "21.1.8"),
        ("musl", "1.2.5"),
        ("rust", "1.96.0"),
    ]
    assert [m.source for m in merged][1] == "d"
    assert sbom.toolchain([], declared) == tuple(sorted(declared, key=lambda d: d.tool))


def test_a_bad_sign_key_fails_before_anything_is_built(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from factory.cli import main
    from tests.imagekit import make_project

    def no_pipeline(*args: object, **kwargs: object) -> None:
        raise AssertionError("the pipeline ran before the key was checked")

    monkeypatch.setattr("factory.pipeline.run.run", no_pipeline)
    config = str(make_project(tmp_path / "p", ("amd64",)).root / "images.toml")
    (tmp_path / "junk.key").write_text("junk")
    argv = ["image", "-C", config, "--push", "--sign-key", str(tmp_path / "junk.key")]
    assert main(argv) == 2
    assert "junk.key is not a PEM private key" in capsys.readouterr().err
    assert main(["image", "-C", config, "--sign-key", str(tmp_path / "junk.key")]) == 2
    assert "--sign-key signs what is pushed: add --push" in capsys.readouterr().err


def test_the_sbom_passes_the_spdx_projects_own_validator(tmp_path: Path) -> None:
    """spdx-tools (the SPDX project's Python library) parses and validates the document."""
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    path = tmp_path / "hello.spdx.json"
    path.write_bytes(sbom.encode(_document()))
    parsed = parse_file(str(path))
    assert [m.validation_message for m in validate_full_spdx_document(parsed)] == []
    assert parsed.creation_info.spdx_version == "SPDX-2.3"
    assert len(parsed.packages) == len(_document()["packages"])
    broken = _document()
    broken["relationships"].append(
        {
            "spdxElementId": "SPDXRef-Image",
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": "x",
        }
    )
    path.write_bytes(sbom.encode(broken))
    assert validate_full_spdx_document(parse_file(str(path)))  # the validator does find faults


class RacingRegistry(FakeRegistry):
    """Another push rewrites the referrers tag right after each of the first ``races`` writes
    (its own artifact only, as a writer that read the tag before ours would)."""

    def __init__(self, races: int) -> None:
        super().__init__()
        self.races = races

    def __call__(self, request: Request) -> Reply:
        reply = super().__call__(request)
        tag = referrers.fallback_tag(SUBJECT.digest)
        if request.method == "PUT" and request.path.endswith(f"/{tag}") and self.races:
            self.races -= 1
            theirs = {"schemaVersion": 2, "mediaType": media_types.MEDIA_INDEX, "manifests": []}
            self.manifests["team/hello"][tag] = (
                media_types.MEDIA_INDEX,
                json.dumps(theirs).encode(),
            )
        return reply


def test_a_concurrent_writer_of_the_fallback_tag_does_not_lose_our_referrer(
    tmp_path: Path,
) -> None:
    fake = RacingRegistry(races=2)
    with serve(fake) as server, _transport(server.address) as t:
        attached = referrers.attach(t, "team/hello", SUBJECT, _sbom_artifact(), layout=tmp_path)
        listed, _ = referrers.find(t, "team/hello", SUBJECT.digest)
    assert [m["digest"] for m in listed] == [attached.digest]
    endless = RacingRegistry(races=1000)
    with (
        serve(endless) as server,
        _transport(server.address) as t,
        pytest.raises(RegistryError, match="kept changing"),
    ):
        referrers.attach(t, "team/hello", SUBJECT, _sbom_artifact(), layout=tmp_path)


def _assembled(root: Path, ca_bundle: Path) -> tuple[Any, Any]:
    """A project at ``root`` with the example's Cargo.lock, and its assembled layout."""
    from factory.image import assemble as asm
    from tests.imagekit import make_project

    project = make_project(root, ("amd64", "arm64"))
    shutil.copy(LOCK, project.root / "ws")
    [layout] = asm.assemble(
        project.config,
        project.config.image,
        None,
        root / "oci",
        ca_bundle=ca_bundle,
        environ={"SOURCE_DATE_EPOCH": "1700000000"},
    )
    return project.config, layout


def _builder_engine() -> Any:
    """An engine that has a builder image whose labels name other versions than the
    Dockerfile (a rebuilt builder, a moved tag): the SBOM must not read it."""
    image = SimpleNamespace(
        id="sha256:" + "ee" * 32,
        tags=[],
        labels={"org.factory.llvm": "1.0", "org.factory.musl": "0.9"},
        attrs={"Created": "2026-01-01T00:00:00Z"},
    )
    return SimpleNamespace(images=SimpleNamespace(list=lambda **_: [image]))


def test_the_sbom_is_the_same_from_any_checkout_and_any_engine_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from factory.engine import docker_engine
    from factory.publish import supply
    from tests.imagekit import write_ca_bundle

    ca_bundle = write_ca_bundle(tmp_path / "ca.crt")

    def no_engine() -> None:
        raise AssertionError("the SBOM asked the engine")

    monkeypatch.setattr(docker_engine, "client", no_engine)
    config, layout = _assembled(tmp_path / "one" / "checkout", ca_bundle)
    first = supply.sbom_bytes(config, layout)
    monkeypatch.setattr(docker_engine, "client", _builder_engine)
    other_config, other_layout = _assembled(tmp_path / "two" / "elsewhere", ca_bundle)
    assert other_layout.index.digest == layout.index.digest
    second = supply.sbom_bytes(other_config, other_layout)
    assert first == second
    assert str(tmp_path) not in first.decode()
    document = json.loads(first)
    assert document["creationInfo"]["comment"] == "crates from the workspace's Cargo.lock"
    tools = {p["name"]: p for p in document["packages"] if p["SPDXID"].startswith("SPDXRef-Tool")}
    assert tools["musl"]["comment"] == "toolchain version from MUSL_VERSION of builder.Dockerfile"


def test_a_second_push_attaches_no_second_sbom(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SBOM publisher of `factory image --push` over the fake registry, without and with
    the referrers API: pushing the same image again writes no artifact and lists one SBOM,
    and the SBOM is read from dist/.cache/sbom/, not made again from the binaries."""
    from factory.publish import publisher, supply
    from factory.publish.publisher import Published
    from tests.imagekit import write_ca_bundle

    config, layout = _assembled(tmp_path / "p", write_ca_bundle(tmp_path / "ca.crt"))

    class Pushed:
        def publish(self, layout: Any, destination: str) -> Published:
            return Published()

    def no_second_inspection(path: Path) -> elf.ElfFacts:
        raise AssertionError(f"the SBOM was made again: {path} was read")

    for fake in (FakeRegistry(), ReferrersRegistry()):
        with (
            serve(fake) as server,
            monkeypatch.context() as patched,
            publisher.Transports() as transports,
        ):
            destination = f"{server.address}/team/greeter"
            attaching = publisher.Referring(
                inner=Pushed(),
                attachment=supply.SbomAttachment(config=config),
                insecure=False,
                transports=transports,
            )
            [first] = attaching.publish(layout, destination).attached
            writes = len([r for r in server.requests if r.method in ("PUT", "POST", "PATCH")])
            patched.setattr(elf, "inspect", no_second_inspection)
            [again] = attaching.publish(layout, destination).attached
            assert [r for r in server.requests if r.method in ("PUT", "POST", "PATCH")][
                writes:
            ] == []
            with _transport(server.address) as t:
                listed, via = referrers.find(t, "team/greeter", layout.index.digest)
        assert again == dataclasses.replace(first, manifests_written=0, manifests_skipped=1)
        assert first.manifests_written == (2 if via == "fallback tag" else 1)
        assert via == first.via
        assert [m["digest"] for m in listed] == [first.digest]
    assert len(list(Dist.of(config).sbom_cache.iterdir())) == 1


def test_a_cached_sbom_that_is_not_this_images_is_made_again(tmp_path: Path) -> None:
    from factory.publish import supply
    from tests.imagekit import write_ca_bundle

    config, layout = _assembled(tmp_path / "p", write_ca_bundle(tmp_path / "ca.crt"))
    made = supply.sbom_bytes(config, layout)
    [cached] = Dist.of(config).sbom_cache.iterdir()
    cached.write_bytes(b'{"name": "someone-else@sha256:00"}')
    assert supply.sbom_bytes(config, layout) == made
    assert cached.read_bytes() == made
