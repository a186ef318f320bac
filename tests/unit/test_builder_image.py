"""The builder image's content hash and build context, without an engine."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from factory.engine import builder, images
from factory.errors import UsageError

ROOT = Path(__file__).resolve().parents[2]
BUILDER = ROOT / "dockerfiles" / "builder.Dockerfile"


def _context(tmp_path: Path, script: str = "echo hi\n") -> Path:
    dockerfile = tmp_path / "builder.Dockerfile"
    dockerfile.write_text("ARG BASE\nFROM ${BASE}\nCOPY builder/ /opt/\n")
    (tmp_path / "builder").mkdir(exist_ok=True)
    setup = tmp_path / "builder" / "setup.sh"
    setup.write_text(script)
    setup.chmod(0o755)
    (tmp_path / "registry.Dockerfile").write_text("FROM scratch\n")
    return dockerfile


def test_context_holds_the_dockerfile_and_its_directory_only(tmp_path: Path) -> None:
    context = images.load_context(_context(tmp_path))
    assert [(name, mode) for name, mode, _ in context.files] == [
        ("builder.Dockerfile", 0o644),
        ("builder/setup.sh", 0o755),
    ]
    with tarfile.open(fileobj=context.tar()) as archive:
        assert archive.getnames() == ["builder.Dockerfile", "builder/setup.sh"]
        assert all(m.mtime == 0 for m in archive.getmembers())


def test_tar_is_deterministic(tmp_path: Path) -> None:
    context = images.load_context(_context(tmp_path))
    assert context.tar().getvalue() == context.tar().getvalue()


def test_hash_is_stable_and_tracks_every_input(tmp_path: Path) -> None:
    dockerfile = _context(tmp_path)
    args = {"BASE": "factory-bootstrap/debian:trixie-slim"}
    first = images.content_hash(images.load_context(dockerfile), args, "sha256:aa")
    assert first == images.content_hash(images.load_context(dockerfile), args, "sha256:aa")
    assert len(first) == 16
    assert images.tag_for(builder.REPOSITORY, first) == f"factory-builder:{first}"
    # An unrelated Dockerfile beside it changes nothing.
    (tmp_path / "registry.Dockerfile").write_text("FROM scratch\nLABEL x=y\n")
    assert first == images.content_hash(images.load_context(dockerfile), args, "sha256:aa")
    # The base image's id, a build argument, a context file: each changes the tag.
    assert first != images.content_hash(images.load_context(dockerfile), args, "sha256:bb")
    other_args = {"BASE": "debian:trixie-slim"}
    assert first != images.content_hash(images.load_context(dockerfile), other_args, "sha256:aa")
    _context(tmp_path, script="echo changed\n")
    assert first != images.content_hash(images.load_context(dockerfile), args, "sha256:aa")


def test_missing_dockerfile_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        images.load_context(tmp_path / "nope.Dockerfile")


def test_the_shipped_dockerfile_suits_the_legacy_builder() -> None:
    text = BUILDER.read_text()
    instructions = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    assert not text.lower().startswith("# syntax")
    assert not any("--mount" in line for line in instructions)
    assert "ARG BASE" in text and "FROM ${BASE}" in text
    assert "dpkg --print-architecture" in text
    # No package mirror is written into the repository.
    assert "http://" not in text and "https://" not in text
    names = [name for name, _, _ in images.load_context(BUILDER).files]
    assert "builder/setup-sysroots.sh" in names
    assert "builder/hello.cpp" in names
    assert "builder/cmake-probe/CMakeLists.txt" in names
    # libunwind is LLVM's, built for musl in the runtimes image: no glibc fortify shim.
    assert not any("fortify" in name for name in names)


def test_summary_reads_the_labels() -> None:
    image = builder.BuilderImage(
        tag="factory-builder:0123456789abcdef",
        id="sha256:1",
        labels={
            "org.factory.llvm": "21.1.8",
            "org.factory.musl": "1.2.5",
            "org.factory.rust": "1.96.0",
            "org.factory.std": "source",
        },
    )
    assert image.summary.endswith("LLVM 21.1.8, musl 1.2.5, Rust 1.96.0, std source")
    assert builder.describe(image)["std"] == "source"


def test_the_builder_copies_its_cpp_runtime_from_the_runtimes_image(tmp_path: Path) -> None:
    assert builder.uses_runtimes(BUILDER)
    text = BUILDER.read_text()
    assert "FROM ${RUNTIMES} AS runtimes" in text
    assert "COPY --from=runtimes /opt/factory/runtimes" in text
    # A builder of a team's own that does not declare the argument is not given it.
    assert not builder.uses_runtimes(_context(tmp_path))
    runtimes = ROOT / "dockerfiles" / "runtimes.Dockerfile"
    assert "ARG BASE" in runtimes.read_text() and "FROM ${BASE}" in runtimes.read_text()


def test_a_builder_of_ones_own_can_build_on_factorys() -> None:
    example = ROOT / "examples" / "builders" / "sccache-redis.Dockerfile"
    assert builder.derives_from_factory(example)
    assert "FROM ${FACTORY_BUILDER}" in example.read_text()
    assert not builder.derives_from_factory(BUILDER), "factory's own is not built on itself"


def test_the_runtimes_tag_is_part_of_the_builders_identity(tmp_path: Path) -> None:
    context = images.load_context(_context(tmp_path))
    base = {"BASE": "factory-bootstrap/debian:trixie-slim"}
    one = images.content_hash(context, {**base, "RUNTIMES": "factory-runtimes:1"}, "sha256:a")
    two = images.content_hash(context, {**base, "RUNTIMES": "factory-runtimes:2"}, "sha256:a")
    assert one != two
