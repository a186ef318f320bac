"""The one table of drivers: every [workspace] driver has an entry, and the pipeline compiles
through it with the progress callback it was given."""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

import pytest

from factory import resources
from factory.build import driver as drivers
from factory.build.binary import Binary
from factory.build.job import Request
from factory.model import config as cfg
from factory.model import targets as target_table
from factory.model.dist import Dist
from factory.pipeline import run as pipeline


def test_every_driver_name_has_a_driver() -> None:
    assert set(drivers.DRIVERS) == set(get_args(cfg.Driver))


class Recording:
    """A driver that records the request it was given."""

    def __init__(self) -> None:
        self.requests: list[Request] = []

    def build(self, request: Request) -> list[Binary]:
        self.requests.append(request)
        request.progress("recording: built")
        return []


@pytest.mark.parametrize("name", get_args(cfg.Driver))
def test_compile_images_calls_the_drivers_of_the_table(
    name: cfg.Driver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ws").mkdir()
    # A builder Dockerfile of the user's own, with no bazel.Dockerfile beside it.
    (tmp_path / "images.toml").write_text(
        '[workspace]\npath = "ws"\n\n[builder]\ndockerfile = "own.Dockerfile"\n\n'
        '[[image]]\nname = "hello"\nbinary = "hello"\n'
    )
    config = cfg.load(tmp_path / "images.toml")
    recording = Recording()
    monkeypatch.setattr(drivers, "DRIVERS", {**drivers.DRIVERS, name: recording})
    lines: list[str] = []
    builder: Any = object()
    chosen = (target_table.get("arm64"),)
    pipeline.compile_images(
        config, None, builder, config.image, lambda _: chosen, "dbg", name, progress=lines.append
    )
    assert lines == ["recording: built"]
    (request,) = recording.requests
    assert request.builder is builder and request.profile == "dbg"
    assert request.workspace == config.workspace_path
    assert request.dist == Dist.of(config) and request.bazel == config.bazel
    assert config.dockerfile_path == tmp_path.resolve() / "own.Dockerfile"
    assert request.bazel_dockerfile == resources.dockerfile("bazel")
    assert [(image.name, job.target.name, job.profile) for image, job in request.jobs()] == [
        ("hello", "arm64", "dbg")
    ]
