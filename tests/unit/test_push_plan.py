"""Reading an OCI image layout into a push plan."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from factory.distribution import plan as push_plan
from factory.errors import RegistryError
from tests.oci_layouts import write_layout


def test_the_plan_lists_each_blob_once_and_the_tags_in_layout_order(tmp_path: Path) -> None:
    built = write_layout(tmp_path / "l", tags=("latest", "1.0"))
    plan = push_plan.read(built.path)
    assert len(plan.blobs) == 6 == len({b.digest for b in plan.blobs})
    assert [m.digest for m in plan.manifests] == list(built.manifest_digests.values())
    assert [m.platform for m in plan.manifests] == ["linux/amd64", "linux/arm64", "linux/amd64/v3"]
    assert [t.tag for t in plan.index_tags] == ["latest", "1.0"]
    assert {t.document.digest for t in plan.index_tags} == {built.index_digest}
    assert [t.tag for t in plan.manifest_tags][:3] == [
        "latest-amd64",
        "latest-arm64",
        "latest-amd64-v3",
    ]
    assert sum(b.size for b in plan.blobs) == built.blob_bytes


def test_a_missing_blob_is_named(tmp_path: Path) -> None:
    built = write_layout(tmp_path / "l")
    plan = push_plan.read(built.path)
    plan.blob_path(plan.blobs[1].digest).unlink()
    with pytest.raises(RegistryError, match=f"blob {plan.blobs[1].digest} is missing"):
        push_plan.read(built.path)


def test_a_corrupt_manifest_is_caught_by_its_digest(tmp_path: Path) -> None:
    built = write_layout(tmp_path / "l")
    digest = built.manifest_digests["arm64"]
    (built.path / "blobs" / "sha256" / digest.removeprefix("sha256:")).write_text("{}")
    with pytest.raises(RegistryError, match="does not match its digest"):
        push_plan.read(built.path)


def test_not_a_layout(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match=r"has no index\.json") as caught:
        push_plan.read(tmp_path)
    assert "factory image" in str(caught.value)
    (tmp_path / "index.json").write_text(json.dumps({"manifests": []}))
    with pytest.raises(RegistryError, match="no oci-layout"):
        push_plan.read(tmp_path)
    (tmp_path / "oci-layout").write_text("{}")
    with pytest.raises(RegistryError, match="lists no image"):
        push_plan.read(tmp_path)
