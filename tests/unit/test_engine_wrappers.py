"""The engine wrappers' contracts, with fake engines (no Docker)."""

from __future__ import annotations

from typing import Any

import docker.errors
import pytest

from factory.engine import cleanup
from factory.engine import docker_engine as engine
from factory.engine.docker_engine import CommandError, ContainerSpec, Mount
from factory.errors import EngineError


class _FakeContainer:
    def __init__(self, fail_start: bool) -> None:
        self.fail_start = fail_start
        self.removed = False
        self.id = "c1"
        self.name = "factory-build-x"

    def start(self) -> None:
        if self.fail_start:
            raise docker.errors.APIError("no space left on device")

    def remove(self, **kwargs: Any) -> None:
        self.removed = True


class _FakeContainers:
    def __init__(self, fail_start: bool = False) -> None:
        self.created: list[_FakeContainer] = []
        self.kwargs: dict[str, Any] = {}
        self.fail_start = fail_start

    def create(self, image: str, **kwargs: Any) -> _FakeContainer:
        self.kwargs = kwargs
        box = _FakeContainer(self.fail_start)
        self.created.append(box)
        return box

    def list(self, **kwargs: Any) -> list[Any]:
        return []


class _FakeVolumes:
    def __init__(self) -> None:
        self.made: list[dict[str, Any]] = []

    def get(self, name: str) -> None:
        raise docker.errors.NotFound(name)

    def create(self, **kwargs: Any) -> None:
        self.made.append(kwargs)


class _FakeAPI:
    def __init__(self, chunks: list[tuple[bytes | None, bytes | None]], code: int) -> None:
        self.chunks = chunks
        self.code = code

    def exec_create(self, container: str, cmd: list[str], **kwargs: Any) -> dict[str, str]:
        return {"Id": "e1"}

    def exec_start(self, exec_id: str, **kwargs: Any) -> Any:
        return iter(self.chunks)

    def exec_inspect(self, exec_id: str) -> dict[str, int]:
        return {"ExitCode": self.code}


class _FakeEngine:
    def __init__(self, fail_start: bool = False, chunks: Any = (), code: int = 0) -> None:
        self.containers = _FakeContainers(fail_start)
        self.volumes = _FakeVolumes()
        self.api = _FakeAPI(list(chunks), code)


SPEC = ContainerSpec(
    image="factory-builder:0",
    purpose="build",
    mounts=(Mount(source="factory-cache", target="/cache"),),
)


def test_container_is_labelled_offline_and_removed() -> None:
    fake: Any = _FakeEngine()
    with engine.container(fake, SPEC) as box:
        assert box.name == "factory-build-x"
    created = fake.containers.created[0]
    assert created.removed
    kwargs = fake.containers.kwargs
    assert kwargs["labels"][engine.LABEL] == "true"
    assert kwargs["labels"][engine.SESSION_LABEL] == engine.SESSION_ID
    assert kwargs["network_mode"] == "none"
    assert fake.volumes.made[0]["labels"][engine.LABEL] == "true"


def test_container_that_fails_to_start_is_removed_and_explained() -> None:
    fake: Any = _FakeEngine(fail_start=True)
    with pytest.raises(EngineError, match="disk space"), engine.container(fake, SPEC):
        pass
    assert fake.containers.created[0].removed


def test_container_is_removed_when_the_body_raises() -> None:
    fake: Any = _FakeEngine()
    with pytest.raises(RuntimeError), engine.container(fake, SPEC):
        raise RuntimeError("boom")
    assert fake.containers.created[0].removed


def test_keep_leaves_the_container_for_debugging() -> None:
    fake: Any = _FakeEngine()
    with engine.container(fake, SPEC, keep=True):
        pass
    assert not fake.containers.created[0].removed


def test_run_streams_lines_and_raises_with_stderr() -> None:
    chunks = [(b"Compil", None), (b"ing a\nCompiling b\n", b"error[E0425]: x\n"), (None, b"end")]
    fake: Any = _FakeEngine(chunks=chunks, code=101)
    lines: list[str] = []
    with engine.container(fake, SPEC) as box:
        with pytest.raises(CommandError) as caught:
            box.run(["cargo", "build"], on_output=lines.append, what="cargo build")
        ok = box.run(["true"], check=False)
    assert lines == ["Compiling a", "Compiling b", "error[E0425]: x", "end"]
    assert caught.value.command_exit_code == 101
    assert "error[E0425]" in str(caught.value)
    assert ok.exit_code == 101  # check=False never raises


def test_labels_helper() -> None:
    assert engine.labels(role="cache") == {engine.LABEL: "true", "org.factory.role": "cache"}


def test_disk_usage_counts_layers_containers_and_volumes() -> None:
    df = {
        "LayersSize": 1000,
        "Containers": [{"SizeRw": 10}, {}],
        "Volumes": [{"UsageData": {"Size": 5}}, {"UsageData": {"Size": -1}}],
    }
    assert cleanup.disk_usage(df) == 1015
    assert cleanup.human_bytes(999) == "999 B"
    assert cleanup.human_bytes(2_500_000_000) == "2.5 GB"


def test_clean_report_summary() -> None:
    report = cleanup.CleanReport(containers=1, volumes=2, images=3, bytes_freed=4_200_000)
    assert report.summary == "removed 1 container(s), 2 volume(s), 3 image(s); freed 4.2 MB"
    assert report.to_json()["bytes_freed"] == 4_200_000


class _Item:
    def __init__(self, name: str, status: str = "exited", busy: bool = False) -> None:
        self.name = name
        self.status = status
        self.busy = busy
        self.removed = False

    def remove(self, **kwargs: Any) -> None:
        if self.busy:
            raise docker.errors.APIError("in use", explanation="volume is in use")
        self.removed = True


class _Image:
    def __init__(self, tag: str, created: str) -> None:
        self.tags = [tag]
        self.id = f"sha256:{tag}"
        self.attrs = {"Created": created}


class _CleanEngine:
    def __init__(self) -> None:
        self.boxes = [_Item("factory-build-a"), _Item("factory-build-b", status="running")]
        self.vols = [_Item("factory-cache"), _Item("factory-registry", busy=True)]
        self.imgs = [
            _Image("base", "2026-01-01T00:00:00Z"),
            _Image("builder", "2026-01-02T00:00:00Z"),
        ]
        self.removed_images: list[str] = []
        self.df_calls = 0
        engine_self = self

        class _List:
            def __init__(self, items: list[Any]) -> None:
                self.items = items

            def list(self, **kwargs: Any) -> list[Any]:
                return self.items

        class _Images(_List):
            def remove(self, image: str, force: bool = False) -> None:
                engine_self.removed_images.append(image)

        self.containers = _List(self.boxes)
        self.volumes = _List(self.vols)
        self.images = _Images(self.imgs)

    def df(self) -> dict[str, Any]:
        self.df_calls += 1
        return {"LayersSize": 5000 if self.df_calls == 1 else 1000}


def test_clean_keeps_what_is_in_use_and_removes_children_first() -> None:
    fake: Any = _CleanEngine()
    report = cleanup.clean(fake)
    assert fake.boxes[0].removed and not fake.boxes[1].removed
    assert fake.vols[0].removed and not fake.vols[1].removed
    assert fake.removed_images == ["sha256:builder", "sha256:base"]
    assert (report.containers, report.volumes, report.images) == (1, 1, 2)
    assert report.bytes_freed == 4000
    assert any("running; use --force" in s for s in report.skipped)
    assert any("volume is in use" in s for s in report.skipped)
    forced = cleanup.clean(_CleanEngine(), force=True)
    assert forced.containers == 2


def test_sigterm_removes_the_container() -> None:
    import os
    import signal

    fake: Any = _FakeEngine()
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), engine.container(fake, SPEC):
        os.kill(os.getpid(), signal.SIGTERM)
    assert fake.containers.created[0].removed
    assert signal.getsignal(signal.SIGTERM) == before


class _Leftover:
    def __init__(self, pid: str) -> None:
        self.labels = {
            engine.LABEL: "true",
            "org.factory.host": engine.HOST,
            "org.factory.pid": pid,
        }
        self.removed = False

    def remove(self, **kwargs: Any) -> None:
        self.removed = True


def test_containers_of_dead_runs_on_this_host_are_swept() -> None:
    import os
    import subprocess

    gone = subprocess.Popen(["true"])
    gone.wait()
    dead, alive, unlabelled = _Leftover(str(gone.pid)), _Leftover(str(os.getpid())), _Leftover("")

    class Containers:
        def list(self, **kwargs: Any) -> list[_Leftover]:
            assert f"org.factory.host={engine.HOST}" in kwargs["filters"]["label"]
            return [dead, alive, unlabelled]

    class Engine:
        containers = Containers()

    assert engine.sweep_orphans(Engine(), force=True) == 1
    assert (dead.removed, alive.removed, unlabelled.removed) == (True, False, False)


def test_new_containers_record_host_and_pid() -> None:
    import os

    fake: Any = _FakeEngine()
    with engine.container(fake, SPEC):
        pass
    labels = fake.containers.kwargs["labels"]
    assert labels["org.factory.pid"] == str(os.getpid())
    assert labels["org.factory.host"] == engine.HOST


@pytest.mark.parametrize(
    ("names", "reference", "expected"),
    [
        (["debian:trixie-slim"], "debian:trixie-slim", True),
        (["docker.io/library/debian:trixie-slim"], "debian:trixie-slim", True),
        (["localhost/factory-builder:0123"], "factory-builder:0123", True),
        (["localhost/factory-bootstrap/debian:sid"], "factory-bootstrap/debian:sid", True),
        # What Podman answers for a short name: an image whose name only ends with it.
        (["localhost/factory-bootstrap/debian:trixie-slim"], "debian:trixie-slim", False),
        (["docker.io/factory-bootstrap/debian:trixie-slim"], "debian:trixie-slim", False),
        (["debian:bookworm-slim"], "debian:trixie-slim", False),
        (["debian@sha256:" + "a" * 64], "debian@sha256:" + "a" * 64, True),
        ([], "debian:trixie-slim", False),
    ],
)  # fmt: skip
def test_an_image_is_named_as_docker_reads_names(
    names: list[str], reference: str, expected: bool
) -> None:
    assert engine.named(names, reference) is expected


class _RacedVolumes:
    """Podman: another container's start made the volume between our get and create."""

    def __init__(self, made_meanwhile: bool) -> None:
        self.made_meanwhile = made_meanwhile
        self.gets = 0

    def get(self, name: str) -> None:
        self.gets += 1
        if self.gets == 1 or not self.made_meanwhile:
            raise docker.errors.NotFound(name)

    def create(self, **kwargs: Any) -> None:
        raise docker.errors.APIError(
            "adding volume to state: name factory-cache is in use: volume already exists"
        )


def test_a_volume_made_meanwhile_is_no_error_and_a_failed_create_is() -> None:
    class Engine:
        volumes = _RacedVolumes(made_meanwhile=True)

    engine.ensure_volume(Engine(), "factory-cache")
    Engine.volumes = _RacedVolumes(made_meanwhile=False)
    with pytest.raises(docker.errors.APIError, match="volume already exists"):
        engine.ensure_volume(Engine(), "factory-cache")
