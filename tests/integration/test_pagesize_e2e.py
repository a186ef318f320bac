"""Smoke runs under a 16K-page kernel for real: the page-size image (qemu-system-aarch64 and
Debian's linux-image-*-arm64-16k), factory's /init and initramfs, `factory validate`.

Each boot takes a few seconds (about 3 s on the 2-core machine this was written on). The C
fixtures come from validate_fixtures/ (compiled by the `fixtures` session fixture); the normal
smoke runs use the validation test image's qemu-user (`--qemu-image`), as test_validate.py does.

The jemalloc proof at the end builds tests/workloads/jemalloc_pages through factory for arm64
twice: with jemalloc's 4K-page assumption it fails under 16K pages with jemalloc's own message,
with factory's default (64K pages assumed) it passes.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import docker
import pytest

from factory.cli import main
from factory.engine import docker_engine as engine
from factory.engine import pagesize_image
from factory.engine.builder import BuilderImage
from factory.model.config import DEFAULT_BASE
from factory.validate import pagesize

ROOT = Path(__file__).resolve().parents[2]
JEMALLOC_WORKSPACE = ROOT / "tests" / "workloads" / "jemalloc_pages"
CXX_WRAPPER = "/opt/factory/bin/aarch64-linux-musl-c++"
FOUR_K = "pagesize4k: page size is not 4096 (16384)"


@pytest.fixture(scope="session")
def guest_image(client: docker.DockerClient) -> str:
    """The page-size image, built once per content hash (about 2 min 15 s from a warm base)."""
    return pagesize_image.ensure_image(client, base=DEFAULT_BASE)


def project(root: Path, fixtures: Path, binaries: dict[tuple[str, str], str]) -> Path:
    """An images.toml of two images asking for 16K pages, with their binaries in dist/bin."""
    (root / "images.toml").write_text(
        """
[workspace]
path = "."

[[image]]
name = "assumes-4k"
binary = "pagesize4k"
targets = ["amd64", "arm64"]

[image.smoke]
args = ["x"]
stdout = '^hello from 1 args'
timeout = 20
page_sizes = [4096, 16384]

[[image]]
name = "any-pages"
binary = "pagesize_any"
targets = ["arm64"]

[image.smoke]
args = ["x"]
stdout = '^hello from 1 args'
timeout = 20
page_sizes = [4096, 16384]
"""
    )
    for (image, target), name in binaries.items():
        binary = "pagesize4k" if image == "assumes-4k" else "pagesize_any"
        out = root / "dist" / "bin" / image / target / binary
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(fixtures / name, out)
    return root / "images.toml"


def session_containers() -> set[str]:
    found = engine.client().containers.list(
        all=True, filters={"label": f"{engine.SESSION_LABEL}={engine.SESSION_ID}"}
    )
    return {c.name for c in found}


def guest_folders() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("factory-guest-*"))


def test_a_binary_assuming_4k_pages_fails_under_16k_pages_and_one_that_does_not_passes(
    tmp_path: Path,
    fixtures: Path,
    qemu_image: str,
    guest_image: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = project(
        tmp_path,
        fixtures,
        {
            ("assumes-4k", "amd64"): "pagesize4k-amd64",
            ("assumes-4k", "arm64"): "pagesize4k-arm64",
            ("any-pages", "arm64"): "pagesize-any-arm64",
        },
    )
    before, folders_before = session_containers(), guest_folders()
    code = main(["--config", str(config), "--json", "validate", "--qemu-image", qemu_image])
    out, err = capsys.readouterr()
    assert code == 5, err
    results = {(r["image"], r["target"]): r for r in json.loads(out)["results"]}

    four_k = results[("assumes-4k", "arm64")]
    assert four_k["smoke"]["status"] == "passed"  # qemu-user: the host's 4K pages
    [sixteen] = four_k["page_sizes"]
    assert sixteen["status"] == "failed"
    assert sixteen["guest_page_size"] == 16384
    assert sixteen["kernel"].endswith("-arm64-16k")
    assert sixteen["cpu"] == "max"
    assert sixteen["exit_code"] == 134
    assert sixteen["stderr"] == FOUR_K + "\n"
    assert sixteen["reason"].startswith(f"exit code 134 (killed by SIGABRT), expected 0: {FOUR_K}")
    assert sixteen["seconds"] < pagesize.BOOT_SECONDS
    assert four_k["passed"] is False
    assert "assumes-4k/arm64: smoke with 16K pages: exit code 134 (killed by SIGABRT)" in err
    assert FOUR_K in err

    any_pages = results[("any-pages", "arm64")]
    assert any_pages["passed"] is True, any_pages
    assert any_pages["smoke"]["stdout"] == "hello from 1 args (page size 4096)\n"
    [sixteen] = any_pages["page_sizes"]
    assert (sixteen["status"], sixteen["guest_page_size"]) == ("passed", 16384)
    assert sixteen["stdout"] == "hello from 1 args (page size 16384)\n"

    amd64: dict[str, Any] = results[("assumes-4k", "amd64")]
    assert amd64["passed"] is True
    assert [(r["status"], r["reason"]) for r in amd64["page_sizes"]] == [
        ("not run", pagesize.NOT_ARM64)
    ]
    assert session_containers() == before  # the smoke and guest containers are gone
    assert guest_folders() == folders_before  # and so are the initramfs files


# --- jemalloc built for 4K pages, and for 16K ----------------------------------------------


@pytest.fixture(scope="module")
def jemalloc_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("jemalloc")


def jemalloc_project(root: Path, lg_page: int | None) -> Path:
    """A copy of the jemalloc workload with its images.toml; `lg_page` set in .cargo/config.toml
    (forced, and for the aarch64 musl target too, which jemalloc's build script reads first).
    Both cases use one copy, so the second compiles only what the setting changes (jemalloc and
    what links it), not the standard library again."""
    workspace = root / "ws"
    if not workspace.exists():
        shutil.copytree(JEMALLOC_WORKSPACE, workspace, ignore=shutil.ignore_patterns("target"))
    shutil.rmtree(workspace / ".cargo", ignore_errors=True)
    if lg_page is not None:
        (workspace / ".cargo").mkdir()
        (workspace / ".cargo" / "config.toml").write_text(
            "[env]\n"
            f'JEMALLOC_SYS_WITH_LG_PAGE = {{ value = "{lg_page}", force = true }}\n'
            "AARCH64_UNKNOWN_LINUX_MUSL_JEMALLOC_SYS_WITH_LG_PAGE = "
            f'{{ value = "{lg_page}", force = true }}\n'
        )
    (workspace / "images.toml").write_text(
        """
[[image]]
name = "jemalloc-pages"
binary = "jemalloc_pages"
targets = ["arm64"]

[image.smoke]
args = ["x"]
stdout = '^jemalloc ok: '
timeout = 30
page_sizes = [4096, 16384]
"""
    )
    return workspace / "images.toml"


@pytest.mark.parametrize(
    ("lg_page", "passes"),
    [(12, False), (None, True)],
    ids=["LG_PAGE=12 (4K) fails", "the driver's default (16, 64K) passes"],
)
def test_jemalloc_built_for_4k_pages_fails_under_16k_pages(
    jemalloc_root: Path,
    factory_builder: BuilderImage,
    guest_image: str,
    lg_page: int | None,
    passes: bool,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = jemalloc_project(jemalloc_root, lg_page)
    assert main(["--config", str(config), "build", "-t", "arm64"]) == 0, capsys.readouterr().err
    capsys.readouterr()
    code = main(["--config", str(config), "--json", "validate", "-t", "arm64"])
    out, err = capsys.readouterr()
    [result] = json.loads(out)["results"]
    assert result["smoke"]["status"] == "passed", result["smoke"]  # qemu-user: 4K pages
    [sixteen] = result["page_sizes"]
    assert sixteen["guest_page_size"] == 16384
    if passes:
        assert code == 0, err
        assert sixteen["status"] == "passed", sixteen
        assert sixteen["stdout"].startswith("jemalloc ok: ")
    else:
        assert code == 5
        assert sixteen["status"] == "failed"
        assert "<jemalloc>: Unsupported system page size" in sixteen["stderr"]
        assert "<jemalloc>: Unsupported system page size" in err
