"""The Bazel driver's commands, output collection and failures, with a fake container."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import docker.errors
import pytest

from factory.build import bazel
from factory.build import bazel_stage as bazel_image
from factory.build.binary import Binary
from factory.build.job import Request, proxy_environment
from factory.engine.builder import BuilderImage
from factory.engine.docker_engine import CommandError, ExecResult
from factory.engine.images import content_hash, load_context
from factory.errors import BuildError, EngineError, UsageError
from factory.model import targets as target_table
from factory.model.config import BazelConfig, ImageConfig, Profile
from factory.model.dist import Dist
from factory.util.console import Progress
from tests.conftest import ROOT

WORKSPACE = ROOT / "examples" / "hello_world"
EXECROOT = "/cache/bazel/output_base/abc/execroot/_main"


@dataclass
class FakeBox:
    """Answers bazel's commands like a container would; records what ran."""

    outputs: dict[str, str] = field(default_factory=dict)
    """label -> the path cquery prints for it."""
    fail_on: str | None = None
    version: str = "bazel 9.0.0"
    ran: list[list[str]] = field(default_factory=list)
    copied: list[tuple[str, Path]] = field(default_factory=list)

    def run(
        self,
        argv: Sequence[str],
        *,
        environment: Mapping[str, str] | None = None,
        workdir: str | None = None,
        on_output: Callable[[str], None] | None = None,
        check: bool = True,
        what: str | None = None,
    ) -> ExecResult:
        argv = list(argv)
        self.ran.append(argv)
        command = next((a for a in argv[1:] if not a.startswith("-")), "")
        if argv[0] == "bazel" and self.fail_on in (command, *argv):
            if check:
                raise CommandError(
                    f"{what} failed", exit_code=1, stdout="", stderr="ERROR: no such target"
                )
            return ExecResult(exit_code=1, stdout="", stderr="ERROR: no such target")
        if argv == ["bazel", "--version"]:
            return ExecResult(exit_code=0, stdout=self.version + "\n", stderr="")
        if command == "info":
            return ExecResult(exit_code=0, stdout=EXECROOT + "\n", stderr="")
        if command == "cquery":
            return ExecResult(exit_code=0, stdout=self.outputs[argv[-1]], stderr="")
        if argv[0] == "readlink":
            return ExecResult(exit_code=0, stdout=argv[-1] + ".real\n", stderr="")
        return ExecResult(exit_code=0, stdout="", stderr="")

    def copy_out(self, path: str, destination: Path) -> Path:
        self.copied.append((path, destination))
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(b"\x7fELF binary of " + path.encode())
        return destination


def _image(**kwargs: Any) -> ImageConfig:
    return ImageConfig(name="hello-world", binary="hello_world", **kwargs)


def _jobs(*names: str, image: ImageConfig | None = None) -> list[bazel.Labelled]:
    chosen = tuple(target_table.get(n) for n in names)
    request = Request(
        engine=cast(Any, None),
        builder=BUILDER,
        workspace=WORKSPACE,
        images=[image or _image()],
        targets_of=lambda _: chosen,
        profile="opt",
        dist=Dist(root=WORKSPACE / "dist"),
        progress=_ignore,
        detail=_ignore,
    )
    return bazel.jobs_for(request)


def _ignore(line: str) -> None:
    pass


def _build_in(
    box: FakeBox,
    jobs: list[bazel.Labelled],
    dist: Path,
    *,
    profile: Profile = "opt",
    progress: Progress = _ignore,
) -> list[Binary]:
    """The Bazel driver's build inside ``box``, with the workspace and config these tests use."""
    return bazel.build_in(
        box,
        workspace=WORKSPACE,
        jobs=jobs,
        config=BazelConfig(),
        profile=profile,
        dist=Dist(root=dist),
        progress=progress,
        detail=_ignore,
    )


def test_labels_follow_the_example_and_bazel_label() -> None:
    amd64_v3 = target_table.get("amd64_v3")
    assert bazel.label_of(_image(), amd64_v3) == "//rust/hello_world:hello_world_static_amd64_v3"
    custom = _image(bazel_label="//app:server_static")
    assert bazel.label_of(custom, amd64_v3) == "//app:server_static_amd64_v3"


def test_the_build_command() -> None:
    config = BazelConfig()
    argv = bazel.build_command(WORKSPACE, config, "opt", ["//a:b_amd64", "//a:b_arm64"])
    base = bazel.output_base(WORKSPACE)
    assert argv == [
        "bazel",
        "--output_user_root=/cache/bazel/user_root",
        f"--output_base={base}",
        "build",
        "-c",
        "opt",
        "--repository_cache=/cache/bazel/repository_cache",
        "--symlink_prefix=/",
        "--color=no",
        "--curses=no",
        "--",
        "//a:b_amd64",
        "//a:b_arm64",
    ]
    assert base.startswith("/cache/bazel/output_base/") and len(base.rsplit("/", 1)[1]) == 16
    assert bazel.output_base(WORKSPACE) != bazel.output_base(WORKSPACE.parent)


def test_remote_cache_executor_and_headers_come_from_images_toml() -> None:
    config = BazelConfig(
        remote_cache="grpcs://cache.example.com",
        remote_executor="grpcs://remote.example.com",
        remote_header=("x-buildbuddy-api-key=KEY", "x-team=rust"),
        flags=("--jobs=64",),
    )
    argv = bazel.build_command(WORKSPACE, config, "dbg", ["//a:b_arm64"])
    tail = argv[argv.index("--curses=no") + 1 :]
    assert tail == [
        "--remote_cache=grpcs://cache.example.com",
        "--remote_executor=grpcs://remote.example.com",
        "--remote_header=x-buildbuddy-api-key=KEY",
        "--remote_header=x-team=rust",
        "--jobs=64",
        "--",
        "//a:b_arm64",
    ]
    assert argv[argv.index("-c") + 1] == "dbg"
    # cquery must see the same configuration as build, or it would analyse everything again.
    query = bazel.cquery_command(WORKSPACE, config, "dbg", "//a:b_arm64")
    assert (
        query[query.index("cquery") + 1 : query.index("--output=files")]
        == argv[argv.index("build") + 1 : argv.index("--")]
    )
    assert query[-2:] == ["--", "//a:b_arm64"]


def test_build_in_builds_once_then_collects_every_output(tmp_path: Path) -> None:
    jobs = _jobs("amd64", "arm64_v9a")
    out = {
        jobs[0].label: "bazel-out/k8-opt-ST-1/bin/rust/hello_world/hello_world_static_amd64\n",
        jobs[1].label: "bazel-out/k8-opt-ST-2/bin/rust/hello_world/hello_world_static_arm64_v9a\n",
    }
    box = FakeBox(outputs=out)
    lines: list[str] = []
    artifacts = _build_in(box, jobs, tmp_path, progress=lines.append)
    # Progress goes to the callback it was given, one line per step and per binary.
    assert lines[0] == "bazel: building 2 target(s) (opt)"
    assert lines[1].startswith("bazel: built in ")
    assert lines[2].startswith("bazel: hello-world amd64 -> ") and len(lines) == 4
    builds = [a for a in box.ran if "build" in a]
    assert len(builds) == 1 and builds[0][-2:] == [j.label for j in jobs]
    assert [a.target for a in artifacts] == ["amd64", "arm64_v9a"]
    first = artifacts[0]
    assert first.path == tmp_path / "bin" / "hello-world" / "amd64" / "hello_world"
    assert first.profile == "opt" and first.image == "hello-world"
    assert first.size == first.path.stat().st_size
    assert box.copied[0][0] == f"{EXECROOT}/{out[jobs[0].label].strip()}.real"
    assert len(first.sha256) == 64 and first.sha256 != artifacts[1].sha256


def test_a_failing_build_is_a_build_error_with_bazels_message(tmp_path: Path) -> None:
    box = FakeBox(fail_on="build")
    with pytest.raises(BuildError, match="no such target") as caught:
        _build_in(box, _jobs("amd64"), tmp_path, profile="fastbuild")
    assert "bazel build -c fastbuild" in caught.value.message
    assert caught.value.exit_code == 4


@pytest.mark.parametrize("listed", ["", "a\nb\n"])
def test_cquery_must_list_exactly_one_file(listed: str, tmp_path: Path) -> None:
    jobs = _jobs("amd64")
    box = FakeBox(outputs={jobs[0].label: listed})
    with pytest.raises(BuildError, match="expects exactly one"):
        _build_in(box, jobs, tmp_path)


def test_missing_bazel_is_an_engine_error_that_says_why() -> None:
    box = FakeBox(fail_on="--version")
    with pytest.raises(EngineError, match=r"Bazel 9\.0\.0 could not be obtained") as caught:
        bazel.ensure_bazel(box, "factory-builder-bazel:x", "9.0.0")
    assert "no such target" in caught.value.message
    assert caught.value.exit_code == 3
    with pytest.raises(EngineError, match="could not be obtained"):
        bazel.ensure_bazel(FakeBox(version="bazel 8.4.2"), "img", "9.0.0")
    bazel.ensure_bazel(FakeBox(), "img", "9.0.0")


def test_the_workspace_must_be_a_bazel_workspace_with_a_pinned_version(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"no MODULE\.bazel"):
        bazel.check_workspace(tmp_path)
    bazel.check_workspace(WORKSPACE)
    assert bazel.bazel_version(WORKSPACE) == "9.0.0"
    with pytest.raises(UsageError, match=r"no \.bazelversion"):
        bazel.bazel_version(tmp_path)


def test_proxies_pass_through_and_nothing_else() -> None:
    env = {"HTTPS_PROXY": "http://proxy:3128", "HOME": "/root", "no_proxy": "localhost"}
    assert proxy_environment(env) == {"HTTPS_PROXY": "http://proxy:3128", "no_proxy": "localhost"}


# --- the Bazel stage ----------------------------------------------------------------------

BUILDER = BuilderImage(tag="factory-builder:0123456789abcdef", id="sha256:b", labels={})


@dataclass
class FakeImages:
    present: dict[str, Any] = field(default_factory=dict)

    def get(self, tag: str) -> Any:
        if tag not in self.present:
            raise docker.errors.ImageNotFound(tag)
        return self.present[tag]


@dataclass
class FakeAPI:
    stream: list[dict[str, str]]
    calls: list[dict[str, Any]] = field(default_factory=list)

    def build(self, **kwargs: Any) -> Iterator[dict[str, str]]:
        self.calls.append(kwargs)
        return iter(self.stream)


@dataclass
class FakeEngine:
    api: FakeAPI
    images: FakeImages = field(default_factory=FakeImages)


def test_the_stage_failing_to_get_bazel_is_one_engine_error() -> None:
    stream = [
        {"stream": "Step 9/14 : RUN ... go install ...\n"},
        {"stream": "go: github.com/bazelbuild/bazelisk@v1.28.1: dial tcp: i/o timeout\n"},
        {"error": "The command '/bin/bash -euo pipefail -c ...' returned a non-zero code: 1"},
    ]
    engine = FakeEngine(api=FakeAPI(stream=stream))
    with pytest.raises(EngineError) as caught:
        bazel_image.ensure_bazel_stage(
            engine,
            BUILDER,
            bazel_version="9.0.0",
            progress=lambda _: None,
            detail=lambda _: None,
            environ={},
        )
    message = str(caught.value)
    assert message.startswith("Bazel 9.0.0 could not be obtained: building the Bazel stage")
    assert "i/o timeout" in message and "GOPROXY" in message and "BAZELISK_BASE_URL" in message
    call = engine.api.calls[0]
    assert call["buildargs"]["BUILDER"] == BUILDER.tag
    assert call["buildargs"]["USE_BAZEL_VERSION"] == "9.0.0"
    assert call["tag"].startswith("factory-builder-bazel:")
    assert call["labels"]["org.factory.managed"] == "true"
    assert call["pull"] is False


def test_a_present_stage_is_reused_without_building() -> None:
    engine = FakeEngine(api=FakeAPI(stream=[]))
    context = load_context(bazel_image.DOCKERFILE)
    args = bazel_image.build_arguments(BUILDER, "9.0.0", environ={})
    tag = f"factory-builder-bazel:{content_hash(context, args, BUILDER.id)}"

    @dataclass
    class Image:
        id: str = "sha256:stage"
        labels: dict[str, str] = field(default_factory=lambda: {"org.factory.bazel": "9.0.0"})
        tags: list[str] = field(default_factory=lambda: [tag])
        attrs: dict[str, Any] = field(default_factory=dict)

    engine.images.present[tag] = Image()
    stage = bazel_image.ensure_bazel_stage(
        engine,
        BUILDER,
        bazel_version="9.0.0",
        progress=lambda _: None,
        environ={},
    )
    assert stage.tag == tag and stage.label("bazel") == "9.0.0"
    assert engine.api.calls == []


def test_stage_build_arguments_pass_mirrors_through() -> None:
    args = bazel_image.build_arguments(
        BUILDER, "9.0.0", environ={"GOPROXY": "https://goproxy.internal", "PATH": "/bin"}
    )
    assert args == {
        "BUILDER": BUILDER.tag,
        "USE_BAZEL_VERSION": "9.0.0",
        "GOPROXY": "https://goproxy.internal",
    }


def test_the_stage_dockerfile_is_legacy_builder_friendly() -> None:
    text = bazel_image.DOCKERFILE.read_text()
    lines = [line.strip() for line in text.splitlines()]
    assert not any(line.startswith("# syntax=") or line.startswith("RUN --mount") for line in lines)
    assert "FROM ${BUILDER}" in text and "USE_BAZEL_VERSION" in text
    assert 'org.factory.managed="true"' in text


@pytest.mark.parametrize("failing", ["cquery", "info"])
def test_a_failing_query_after_the_build_is_a_build_error(failing: str, tmp_path: Path) -> None:
    jobs = _jobs("amd64")
    box = FakeBox(outputs={jobs[0].label: "bazel-out/x/bin/hello_world_static_amd64\n"})
    box.fail_on = failing
    with pytest.raises(BuildError, match="failed after a successful build") as caught:
        _build_in(box, jobs, tmp_path)
    assert "no such target" in caught.value.message


def test_no_jobs_runs_nothing(tmp_path: Path) -> None:
    box = FakeBox()
    assert _build_in(box, [], tmp_path) == []
    assert box.ran == []
