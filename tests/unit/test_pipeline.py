"""The pipeline's up-to-date logic, with the compile and the validation faked (no engine)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from factory.build.binary import Binary
from factory.model import config as cfg
from factory.model.dist import Dist
from factory.pipeline import run as pipeline
from factory.pipeline import stamps
from factory.util import fingerprint
from factory.validate import stage as validate_mod

TOML = """\
[workspace]
path = "ws"

[[image]]
name = "hello"
binary = "hello"
targets = ["amd64", "arm64"]
"""


@pytest.fixture
def project(tmp_path: Path) -> cfg.Config:
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "main.rs").write_text("fn main() {}\n")
    (tmp_path / "images.toml").write_text(TOML)
    return cfg.load(tmp_path / "images.toml")


class FakeBuilder:
    tag = "factory-builder:abc"


BUILDER: Any = FakeBuilder()


def fake_compile(calls: list[list[str]]) -> Any:
    def compile_(
        config: cfg.Config,
        client: Any,
        builder: Any,
        units: Sequence[pipeline.Unit],
        profile: cfg.Profile,
        driver: cfg.Driver,
        *,
        progress: Callable[[str], None],
        jobs: int | None,
    ) -> list[Binary]:
        calls.append([u.target.name for u in units])
        out = []
        for unit in units:
            path = Dist.of(config).binary(unit.image.name, unit.target.name, "hello")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(f"binary {unit.target.name} {len(calls)}".encode())
            out.append(
                Binary.from_disk(
                    path, image=unit.image.name, target=unit.target.name, profile=profile
                )
            )
        return out

    return compile_


def units(config: cfg.Config) -> list[pipeline.Unit]:
    return pipeline.units_of(config.image, None)


def test_a_second_build_with_nothing_changed_compiles_nothing(
    project: cfg.Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []
    monkeypatch.setattr(pipeline, "_compile", fake_compile(calls))

    def build(rebuild: bool) -> list[pipeline.Unit]:
        return pipeline.build_stage(
            project,
            None,
            BUILDER,
            units(project),
            profile="opt",
            progress=lambda _m: None,
            rebuild=rebuild,
        )

    assert [u.target.name for u in build(rebuild=False)] == ["amd64", "arm64"]
    assert build(rebuild=False) == []
    # a source change rebuilds everything of that workspace
    (project.workspace_path / "main.rs").write_text("fn main() { println!(); }\n")
    assert len(build(rebuild=False)) == 2
    # a binary changed behind factory's back is rebuilt
    path = Dist.of(project).binary("hello", "arm64", "hello")
    path.write_bytes(b"tampered")
    assert [u.target.name for u in build(rebuild=False)] == ["arm64"]
    assert len(build(rebuild=True)) == 2
    assert calls == [["amd64", "arm64"], ["amd64", "arm64"], ["arm64"], ["amd64", "arm64"]]


def test_fingerprints_follow_the_target_table_and_the_profile(project: cfg.Config) -> None:
    unit_a, unit_b = units(project)
    common: dict[str, Any] = {"builder_tag": "b", "driver": "cargo", "sources": "s"}
    a_of: dict[str, Any] = {"image": unit_a.image, "target": unit_a.target}
    b_of: dict[str, Any] = {"image": unit_b.image, "target": unit_b.target}
    a = stamps.build_fingerprint(profile="opt", **a_of, **common)
    assert a == stamps.build_fingerprint(profile="opt", **a_of, **common)
    assert a != stamps.build_fingerprint(profile="dbg", **a_of, **common)
    assert a != stamps.build_fingerprint(profile="opt", **b_of, **common)
    assert a != stamps.build_fingerprint(profile="opt", **a_of, **{**common, "builder_tag": "c"})
    # Features, and the rustflags cargo would take from factory's environment, are inputs too.
    featured = dataclasses.replace(unit_a.image, features=("vendored",))
    assert a != stamps.build_fingerprint(profile="opt", **{**a_of, "image": featured}, **common)
    flagged = {"RUSTFLAGS": "--cfg tokio_unstable"}
    assert a != stamps.build_fingerprint(profile="opt", **a_of, **common, environ=flagged)


def test_tree_digest_ignores_build_output(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "lib.rs").write_text("x")
    before = stamps.tree_digest(tmp_path)
    (tmp_path / "target" / "release").mkdir(parents=True)
    (tmp_path / "target" / "release" / "junk").write_text("y")
    (tmp_path / "bazel-out").mkdir()
    (tmp_path / "bazel-out" / "x").write_text("y")
    assert stamps.tree_digest(tmp_path) == before
    (tmp_path / "src" / "lib.rs").write_text("z")
    assert stamps.tree_digest(tmp_path) != before


def _entry(image: str, target: str, sha: str, passed: bool) -> dict[str, Any]:
    return {"image": image, "target": target, "sha256": sha, "passed": passed}


class FakeResult:
    def __init__(self, image: str, target: str, sha: str, passed: bool) -> None:
        self.image, self.target, self.passed = image, target, passed
        self.binary = Binary(
            image=image, target=target, path=Path("/x"), sha256=sha, size=1, profile="opt"
        )
        self._json = _entry(image, target, sha, passed)

    def to_json(self) -> dict[str, Any]:
        return self._json


class FakeReport:
    def __init__(self, results: list[FakeResult]) -> None:
        self.results = results
        self.passed = all(r.passed for r in results)
        self.failing = [r for r in results if not r.passed]


class FakeRunner:
    def __enter__(self) -> FakeRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def built_with_a_fake_runner(project: cfg.Config, monkeypatch: pytest.MonkeyPatch) -> None:
    """Binaries on disk (fake compile) and validation's container replaced by a no-op."""
    monkeypatch.setattr(pipeline, "_compile", fake_compile([]))
    pipeline.build_stage(
        project,
        None,
        BUILDER,
        units(project),
        profile="opt",
        rebuild=False,
        progress=lambda _m: None,
    )
    monkeypatch.setattr(validate_mod, "open_runner", lambda *a: FakeRunner())


def validate_with(
    monkeypatch: pytest.MonkeyPatch, passes: Callable[[str], bool] = lambda target: True
) -> list[list[str]]:
    """The audits replaced by a fake passing the targets ``passes`` names; returns its calls."""
    calls: list[list[str]] = []

    def fake_validate(
        subjects: Sequence[Any], runner: Any, *, guest: Any = None, progress: Any
    ) -> FakeReport:
        calls.append([s.target.name for s in subjects])
        return FakeReport(
            [
                FakeResult(s.binary.image, s.target.name, s.binary.sha256, passes(s.target.name))
                for s in subjects
            ]
        )

    monkeypatch.setattr(validate_mod, "validate", fake_validate)
    return calls


def test_validation_is_reused_only_for_the_same_binary_and_smoke(
    project: cfg.Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    built_with_a_fake_runner(project, monkeypatch)
    calls = validate_with(monkeypatch)

    def stage(c: cfg.Config) -> tuple[tuple[str, str], ...]:
        return pipeline.validate_stage(
            c, c.image, None, profile="opt", progress=lambda _m: None
        ).validated

    assert len(stage(project)) == 2
    assert stage(project) == ()
    changed = cfg.load(project.source)
    smoke = cfg.SmokeConfig(args=("--twice",))
    import dataclasses

    changed = dataclasses.replace(
        changed, image=(dataclasses.replace(changed.image[0], smoke=smoke),)
    )
    assert len(stage(changed)) == 2
    assert stage(changed) == ()
    sixteen = dataclasses.replace(smoke, page_sizes=(16384,))
    changed = dataclasses.replace(
        changed, image=(dataclasses.replace(changed.image[0], smoke=sixteen),)
    )
    assert len(stage(changed)) == 2  # asking for 16K pages too judges the binaries again
    assert calls == [["amd64", "arm64"]] * 3


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"schema": "factory.report/v1", "results": [', "cannot be read"),
        ('{"schema": "other/v1", "results": []}', "is not a factory.report/v1 report"),
    ],
)
def test_an_unusable_report_vouches_for_nothing_and_is_rewritten(
    project: cfg.Config, monkeypatch: pytest.MonkeyPatch, text: str, reason: str
) -> None:
    built_with_a_fake_runner(project, monkeypatch)
    validate_with(monkeypatch)
    lines: list[str] = []

    def stage() -> tuple[tuple[str, str], ...]:
        return pipeline.validate_stage(
            project, project.image, None, profile="opt", progress=lines.append
        ).validated

    assert len(stage()) == 2  # the stamps now record the smoke expectations
    report_path = Dist.of(project).report
    report_path.write_text(text)
    assert stage() == (("hello", "amd64"), ("hello", "arm64"))  # stamps alone are not enough
    assert any(reason in line and "rewrites it" in line for line in lines), lines
    assert json.loads(report_path.read_text())["passed"] is True
    lines.clear()
    assert stage() == ()
    assert not any("rewrites it" in line for line in lines)


def test_a_failed_validation_stops_the_pipeline(
    project: cfg.Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    from factory.errors import ValidationError

    built_with_a_fake_runner(project, monkeypatch)
    validate_with(monkeypatch, passes=lambda target: target == "amd64")
    monkeypatch.setattr(validate_mod, "failure_message", lambda failing, path: "arm64 failed")
    with pytest.raises(ValidationError, match="arm64 failed"):
        pipeline.validate_stage(
            project, project.image, None, profile="opt", progress=lambda _m: None
        )
    report = json.loads((project.root / "dist" / "report.json").read_text())
    assert report["passed"] is False


def test_code_digest_covers_every_module_of_a_package_and_fails_on_an_unknown_name() -> None:
    files = {p.name for p in fingerprint.module_files("factory.build")}
    assert {"__init__.py", "binary.py", "cargo.py", "bazel.py", "bazel_stage.py"} <= files
    assert [p.name for p in fingerprint.module_files("factory.validate.report")] == ["report.py"]
    with pytest.raises(RuntimeError, match="no_such_module"):
        fingerprint.code_digest(("factory.no_such_module",))
