"""`factory inspect` against the in-memory registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from factory.cli import main
from factory.distribution import push as registry
from tests.fake_http import serve
from tests.fake_registry import FakeRegistry
from tests.oci_layouts import write_layout


def test_inspect_shows_each_platform_digest_and_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    built = write_layout(tmp_path / "l")
    with serve(FakeRegistry()) as server:
        registry.push_layout(built.path, f"{server.address}/factory/hello")
        capsys.readouterr()
        assert main(["inspect", f"{server.address}/factory/hello", "--json"]) == 0
        document = json.loads(capsys.readouterr().out)
        assert main(["inspect", f"{server.address}/factory/hello:latest-arm64"]) == 0
        text = capsys.readouterr().out
    assert document["digest"] == built.index_digest
    assert [m["platform"] for m in document["manifests"]] == [
        "linux/amd64",
        "linux/arm64",
        "linux/amd64/v3",
    ]
    assert [m["digest"] for m in document["manifests"]] == list(built.manifest_digests.values())
    assert all(m["image_size"] > 1000 for m in document["manifests"])
    assert "(manifest," in text and "linux/arm64" in text


def test_inspect_of_a_missing_tag_exits_6_with_the_reason(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with serve(FakeRegistry()) as server:
        assert main(["inspect", f"{server.address}/factory/none:v1"]) == 6
    err = capsys.readouterr().err
    assert "does not exist" in err and "Traceback" not in err
