"""push_layout against the in-memory registry: order, no double uploads, mounts, chunks."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from factory.distribution import push as registry
from factory.distribution.media_types import sha256_digest
from factory.distribution.results import PushResult
from factory.distribution.retry import RetryPolicy
from factory.errors import ExitCode, RegistryError
from tests.fake_http import Reply, Request, serve
from tests.fake_registry import FakeRegistry
from tests.oci_layouts import INDEX, MANIFEST, write_layout

NO_WAIT = RetryPolicy(attempts=3, base_delay=0.0)


@pytest.fixture(autouse=True)
def _forget_blob_locations() -> Iterator[None]:
    registry._KNOWN_BLOBS.clear()
    yield
    registry._KNOWN_BLOBS.clear()


def _push(
    layout: Path,
    address: str,
    repo: str = "factory/hello",
    *,
    mount_from: tuple[str, ...] = (),
    chunk_size: int = registry.DEFAULT_CHUNK_SIZE,
    log: Callable[[str], None] = print,
) -> PushResult:
    return registry.push_layout(
        layout,
        f"{address}/{repo}",
        policy=NO_WAIT,
        mount_from=mount_from,
        chunk_size=chunk_size,
        log=log,
    )


def test_a_push_sends_blobs_then_manifests_then_target_tags_then_the_index(tmp_path: Path) -> None:
    built = write_layout(tmp_path / "layout")
    fake = FakeRegistry()
    with serve(fake) as server:
        result = _push(built.path, server.address)
    puts = [r for r in server.requests if r.method == "PUT"]
    manifest_puts = [r.path.rsplit("/", 1)[1] for r in puts if "/manifests/" in r.path]
    blob_puts = [i for i, r in enumerate(puts) if "/blobs/" in r.path]
    assert blob_puts == list(range(len(blob_puts))), "every blob before any manifest"
    assert manifest_puts[:3] == list(built.manifest_digests.values())
    assert manifest_puts[3:] == ["latest-amd64", "latest-arm64", "latest-amd64-v3", "latest"]
    assert server.requests[-1].method == "GET"
    assert server.requests[-1].path.endswith("/manifests/latest")
    assert result.bytes_uploaded == built.blob_bytes
    assert result.blobs_uploaded == 6
    assert result.indexes[0].digest == built.index_digest
    assert result.indexes[0].reference == f"{server.address}/factory/hello@{built.index_digest}"
    assert [m.platform for m in result.manifests] == [
        "linux/amd64",
        "linux/arm64",
        "linux/amd64/v3",
    ]
    assert result.manifests[2].tags == ("latest-amd64-v3",)
    media, stored = fake.manifests["factory/hello"]["latest"]
    assert media == INDEX
    assert json.loads(stored)["manifests"][0]["platform"] == {
        "os": "linux",
        "architecture": "amd64",
    }


def test_every_blob_is_checked_with_head_before_an_upload(tmp_path: Path) -> None:
    built = write_layout(tmp_path / "layout")
    with serve(FakeRegistry()) as server:
        _push(built.path, server.address)
    for i, request in enumerate(server.requests):
        if request.method == "POST":
            heads = [r for r in server.requests[:i] if r.method == "HEAD" and "/blobs/" in r.path]
            assert heads, "a POST without a HEAD before it"


def test_a_second_push_uploads_no_blob_bytes(tmp_path: Path) -> None:
    built = write_layout(tmp_path / "layout")
    with serve(FakeRegistry()) as server:
        _push(built.path, server.address)
        registry._KNOWN_BLOBS.clear()
        first = len(server.requests)
        again = _push(built.path, server.address)
        second = server.requests[first:]
    assert again.bytes_uploaded == 0
    assert again.blobs_skipped == 6
    assert again.blobs_uploaded == again.blobs_mounted == 0
    assert not [r for r in second if r.method in ("POST", "PATCH")]
    assert not [r for r in second if r.method == "PUT" and "sha256:" in r.path]


WRITES = ("PUT", "POST", "PATCH", "DELETE")


def test_a_second_push_writes_nothing_and_says_so(tmp_path: Path) -> None:
    """No-op: every manifest and tag already names the same digest, so nothing is written (a
    re-tag would fire webhooks and be refused by registries with immutable tags)."""
    built = write_layout(tmp_path / "layout")
    with serve(FakeRegistry()) as server:
        first = _push(built.path, server.address)
        registry._KNOWN_BLOBS.clear()
        start = len(server.requests)
        again = _push(built.path, server.address)
        second = server.requests[start:]
    assert first.manifests_written == 7 and first.manifests_skipped == 0
    assert [r.method for r in second if r.method in WRITES] == []
    assert again.manifests_written == 0 and again.manifests_skipped == 7
    assert again.manifest_bytes == 0
    # The manifests vouch for their blobs: none is asked for.
    assert not [r for r in second if "/blobs/" in r.path]
    # A HEAD per tag (the tags name every manifest: none is asked for by digest; the first
    # alone, the others side by side), then the index tag read back: a no-op's whole
    # conversation after the probe.
    asked = [(r.method, r.path.rsplit("/", 1)[1]) for r in second if r.path != "/v2/"]
    assert asked[0] == ("HEAD", "latest-amd64") and asked[-1] == ("GET", "latest")
    assert sorted(asked[1:-1]) == [
        ("HEAD", "latest"),
        ("HEAD", "latest-amd64-v3"),
        ("HEAD", "latest-arm64"),
    ]
    by_tag = {r.path.rsplit("/", 1)[1]: r.headers["accept"] for r in second if r.method == "HEAD"}
    assert by_tag["latest"] == INDEX
    assert by_tag["latest-amd64-v3"] == MANIFEST
    assert again.indexes == first.indexes


def test_a_tag_that_names_another_digest_is_written_and_nothing_else(tmp_path: Path) -> None:
    built = write_layout(tmp_path / "layout")
    fake = FakeRegistry()
    with serve(fake) as server:
        _push(built.path, server.address)
        fake.manifests["factory/hello"]["latest-arm64"] = fake.manifests["factory/hello"][
            "latest-amd64"
        ]
        start = len(server.requests)
        again = _push(built.path, server.address)
        writes = [(r.method, r.path) for r in server.requests[start:] if r.method in WRITES]
    assert writes == [("PUT", "/v2/factory/hello/manifests/latest-arm64")]
    assert again.manifests_written == 1 and again.manifests_skipped == 6
    assert (
        fake.manifests["factory/hello"]["latest-arm64"][1]
        == (
            built.path
            / "blobs"
            / "sha256"
            / built.manifest_digests["arm64"].removeprefix("sha256:")
        ).read_bytes()
    )


def test_only_the_blobs_of_a_missing_manifest_are_looked_at(tmp_path: Path) -> None:
    built = write_layout(tmp_path / "layout")
    fake = FakeRegistry()
    with serve(fake) as server:
        _push(built.path, server.address)
        arm64 = built.manifest_digests["arm64"]
        stored = fake.manifests["factory/hello"]
        for name in [n for n, (_, data) in stored.items() if sha256_digest(data) == arm64]:
            del stored[name]  # as a registry deletes a manifest: with the tags naming it
        registry._KNOWN_BLOBS.clear()
        start = len(server.requests)
        again = _push(built.path, server.address)
        blob_heads = [r for r in server.requests[start:] if "/blobs/" in r.path]
        writes = [r.path for r in server.requests[start:] if r.method in WRITES]
    assert len(blob_heads) == 2 and {r.method for r in blob_heads} == {"HEAD"}
    assert again.blobs_skipped == 6 and again.bytes_uploaded == 0
    assert writes == [
        f"/v2/factory/hello/manifests/{arm64}",
        "/v2/factory/hello/manifests/latest-arm64",
    ]


def test_blobs_are_mounted_from_a_hinted_sibling_repository(tmp_path: Path) -> None:
    built = write_layout(tmp_path / "layout")
    with serve(FakeRegistry()) as server:
        _push(built.path, server.address, "factory/one")
        registry._KNOWN_BLOBS.clear()
        start = len(server.requests)
        result = _push(built.path, server.address, "factory/two", mount_from=("factory/one",))
        mounts = [r for r in server.requests[start:] if r.param("mount")]
    assert result.blobs_mounted == 6
    assert result.bytes_uploaded == 0
    assert {r.param("from") for r in mounts} == {"factory/one"}


def test_repositories_pushed_earlier_in_this_process_are_mount_sources(tmp_path: Path) -> None:
    built = write_layout(tmp_path / "layout")
    with serve(FakeRegistry()) as server:
        _push(built.path, server.address, "factory/one")
        result = _push(built.path, server.address, "factory/two")
    assert result.blobs_mounted == 6


def test_big_blobs_go_in_chunks_and_a_refused_chunk_resumes_at_the_registry_offset(
    tmp_path: Path,
) -> None:
    built = write_layout(
        tmp_path / "layout", targets=(("amd64", "amd64", None),), payload_size=9000
    )
    fake = FakeRegistry(refuse_chunk_once=True)
    messages: list[str] = []
    with serve(fake) as server:
        result = _push(built.path, server.address, chunk_size=2048, log=messages.append)
    patches = [r for r in server.requests if r.method == "PATCH"]
    assert len(patches) >= 5
    assert any("resuming the upload at byte" in m for m in messages)
    assert result.blobs_uploaded == 2
    layer = max(fake.blobs["factory/hello"].values(), key=len)
    assert len(layer) > 9000


def test_a_registry_serving_other_bytes_for_the_index_fails_the_push(tmp_path: Path) -> None:
    built = write_layout(tmp_path / "layout")
    fake = FakeRegistry()

    def tampering(request: Request) -> Reply | None:
        if request.method == "GET" and request.path.endswith("/manifests/latest"):
            return Reply(status=200, headers={"Content-Type": INDEX}, body=b'{"other":1}')
        return fake(request)

    with serve(tampering) as server, pytest.raises(RegistryError) as caught:
        _push(built.path, server.address)
    assert built.index_digest in caught.value.message
    assert caught.value.exit_code == ExitCode.REGISTRY


def test_a_refused_manifest_names_the_registry_error(tmp_path: Path) -> None:
    built = write_layout(tmp_path / "layout")
    fake = FakeRegistry()

    def refusing(request: Request) -> Reply | None:
        if request.method == "PUT" and "/manifests/" in request.path:
            return Reply(status=400, body=b'{"errors":[{"code":"MANIFEST_INVALID","message":"x"}]}')
        return fake(request)

    with serve(refusing) as server, pytest.raises(RegistryError) as caught:
        _push(built.path, server.address)
    assert "MANIFEST_INVALID" in str(caught.value)


def test_the_json_summary_keys_are_stable(tmp_path: Path) -> None:
    built = write_layout(tmp_path / "layout")
    with serve(FakeRegistry()) as server:
        document = _push(built.path, server.address).to_json()
    assert list(document) == [
        "repository",
        "indexes",
        "manifests",
        "bytes_uploaded",
        "manifest_bytes",
        "manifests_written",
        "manifests_skipped",
        "blobs_uploaded",
        "blobs_skipped",
        "blobs_mounted",
    ]
    assert list(document["indexes"][0]) == ["tag", "digest", "size", "reference"]
    assert list(document["manifests"][0]) == ["digest", "size", "media_type", "platform", "tags"]


def test_a_mount_source_we_may_not_read_is_skipped_not_fatal(tmp_path: Path) -> None:
    built = write_layout(tmp_path / "layout")
    fake = FakeRegistry()

    def private_source(request: Request) -> Reply | None:
        if "/v2/factory/private/" in request.path:
            return Reply(status=403, body=b'{"errors":[{"code":"DENIED"}]}')
        return fake(request)

    messages: list[str] = []
    with serve(private_source) as server:
        result = _push(
            built.path, server.address, mount_from=("factory/private",), log=messages.append
        )
    assert result.blobs_uploaded == 6 and result.blobs_mounted == 0
    assert "factory/private is no mount source (HTTP 403)" in messages


def test_progress_counts_every_blob_up_to_the_total(tmp_path: Path) -> None:
    built = write_layout(tmp_path / "layout")
    seen: list[tuple[int, int]] = []
    with serve(FakeRegistry()) as server:
        registry.push_layout(
            built.path,
            f"{server.address}/factory/hello",
            policy=NO_WAIT,
            progress=lambda d, t: seen.append((d, t)),
        )
    assert len(seen) == 6
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert seen[-1] == (built.blob_bytes, built.blob_bytes)
