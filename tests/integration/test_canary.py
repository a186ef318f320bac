"""Published Rust applications, unmodified, built by factory into static musl binaries.

The canaries of bench/canary/canaries.toml are real crates from the crate registry (fetched by
bench/canary/fetch.py, never committed), each built with its own Cargo.lock (`--locked`) through
`factory image` for amd64 and arm64, validated (ELF audit, smoke run under QEMU) and packed. The
default test run builds the small canary (ring's C and assembly on both architectures) and runs
it for real; `uv run pytest -m canary` builds the whole set (an hour or more on 2 cores).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.canary import fetch
from factory.cli import main
from factory.engine import docker_engine as engine
from factory.engine.builder import BuilderImage
from factory.engine.docker_engine import ContainerSpec, Mount

CANARIES = {c.name: c for c in fetch.load_canaries(fetch.CANARIES)}
SMALL = next(c for c in CANARIES.values() if c.small)
TARGETS = ("amd64", "arm64")
QEMU = {"amd64": ("qemu-x86_64", "qemu64"), "arm64": ("qemu-aarch64", "cortex-a53")}


def _source(canary: fetch.Canary) -> Path:
    """The canary's published source, fetched once into bench/canary/crates/."""
    out = fetch.DEFAULT_OUT
    if fetch.main(["--out", str(out), canary.name]) != 0:
        pytest.fail(f"bench/canary/fetch.py could not fetch {canary.name} (its error is above)")
    return out / canary.directory


def _image(canary: fetch.Canary, directory: Path) -> tuple[dict[str, object], Path]:
    """`factory image --json` of the canary for amd64 and arm64: the result and dist/."""
    config = directory / "images.toml"
    config.write_text(canary.images_toml(_source(canary), TARGETS))
    capture = directory / "stdout.json"
    with capture.open("w") as sink, contextlib.redirect_stdout(sink):
        code = main(["-C", str(config), "image", "--json"])
    assert code == 0, f"factory image failed for {canary.name}: see its output above"
    result: dict[str, object] = json.loads(capture.read_text())
    return result, directory / "dist"


def _passed(dist: Path, canary: fetch.Canary) -> dict[str, dict[str, Any]]:
    report = json.loads((dist / "report.json").read_text())
    entries = {e["target"]: e for e in report["results"] if e["image"] == canary.image}
    assert sorted(entries) == sorted(TARGETS)
    for target, entry in entries.items():
        assert entry["passed"], (target, entry)
        assert entry["smoke"]["status"] == "passed", (target, entry["smoke"])
    return entries


@pytest.fixture(scope="module")
def small(
    factory_builder: BuilderImage, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[engine.Container, Path]]:
    """The small canary built and validated for amd64 and arm64, and a container to run it in."""
    _, dist = _image(SMALL, tmp_path_factory.mktemp("small"))
    _passed(dist, SMALL)
    spec = ContainerSpec(
        image=factory_builder.tag,
        purpose="check",
        mounts=(Mount(source=str(dist), target="/dist", read_only=True, bind=True),),
    )
    with engine.container(engine.client(), spec) as box:
        yield box, dist


@pytest.mark.parametrize("target", TARGETS)
def test_the_small_canary_does_real_work_with_its_c_and_assembly(
    small: tuple[engine.Container, Path], target: str
) -> None:
    """ring's assembly and C sign real certificates on the oldest CPU of each architecture."""
    box, _ = small
    binary = f"/dist/bin/{SMALL.image}/{target}/{SMALL.bin}"
    qemu, cpu = QEMU[target]
    out = f"/tmp/certs-{target}"
    args = [a.replace("{dir}", out) for a in SMALL.exercise_args]
    box.run(["mkdir", "-p", out])
    box.run([qemu, "-cpu", cpu, binary, *args])
    listed = box.run(["ls", out]).stdout.split()
    assert set(SMALL.exercise_creates) <= set(listed), listed
    pem = box.run(["cat", f"{out}/cert.pem"]).stdout
    assert pem.startswith("-----BEGIN CERTIFICATE-----"), pem[:80]


def test_the_small_canary_is_static_and_stripped(small: tuple[engine.Container, Path]) -> None:
    box, _ = small
    for target in TARGETS:
        described = box.run(["file", "-b", f"/dist/bin/{SMALL.image}/{target}/{SMALL.bin}"]).stdout
        assert "statically linked" in described or "static-pie linked" in described
        assert "stripped" in described and "not stripped" not in described


@pytest.mark.canary
@pytest.mark.parametrize("name", sorted(n for n, c in CANARIES.items() if not c.small))
def test_a_canary_builds_validates_and_packs(name: str, tmp_path: Path) -> None:
    canary = CANARIES[name]
    _, dist = _image(canary, tmp_path)
    entries = _passed(dist, canary)
    assert all(int(e["size"]) > 0 for e in entries.values())
