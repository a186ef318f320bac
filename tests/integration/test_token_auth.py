"""Bearer token authentication against a real registry: Debian's docker-registry 2.8 with
``auth: token``, verifying JWTs that a token service in this process signs (tests/token_issuer.py).
Pushes, reads, signatures and referrers go through the registry's own challenges; the token
service grants what its policy allows of the scopes asked, as the distribution spec says."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import docker.errors
import pytest

from factory.distribution import auth, referrers
from factory.distribution import plan as push_plan
from factory.distribution import push as registry_module
from factory.distribution.push import push_layout
from factory.distribution.results import PushResult
from factory.distribution.retry import RetryPolicy
from factory.distribution.transport import Transport
from tests.faultproxy import Fault, FaultProxy
from tests.faultproxy import running as proxied
from tests.imagekit import make_project, signing_project
from tests.integration.registry_kit import Registry, index_digest, layout, local_token
from tests.token_issuer import TokenIssuer, running

USERS = {"ann": "ann-password", "bob": "bob-password"}
FAST = RetryPolicy(attempts=5, base_delay=0.05, max_delay=0.5)


def _policy(user: str, repository: str, action: str) -> bool:
    """ann may read everything and write all but ro/* and hidden/*; bob may do anything;
    anonymous requests get nothing."""
    if user == "bob":
        return True
    if user != "ann":
        return False
    if repository.startswith("hidden/"):
        return False
    return action == "pull" or not repository.startswith("ro/")


@pytest.fixture(scope="module")
def issuer() -> Iterator[TokenIssuer]:
    with running(TokenIssuer(users=USERS, policy=_policy)) as started:
        yield started


@pytest.fixture(scope="module")
def registry(issuer: TokenIssuer) -> Iterator[Registry]:
    with local_token(issuer) as started:
        yield started


@pytest.fixture(autouse=True)
def _fresh(issuer: TokenIssuer) -> None:
    registry_module._KNOWN_BLOBS.clear()
    issuer.issued.clear()
    issuer.lifetimes.clear()


def _as(user: str) -> auth.Credentials:
    return auth.Credentials(username=user, password=USERS[user], source=f"the test ({user})")


def _environment(user: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("FACTORY_REGISTRY_", "GITHUB_"))
    }
    env |= {"SOURCE_DATE_EPOCH": "1700000000", "FACTORY_REGISTRY_USERNAME": user}
    env["FACTORY_REGISTRY_PASSWORD"] = USERS[user]
    return env


def _factory(*args: str, user: str = "ann") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "factory", *args],
        capture_output=True,
        text=True,
        check=False,
        env=_environment(user),
        timeout=300,
    )


def _push(
    host: str, repository: str, layout_dir: Path, user: str, *, mount_from: Sequence[str] = ()
) -> PushResult:
    with Transport(host, credentials=_as(user), policy=FAST) as transport:
        return push_layout(
            layout_dir, f"{host}/{repository}", transport=transport, mount_from=mount_from
        )


def test_push_inspect_sign_referrers_and_a_docker_pull_through_tokens(
    registry: Registry, issuer: TokenIssuer, tmp_path: Path
) -> None:
    project, keys = signing_project(tmp_path)
    config = str(project.root / "images.toml")
    pushed = _factory(
        "--json", "image", "--no-build", "-C", config, "--push",
        "--registry", f"{registry.address}/tok", "--sign-key", f"{keys}.key",
    )  # fmt: skip
    assert pushed.returncode == 0, pushed.stderr
    document = json.loads(pushed.stdout)
    index = document["images"][0]["index_digest"]
    repository = "tok/greeter"
    registry.assert_complete(repository, "latest")
    assert {a["via"] for a in document["attached"]} == {"fallback tag"}
    assert all(i.user == "ann" for i in issuer.issued)
    assert any(f"repository:{repository}:pull,push" in i.granted for i in issuer.issued)
    assert "ann-password" not in pushed.stdout + pushed.stderr

    reference = f"{registry.address}/{repository}:latest"
    inspected = _factory("--json", "inspect", reference)
    assert inspected.returncode == 0, inspected.stderr
    assert json.loads(inspected.stdout)["digest"] == index
    listing = _factory("--json", "referrers", reference)
    assert listing.returncode == 0, listing.stderr
    assert len(json.loads(listing.stdout)["referrers"]) == 2
    verified = _factory("--json", "verify", reference, "--key", f"{keys}.pub")
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["signatures"][0]["valid"] is True
    fallback = registry.get(f"/v2/{repository}/manifests/{referrers.fallback_tag(index)}")
    assert len(fallback.json()["manifests"]) == 2

    # A client no one here wrote: the Docker engine pulls through the same token service.
    engine = registry.engine
    pulled = engine.images.pull(
        f"{registry.address}/{repository}",
        tag="latest",
        platform="linux/amd64",
        auth_config={"username": "ann", "password": USERS["ann"]},
    )
    try:
        assert pulled.attrs["Architecture"] == "amd64"
    finally:
        with contextlib.suppress(docker.errors.NotFound):
            engine.images.remove(pulled.id, force=True)


def test_a_cross_repository_mount_asks_pull_on_its_source(
    registry: Registry, issuer: TokenIssuer, tmp_path: Path
) -> None:
    built = layout(tmp_path / "l", padding=64 << 10)
    blobs = len(push_plan.read(built).blobs)
    host = registry.address
    _push(host, "tok/source", built, "ann")
    _push(host, "hidden/source", built, "bob")
    registry_module._KNOWN_BLOBS.clear()
    issuer.issued.clear()

    mounted = _push(host, "tok/mounted", built, "ann", mount_from=["tok/source"])
    assert mounted.blobs_mounted == blobs and mounted.bytes_uploaded == 0
    asked = " ".join(s for i in issuer.issued for s in i.scopes)
    assert "repository:tok/source:pull" in asked
    assert any("repository:tok/source:pull" in i.granted for i in issuer.issued)
    registry.assert_complete("tok/mounted", "latest")
    assert "from=tok%2Fsource" in registry.logs()

    # A source the account may not read is no source: the blobs are uploaded instead.
    registry_module._KNOWN_BLOBS.clear()
    uploaded = _push(host, "tok/uploaded", built, "ann", mount_from=["hidden/source"])
    assert uploaded.blobs_mounted == 0 and uploaded.blobs_uploaded == blobs
    registry.assert_complete("tok/uploaded", "latest")


def test_a_token_that_expires_mid_push_is_renewed(
    registry: Registry, issuer: TokenIssuer, tmp_path: Path
) -> None:
    """The first token is good for 2 s (the registry's 60 s of leeway taken into account); the
    first blob upload is held back 3 s, so it reaches the registry with an expired token."""
    built = layout(tmp_path / "l", padding=64 << 10)
    issuer.lifetimes[:] = [2.0]
    held = Fault(action="delay", method="PUT", path=r"/blobs/uploads/.+digest=sha256", seconds=3)
    proxy = FaultProxy(upstream=("127.0.0.1", registry.port), faults=[held])
    with proxied(proxy):
        started = time.monotonic()
        result = _push(proxy.host, "tok/expiring", built, "ann")
        took = time.monotonic() - started
    expired = [s for s in proxy.seen("PUT", "/blobs/uploads/") if s.status == 401]
    assert held.hits == 1 and len(expired) == 1, proxy.requests
    assert expired[0].at > issuer.issued[0].expires  # it reached the registry after it lapsed
    assert len(issuer.issued) == 2, issuer.issued
    assert result.indexes[0].digest == index_digest(built)
    registry.assert_complete("tok/expiring", "latest")
    assert registry.missing_bytes("tok/expiring", built) == 0
    assert took < 30


def test_a_denied_push_scope_exits_6_and_leaves_the_tag_alone(
    registry: Registry, issuer: TokenIssuer, tmp_path: Path
) -> None:
    before = layout(tmp_path / "v1", padding=16 << 10)
    _push(registry.address, "ro/greeter", before, "bob")
    project = make_project(tmp_path / "p", ("amd64", "arm64"))
    config = str(project.root / "images.toml")
    denied = _factory(
        "image", "--no-build", "-C", config, "--push", "--no-sbom",
        "--registry", f"{registry.address}/ro",
    )  # fmt: skip
    assert denied.returncode == 6, denied.stderr
    said = denied.stderr
    assert f"{registry.address} denied repository:ro/greeter:pull,push" in said, said
    assert issuer.realm in said and "FACTORY_REGISTRY_USERNAME" in said
    assert "Traceback" not in said and USERS["ann"] not in said
    assert [i.granted for i in issuer.issued if i.user == "ann"][-1] == (
        "repository:ro/greeter:pull",
    )
    # nothing half-written: the tag still names bob's index, and no blob of ann's arrived
    assert registry.tag_digest("ro/greeter", "latest") == index_digest(before)
    layout_dir = project.dist / "oci" / "greeter"
    plan = push_plan.read(layout_dir)
    assert registry.missing_bytes("ro/greeter", layout_dir) == sum(b.size for b in plan.blobs)
