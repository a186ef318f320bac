"""factory.publish.docker_load without an engine: which image a host gets, the docker-save
archive."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from factory.distribution import media_types
from factory.errors import UsageError
from factory.image import assemble as asm
from factory.model.targets import Arch
from factory.publish import docker_load as dockerload
from factory.validate.smoke import cpu_flags
from tests.imagekit import make_project, write_ca_bundle

CPUINFO_V3 = """\
processor	: 0
flags		: fpu cx8 cmov mmx fxsr sse sse2 cx16 lahf_lm popcnt sse4_1 sse4_2 ssse3 avx avx2 \
bmi1 bmi2 f16c fma abm movbe xsave
"""


def _layout(tmp_path: Path, targets: tuple[str, ...]) -> asm.LayoutResult:
    project = make_project(tmp_path / "p", targets)
    [result] = asm.assemble(
        project.config,
        project.config.image,
        None,
        tmp_path / "oci",
        ca_bundle=write_ca_bundle(tmp_path / "ca.crt"),
        environ={"SOURCE_DATE_EPOCH": "0"},
    )
    return result


def test_host_arch() -> None:
    assert dockerload.host_arch("x86_64") is Arch.AMD64
    assert dockerload.host_arch("aarch64") is Arch.ARM64
    with pytest.raises(UsageError, match="neither x86-64 nor AArch64"):
        dockerload.host_arch("riscv64")


def test_cpu_flags_reads_x86_and_arm_lines() -> None:
    """docker load reads the host's flags with the smoke runs' reader (one for both)."""
    assert {"avx2", "sse2"} <= cpu_flags(CPUINFO_V3)
    assert cpu_flags("Features\t: fp asimd atomics\n") == {"fp", "asimd", "atomics"}


def test_choose_prefers_the_baseline_then_the_best_supported_variant(tmp_path: Path) -> None:
    result = _layout(tmp_path, ("amd64_v2", "amd64_v3", "amd64_v4", "arm64", "amd64"))
    flags = cpu_flags(CPUINFO_V3)
    assert dockerload.choose(result.images, Arch.AMD64, flags).target.name == "amd64"
    assert dockerload.choose(result.images, Arch.ARM64, flags).target.name == "arm64"
    variants = [i for i in result.images if not i.target.is_baseline]
    assert dockerload.choose(variants, Arch.AMD64, flags).target.name == "amd64_v3"
    with pytest.raises(UsageError, match="No image in the layout runs on this amd64 host"):
        dockerload.choose(variants, Arch.AMD64, {"sse2"})


def test_the_docker_archive_carries_the_layout_config_and_uncompressed_layer(
    tmp_path: Path,
) -> None:
    result = _layout(tmp_path, ("amd64",))
    [image] = result.images
    archive = dockerload.docker_archive(result.path, image, ["r/greeter:latest"])
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    [manifest] = json.loads(files["manifest.json"])
    assert manifest["RepoTags"] == ["r/greeter:latest"]
    config = files[manifest["Config"]]
    assert media_types.sha256_digest(config) == image.config.digest
    [layer_name] = manifest["Layers"]
    assert json.loads(config)["rootfs"]["diff_ids"] == [
        media_types.sha256_digest(files[layer_name])
    ]
