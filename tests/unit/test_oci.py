"""factory.image.oci: the bytes of layers, configs, manifests, indexes and layouts."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest

from factory.distribution import media_types
from factory.image import oci
from factory.model.targets import BY_NAME


def _files() -> list[oci.FileEntry]:
    return [
        oci.FileEntry(path="/usr/bin/tool", data=b"\x7fELF tool", mode=0o755),
        oci.FileEntry(path="/etc/passwd", data=b"root:x:0:0::/:/x\n"),
        oci.FileEntry(path="/etc/ssl/certs/ca.crt", data=b"CERT"),
    ]


def _members(tar_bytes: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        return tar.getmembers()


def test_canonical_json_is_sorted_and_compact() -> None:
    assert media_types.canonical_json({"b": 1, "a": {"d": [1, 2], "c": "é"}}) == (
        '{"a":{"c":"é","d":[1,2]},"b":1}'.encode()
    )


def test_rfc3339() -> None:
    assert oci.rfc3339(0) == "1970-01-01T00:00:00Z"
    assert oci.rfc3339(1700000000) == "2023-11-14T22:13:20Z"


def test_layer_tar_is_sorted_with_parents_owners_modes_and_one_mtime() -> None:
    members = _members(oci.layer_tar(_files(), mtime=1234))
    assert [m.name for m in members] == [
        "etc",
        "etc/passwd",
        "etc/ssl",
        "etc/ssl/certs",
        "etc/ssl/certs/ca.crt",
        "usr",
        "usr/bin",
        "usr/bin/tool",
    ]
    assert {(m.uid, m.gid, m.uname, m.gname, m.mtime) for m in members} == {(0, 0, "", "", 1234)}
    modes = {m.name: (m.type, m.mode) for m in members}
    assert modes["usr/bin/tool"] == (tarfile.REGTYPE, 0o755)
    assert modes["etc/passwd"] == (tarfile.REGTYPE, 0o644)
    assert modes["etc/ssl"] == (tarfile.DIRTYPE, 0o755)


def test_layer_tar_does_not_depend_on_input_order() -> None:
    assert oci.layer_tar(_files(), mtime=5) == oci.layer_tar(list(reversed(_files())), mtime=5)
    assert oci.layer_tar(_files(), mtime=5) != oci.layer_tar(_files(), mtime=6)


@pytest.mark.parametrize(
    ("paths", "problem"),
    [
        (["relative/file"], "absolute"),
        (["/a/../b"], "absolute"),
        (["/a", "/a"], "twice"),
        (["/a", "/a/b"], "both a file and a directory"),
    ],
)
def test_layer_tar_rejects_bad_paths(paths: list[str], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        oci.layer_tar([oci.FileEntry(path=p, data=b"") for p in paths], mtime=0)


def test_gzip_is_deterministic_and_standard() -> None:
    data = oci.layer_tar(_files(), mtime=0) * 50
    packed = oci.deterministic_gzip(data)
    assert packed == oci.deterministic_gzip(data)
    assert gzip.decompress(packed) == data
    # magic, deflate, no flags (so no file name), mtime 0, XFL 2, OS 255
    assert packed[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    assert len(packed) < len(data) // 10


def test_config_manifest_and_index_reference_each_other() -> None:
    layer = oci.make_layer(_files(), mtime=7)
    assert layer.diff_id == media_types.sha256_digest(layer.tar)
    assert gzip.decompress(layer.blob.data) == layer.tar
    platform = BY_NAME["amd64_v3"].platform
    config = oci.image_config(
        platform=platform,
        run=oci.RunConfig(entrypoint=("/usr/bin/tool",), user="65532:65532", env=("A=1",)),
        layers=[layer],
        history=[oci.HistoryEntry(created_by="test", comment="why")],
        created=7,
    )
    doc = json.loads(config.data)
    assert doc["architecture"] == "amd64"
    assert doc["os"] == "linux"
    assert doc["variant"] == "v3"
    assert doc["created"] == "1970-01-01T00:00:07Z"
    assert doc["rootfs"] == {"type": "layers", "diff_ids": [layer.diff_id]}
    assert doc["config"] == {
        "Entrypoint": ["/usr/bin/tool"],
        "User": "65532:65532",
        "Env": ["A=1"],
    }
    assert doc["history"] == [
        {"created": "1970-01-01T00:00:07Z", "created_by": "test", "comment": "why"}
    ]

    manifest = oci.image_manifest(config=config, layers=[layer], annotations={"k": "v"})
    mdoc = json.loads(manifest.data)
    assert mdoc["schemaVersion"] == 2
    assert mdoc["mediaType"] == media_types.MEDIA_MANIFEST
    assert mdoc["config"] == {
        "mediaType": media_types.MEDIA_CONFIG,
        "digest": config.digest,
        "size": len(config.data),
    }
    assert mdoc["layers"][0]["digest"] == layer.blob.digest
    assert mdoc["layers"][0]["mediaType"] == media_types.MEDIA_LAYER
    assert mdoc["annotations"] == {"k": "v"}

    index = oci.image_index([manifest.descriptor(platform=platform)], annotations={})
    idoc = json.loads(index.data)
    assert idoc["manifests"] == [
        {
            "mediaType": media_types.MEDIA_MANIFEST,
            "digest": manifest.digest,
            "size": manifest.size,
            "platform": {"architecture": "amd64", "os": "linux", "variant": "v3"},
        }
    ]
    assert "annotations" not in idoc


def test_a_baseline_platform_has_no_variant() -> None:
    assert media_types.platform_json(BY_NAME["arm64"].platform) == {
        "architecture": "arm64",
        "os": "linux",
    }


def test_write_layout_replaces_the_old_layout(tmp_path: Path) -> None:
    first = oci.Blob(media_type=media_types.MEDIA_CONFIG, data=b"{}")
    second = oci.Blob(media_type=media_types.MEDIA_CONFIG, data=b"[]")
    path = tmp_path / "layout"
    oci.write_layout(path, blobs=[first], refs=[first.descriptor()])
    oci.write_layout(path, blobs=[second], refs=[second.descriptor(annotations={"x": "y"})])
    blobs = sorted(p.name for p in (path / "blobs" / "sha256").iterdir())
    assert blobs == [second.digest.removeprefix("sha256:")]
    assert json.loads((path / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((path / "index.json").read_text())
    assert index["manifests"] == [second.descriptor(annotations={"x": "y"}).to_json()]
    assert oci.read_blob(path, second.digest) == b"[]"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["layout"]


def test_write_layout_leaves_the_same_layout_alone_and_mends_a_damaged_one(tmp_path: Path) -> None:
    blob = oci.Blob(media_type=media_types.MEDIA_CONFIG, data=b'{"a": 1}')
    path = tmp_path / "layout"
    oci.write_layout(path, blobs=[blob], refs=[blob.descriptor()])
    written = (path / "index.json").stat()
    oci.write_layout(path, blobs=[blob], refs=[blob.descriptor()])
    assert (path / "index.json").stat().st_ino == written.st_ino, "not written again"
    stored = path / "blobs" / "sha256" / blob.digest.removeprefix("sha256:")
    stored.write_bytes(b"{}")
    oci.write_layout(path, blobs=[blob], refs=[blob.descriptor()])
    assert (path / "index.json").stat().st_ino != written.st_ino
    assert oci.read_blob(path, blob.digest) == blob.data


def test_read_blob_checks_the_digest(tmp_path: Path) -> None:
    blob = oci.Blob(media_type=media_types.MEDIA_CONFIG, data=b"{}")
    oci.write_layout(tmp_path / "l", blobs=[blob], refs=[])
    (tmp_path / "l" / "blobs" / "sha256" / blob.digest.removeprefix("sha256:")).write_bytes(b"x")
    with pytest.raises(ValueError, match="does not match"):
        oci.read_blob(tmp_path / "l", blob.digest)


def test_layer_tar_bytes_are_pinned() -> None:
    """The tar bytes of a known input never change: a change here changes every digest users
    have pushed (a new Python's tarfile, an edit of layer_tar): make it on purpose or not at all."""
    tar = oci.layer_tar(_files(), mtime=1234)
    assert len(tar) == 10240
    assert media_types.sha256_digest(tar) == (
        "sha256:1b56fa68428efe815fe51b96fae0f4ae8e0be76385fff26771a534afdd9b0222"
    )


def test_cached_gzip_gives_the_same_bytes_and_ignores_a_bad_cache(tmp_path: Path) -> None:
    from factory.image import oci as oci_mod

    compress = oci_mod.cached_gzip(tmp_path / "layers")
    tar = b"some layer bytes " * 1000
    first = compress(tar)
    assert first == oci_mod.deterministic_gzip(tar)
    [cached] = list((tmp_path / "layers").iterdir())
    assert compress(tar) == first
    cached.write_bytes(b"\x1f\x8b broken")
    assert compress(tar) == first
    assert cached.read_bytes() == first
