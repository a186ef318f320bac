"""Images built from a Dockerfile, with a fake engine: what a failed build, an interrupted build
and a rebuild leave behind (nothing untagged), and the lock that builds of one tag share."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker.errors
import pytest

from factory.engine import images
from factory.errors import EngineError
from factory.util.meter import PlainMeter

MESSAGES = images.Messages(what="test", hint="Fix the test.", step_prefix="test")


@dataclass
class Image:
    id: str
    tags: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class FakeImages:
    by_id: dict[str, Image] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    in_use: set[str] = field(default_factory=set)

    def add(self, image: Image) -> Image:
        self.by_id[image.id] = image
        return image

    def get(self, ref: str) -> Image:
        for image in self.by_id.values():
            if ref in image.tags or image.id == ref or image.id.startswith(f"sha256:{ref}"):
                return image
        raise docker.errors.ImageNotFound(ref)

    def remove(self, image: str) -> None:
        found = self.get(image)
        if found.id in self.in_use:
            raise docker.errors.APIError("conflict", explanation="image is being used")
        self.removed.append(found.id)
        del self.by_id[found.id]


@dataclass
class FakeAPI:
    images: FakeImages
    stream: list[dict[str, Any]]
    result: Image | None = None
    """Tagged when the stream ends (the engine's tag moves to it)."""
    interrupt_after: int | None = None
    ancestry: list[str] = field(default_factory=list)
    """The built image's history, newest first (the engine's /images/{id}/history)."""

    def history(self, image: str) -> list[dict[str, str]]:
        return [{"Id": image_id} for image_id in self.ancestry]

    def build(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        for n, chunk in enumerate(self.stream):
            if self.interrupt_after is not None and n == self.interrupt_after:
                raise KeyboardInterrupt
            yield chunk
        if self.result is not None:
            for image in self.images.by_id.values():
                if kwargs["tag"] in image.tags:
                    image.tags.remove(kwargs["tag"])
            self.result.tags.append(kwargs["tag"])
            self.images.add(self.result)


@dataclass
class FakeEngine:
    images: FakeImages
    api: FakeAPI


def _engine(stream: list[dict[str, Any]], result: Image | None = None) -> FakeEngine:
    store = FakeImages()
    return FakeEngine(images=store, api=FakeAPI(images=store, stream=stream, result=result))


def _context(tmp_path: Path) -> images.BuildContext:
    dockerfile = tmp_path / "thing.Dockerfile"
    dockerfile.write_text("FROM base\nRUN true\nRUN false\n")
    return images.load_context(dockerfile)


def _build(engine: FakeEngine, context: images.BuildContext, **kwargs: Any) -> images.Found:
    said: list[str] = kwargs.pop("said", [])
    return images.build(
        engine,
        context,
        tag="factory-test:0123456789abcdef",
        buildargs={},
        image_labels={},
        messages=MESSAGES,
        progress=said.append,
        detail=lambda _: None,
        **kwargs,
    )


FAILING = [
    {"stream": "Step 1/3 : FROM base\n"},
    {"stream": " ---> aaaaaaaaaaaa\n"},
    {"stream": "Step 2/3 : RUN true\n"},
    {"stream": " ---> Running in cccccccccccc\n"},
    {"stream": " ---> bbbbbbbbbbbb\n"},
    {"stream": "Step 3/3 : RUN false\n"},
    {"error": "The command '/bin/sh -c false' returned a non-zero code: 1"},
]


def test_a_failed_build_removes_the_image_its_last_finished_step_committed(
    tmp_path: Path,
) -> None:
    engine = _engine(FAILING)
    engine.images.add(Image(id="sha256:" + "a" * 64, tags=["base:latest"]))
    engine.images.add(Image(id="sha256:" + "b" * 64))
    with pytest.raises(EngineError) as caught:
        _build(engine, _context(tmp_path))
    assert str(caught.value).startswith("Building the test image factory-test:")
    assert "Step 3/3 : RUN false" in str(caught.value) and "Fix the test." in str(caught.value)
    assert engine.images.removed == ["sha256:" + "b" * 64]
    assert "sha256:" + "a" * 64 in engine.images.by_id  # the tagged base stays


def test_a_failed_first_step_leaves_the_tagged_base_alone(tmp_path: Path) -> None:
    engine = _engine(FAILING[:3] + FAILING[-1:])
    engine.images.add(Image(id="sha256:" + "a" * 64, tags=["base:latest"]))
    with pytest.raises(EngineError):
        _build(engine, _context(tmp_path))
    assert engine.images.removed == []


def test_an_interrupted_build_removes_what_it_committed(tmp_path: Path) -> None:
    engine = _engine(FAILING)
    engine.api.interrupt_after = 5
    engine.images.add(Image(id="sha256:" + "b" * 64))
    with pytest.raises(KeyboardInterrupt):
        _build(engine, _context(tmp_path))
    assert engine.images.removed == ["sha256:" + "b" * 64]


def test_a_rebuild_removes_the_image_it_replaced(tmp_path: Path) -> None:
    engine = _engine([{"stream": "Step 1/1 : FROM base\n"}], result=Image(id="sha256:new"))
    engine.images.add(Image(id="sha256:old", tags=["factory-test:0123456789abcdef"]))
    built = _build(engine, _context(tmp_path), rebuild=True)
    assert built.id == "sha256:new"
    assert engine.images.removed == ["sha256:old"]


def test_a_replaced_image_a_container_uses_is_kept_and_said(tmp_path: Path) -> None:
    engine = _engine([{"stream": "Step 1/1 : FROM base\n"}], result=Image(id="sha256:new"))
    engine.images.add(Image(id="sha256:old", tags=["factory-test:0123456789abcdef"]))
    engine.images.in_use.add("sha256:old")
    said: list[str] = []
    _build(engine, _context(tmp_path), rebuild=True, said=said)
    assert "sha256:old" in engine.images.by_id
    assert any("kept sha256:old" in line and "image is being used" in line for line in said)


def test_a_replaced_image_with_another_tag_is_kept(tmp_path: Path) -> None:
    engine = _engine([{"stream": "Step 1/1 : FROM base\n"}], result=Image(id="sha256:new"))
    engine.images.add(Image(id="sha256:old", tags=["factory-test:0123456789abcdef", "mine:1"]))
    _build(engine, _context(tmp_path), rebuild=True)
    assert engine.images.removed == []


def test_an_image_built_while_waiting_for_the_lock_is_reused(tmp_path: Path) -> None:
    engine = _engine([{"error": "must not build"}])
    engine.images.add(Image(id="sha256:there", tags=["factory-test:0123456789abcdef"]))
    assert _build(engine, _context(tmp_path)).id == "sha256:there"


def test_builds_of_one_tag_share_one_lock_file() -> None:
    first = images.lock_path("factory-builder:0123456789abcdef")
    assert first == images.lock_path("factory-builder:0123456789abcdef")
    assert first != images.lock_path("factory-registry:0123456789abcdef")
    assert ":" not in first.name and "/" not in first.name


DOCKER_STAGES = [
    "Step 1/4 : FROM base AS build",
    " ---> aaaaaaaaaaaa",
    "Step 2/4 : RUN make",
    " ---> bbbbbbbbbbbb",
    "Step 3/4 : FROM base",
    " ---> aaaaaaaaaaaa",
    "Step 4/4 : COPY --from=build /out /out",
    " ---> dddddddddddd",
]
PODMAN_STAGES = [  # Buildah behind Podman's /build: 11 hex, stages numbered
    "[1/2] STEP 1/2: FROM base AS build",
    "[1/2] STEP 2/2: RUN make",
    "--> bbbbbbbbbbb",
    "[2/2] STEP 1/2: FROM base",
    "[2/2] STEP 2/2: COPY --from=build /out /out",
    "[2/2] COMMIT factory-test:0123456789abcdef",
    "--> ddddddddddd",
]


@pytest.mark.parametrize(
    ("lines", "ancestry"),
    [
        (DOCKER_STAGES, ["sha256:" + "d" * 64, "sha256:" + "a" * 64]),
        (PODMAN_STAGES, ["d" * 64, "<missing>", "a" * 64]),  # Podman's ids: no `sha256:`
    ],
    ids=["docker", "podman"],
)
def test_a_multi_stage_build_leaves_no_earlier_stage_behind(
    tmp_path: Path, lines: list[str], ancestry: list[str]
) -> None:
    """The runtimes image is made of its last stage; the toolchain stage before it goes. Each
    step goes to progress."""
    built = Image(id="sha256:" + "d" * 64)
    engine = _engine([{"stream": f"{line}\n"} for line in lines], result=built)
    engine.images.add(Image(id="sha256:" + "a" * 64, tags=["base:latest"]))
    engine.images.add(Image(id="sha256:" + "b" * 64))
    engine.api.ancestry = ancestry
    said: list[str] = []
    found = _build(engine, _context(tmp_path), said=said)
    assert found.id == built.id
    assert engine.images.removed == ["sha256:" + "b" * 64]
    assert set(engine.images.by_id) == {"sha256:" + "a" * 64, "sha256:" + "d" * 64}
    steps = [line for line in lines if "tep " in line or "STEP " in line]
    assert [line.split(": ", 1)[1] for line in said] == steps


def test_a_long_step_says_what_it_does_every_ten_seconds() -> None:
    """A builder step that runs for minutes (apt-get install, the C++ runtime's compile) prints
    a line now and then: how much output so far and its last line; steps go to progress."""
    progress: list[str] = []
    detail: list[str] = []
    now = [0.0]
    out = images._Output(
        messages=images.Messages(what="builder", hint="", step_prefix="builder"),
        progress=progress.append,
        detail=detail.append,
        meter=PlainMeter(progress.append, prefix="", clock=lambda: now[0]),
    )
    out("Step 8/18 : RUN apt-get install -y cmake")
    for second in range(1, 22):
        now[0] = float(second)
        out(f"Unpacking package-{second} ...")
    out(" ---> 0123456789ab")
    assert progress == [
        "builder: Step 8/18 : RUN apt-get install -y cmake",
        "builder: 10 lines of output, last: Unpacking package-10 ... (10 s)",
        "builder: 20 lines of output, last: Unpacking package-20 ... (20 s)",
    ]
    assert len(detail) == 22
