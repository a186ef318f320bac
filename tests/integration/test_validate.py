"""Validation against the real thing: fixtures compiled in a container, real qemu-user runs.

The test image (validate_fixtures/Dockerfile) is built FROM the bootstrapped Debian base with
trixie-backports' qemu-user and Debian's C compilers for musl (x86_64 and aarch64) and glibc.
Every fixture binary is compiled in this session; nothing is downloaded.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from factory.build.binary import Binary, file_digest
from factory.cli import main
from factory.engine import docker_engine as engine
from factory.model import targets
from factory.model.config import SmokeConfig
from factory.validate import elf as elfcheck
from factory.validate.runner import ContainerRunner, container_runner
from factory.validate.smoke import NO_AVX512, host_flags
from factory.validate.stage import Subject, validate_one

HELLO = SmokeConfig(args=("x",), stdout=r"^hello from 1 args", timeout=20)


@pytest.fixture(scope="session")
def runner(
    client: docker.DockerClient, qemu_image: str, fixtures: Path
) -> Iterator[ContainerRunner]:
    with container_runner(client, qemu_image, fixtures) as running:
        yield running


@pytest.fixture(scope="session")
def flags(runner: ContainerRunner) -> frozenset[str]:
    return host_flags(runner)


def subject(path: Path, target: str, smoke: SmokeConfig = HELLO) -> Subject:
    binary = Binary.from_disk(path, image="hello", target=target, profile="opt")
    return Subject(binary=binary, target=targets.get(target), smoke=smoke)


def errors(report: elfcheck.ElfReport) -> set[str]:
    return {f.code for f in report.findings if f.severity == "error"}


@pytest.mark.parametrize(
    ("name", "target", "cpu", "linkage"),
    [
        ("musl-amd64", "amd64", "qemu64", "static"),
        ("musl-amd64-pie", "amd64", "qemu64", "static-pie"),
        ("musl-arm64", "arm64", "cortex-a53", "static"),
        ("musl-arm64", "arm64_v9a", "neoverse-n2", "static"),
    ],
)
def test_good_static_musl_binaries_pass(
    fixtures: Path, runner: ContainerRunner, flags: frozenset[str], name: str, target: str,
    cpu: str, linkage: str,
) -> None:  # fmt: skip
    result = validate_one(subject(fixtures / name, target), runner, flags)
    assert result.passed, result.problems
    assert result.elf.findings == ()
    assert result.elf.facts is not None
    assert result.elf.facts.linkage == linkage
    assert result.elf.facts.libc == "musl"
    assert result.smoke.status == "passed"
    assert result.smoke.cpu == cpu
    assert result.smoke.stdout == "hello from 1 args\n"


def test_v3_build_runs_on_haswell_and_faults_on_nehalem(
    fixtures: Path, runner: ContainerRunner, flags: frozenset[str]
) -> None:
    result = validate_one(subject(fixtures / "vector-v3", "amd64_v3"), runner, flags)
    assert result.passed, result.problems
    assert (result.smoke.status, result.smoke.cpu) == ("passed", "Haswell-noTSX")
    assert result.isa is not None
    assert result.isa.counts["AVX2"] > 0
    assert result.isa.counts["AVX-512"] == 0
    lower = result.lower_level
    assert (lower.status, lower.cpu, lower.signal) == ("faulted", "Nehalem", "SIGILL")


def test_v4_runs_natively_when_the_host_has_avx512(
    fixtures: Path, runner: ContainerRunner, flags: frozenset[str]
) -> None:
    result = validate_one(subject(fixtures / "vector-v4", "amd64_v4"), runner, flags)
    assert result.isa is not None and result.isa.counts["AVX-512"] > 0
    if {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"} <= flags:
        assert (result.smoke.status, result.smoke.cpu) == ("passed", "native")
    else:
        assert result.smoke.status == "not run"
        assert result.smoke.reason == NO_AVX512
    assert result.passed
    # QEMU implements no AVX-512: one level below, on Haswell, the v4 code faults.
    assert (result.lower_level.status, result.lower_level.signal) == ("faulted", "SIGILL")


def test_v2_build_one_level_below_is_reported(
    fixtures: Path, runner: ContainerRunner, flags: frozenset[str]
) -> None:
    result = validate_one(subject(fixtures / "vector-v2", "amd64_v2"), runner, flags)
    assert result.passed, result.problems
    assert result.smoke.cpu == "Nehalem"
    assert result.lower_level.cpu == "qemu64"
    assert result.lower_level.status in ("faulted", "ran")  # informational either way


@pytest.mark.parametrize(
    ("name", "target", "codes"),
    [
        ("glibc-amd64", "amd64", {"libc", "irelative"}),
        ("glibc-arm64", "arm64", {"libc", "irelative"}),
        ("dynamic", "amd64", {"interpreter", "needed", "libc"}),
        ("unstripped", "amd64", {"symtab", "debug"}),
        ("musl-arm64", "amd64", {"machine"}),
        ("musl-amd64", "arm64_v8_2a", {"machine"}),
    ],
)
def test_bad_binaries_get_the_right_finding(
    fixtures: Path, runner: ContainerRunner, flags: frozenset[str], name: str, target: str,
    codes: set[str],
) -> None:  # fmt: skip
    result = validate_one(subject(fixtures / name, target), runner, flags)
    assert not result.passed
    assert errors(result.elf) == codes
    assert result.smoke.status == "not run"


def test_truncated_file_is_a_finding(
    fixtures: Path, runner: ContainerRunner, flags: frozenset[str]
) -> None:
    result = validate_one(subject(fixtures / "truncated", "amd64"), runner, flags)
    assert not result.passed
    assert errors(result.elf) & {"truncated", "not-elf"}
    assert result.to_json()["passed"] is False


def test_exit_1_fails_the_smoke_run(
    fixtures: Path, runner: ContainerRunner, flags: frozenset[str]
) -> None:
    result = validate_one(subject(fixtures / "exit1-arm64", "arm64"), runner, flags)
    assert result.elf.passed
    assert result.smoke.status == "failed"
    assert result.smoke.reason == "exit code 1, expected 0: exit1: failing on purpose"


def test_hang_times_out(fixtures: Path, runner: ContainerRunner, flags: frozenset[str]) -> None:
    smoke = SmokeConfig(timeout=2)
    result = validate_one(subject(fixtures / "hang", "amd64_v3", smoke), runner, flags)
    assert result.smoke.status == "failed"
    assert result.smoke.reason == "timed out after 2 s"
    assert 2 <= result.smoke.seconds < 10
    assert not result.passed


# --- pyelftools against binutils' readelf -------------------------------------------------


def readelf(client: docker.DockerClient, image: str, fixtures: Path, name: str) -> str:
    output: bytes = client.containers.run(
        image,
        ["readelf", "-hlSdrW", f"/fx/{name}"],
        volumes={str(fixtures): {"bind": "/fx", "mode": "ro"}},
        network_mode="none",
        labels=engine.labels(purpose="test-readelf"),
        remove=True,
    )
    return output.decode()


@pytest.mark.parametrize(
    "name",
    ["musl-amd64", "musl-amd64-pie", "musl-arm64", "glibc-amd64", "glibc-arm64", "dynamic",
     "unstripped"],
)  # fmt: skip
def test_findings_agree_with_readelf(
    client: docker.DockerClient, qemu_image: str, fixtures: Path, name: str
) -> None:
    text = readelf(client, qemu_image, fixtures, name)
    facts = elfcheck.inspect(fixtures / name)
    machine = re.search(r"Machine:\s+(.+)", text)
    assert machine is not None
    expected_machine = {"Advanced Micro Devices X86-64": "EM_X86_64", "AArch64": "EM_AARCH64"}
    assert facts.machine == expected_machine[machine.group(1).strip()]
    assert (facts.interpreter is not None) == ("Requesting program interpreter" in text)
    assert list(facts.needed) == re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", text)
    stack = re.search(r"GNU_STACK(?:\s+\S+){5}\s+(\S+)", text)
    assert stack is not None
    assert facts.stack == ("executable" if "E" in stack.group(1) else "non-executable")
    assert facts.symtab == bool(re.search(r"\]\s+\.symtab\s", text))
    assert bool(facts.debug_sections) == bool(re.search(r"\]\s+\.debug_\w+\s", text))
    assert facts.irelative == len(re.findall(r"_IRELATIV", text))
    type_line = re.search(r"Type:\s+(\w+)", text)
    assert type_line is not None
    assert facts.elf_type == f"ET_{type_line.group(1)}"


# --- factory validate, the command -----------------------------------------------------


def make_project(root: Path, fixtures: Path, binaries: dict[str, str]) -> Path:
    (root / "images.toml").write_text(
        """
[workspace]
path = "."

[[image]]
name = "hello"
binary = "hello"
targets = ["amd64", "amd64_v3", "amd64_v4", "arm64"]

[image.smoke]
args = ["x"]
stdout = '^hello from 1 args'
timeout = 20
"""
    )
    for target, name in binaries.items():
        out = root / "dist" / "bin" / "hello" / target / "hello"
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(fixtures / name, out)
    return root / "images.toml"


def test_factory_validate_passes_and_writes_the_report(
    tmp_path: Path, fixtures: Path, qemu_image: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_project(
        tmp_path,
        fixtures,
        {"amd64": "musl-amd64", "amd64_v3": "vector-v3", "amd64_v4": "vector-v4",
         "arm64": "musl-arm64"},
    )  # fmt: skip
    code = main(["--config", str(config), "validate", "--qemu-image", qemu_image])
    out, err = capsys.readouterr()
    assert code == 0, err
    rows = {line.split()[1]: line for line in out.splitlines()[1:]}
    assert set(rows) == {"amd64", "amd64_v3", "amd64_v4", "arm64"}
    assert "passed on Haswell-noTSX" in rows["amd64_v3"]
    assert "faulted on Nehalem" in rows["amd64_v3"]
    assert "passed on cortex-a53" in rows["arm64"]
    document = json.loads((tmp_path / "dist" / "report.json").read_text())
    assert document["passed"] is True
    shas = {r["target"]: r["sha256"] for r in document["results"]}
    assert shas["arm64"] == file_digest(fixtures / "musl-arm64")[0]


def test_factory_validate_fails_naming_the_targets(
    tmp_path: Path, fixtures: Path, qemu_image: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_project(
        tmp_path,
        fixtures,
        {"amd64": "glibc-amd64", "arm64": "exit1-arm64", "amd64_v3": "musl-amd64"},
    )
    before = containers()
    code = main(
        ["--config", str(config), "--json", "validate", "--qemu-image", qemu_image,
         "-t", "amd64", "-t", "amd64_v3", "-t", "arm64"]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 5
    document = json.loads(out)
    assert document["passed"] is False
    verdicts = {r["target"]: r["passed"] for r in document["results"]}
    assert verdicts == {"amd64": False, "amd64_v3": True, "arm64": False}
    assert "Validation failed for amd64, arm64." in err
    assert containers() == before  # the smoke container is gone


def containers() -> set[str]:
    """This session's factory containers."""
    found = engine.client().containers.list(
        all=True, filters={"label": f"{engine.SESSION_LABEL}={engine.SESSION_ID}"}
    )
    return {c.id for c in found}


def test_factory_validate_runs_in_the_builder_image_by_default(
    tmp_path: Path, fixtures: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --qemu-image the smoke runs happen in the builder (made or reused)."""
    config = make_project(tmp_path, fixtures, {"amd64": "musl-amd64-pie", "arm64": "musl-arm64"})
    dockerfile = Path(__file__).parents[2] / "dockerfiles" / "builder.Dockerfile"
    with config.open("a") as toml:
        toml.write(f'\n[builder]\ndockerfile = "{dockerfile}"\n')
    code = main(["--config", str(config), "--json", "validate", "-t", "amd64", "-t", "arm64"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "builder: " in err
    document = json.loads(out)
    assert [
        (r["target"], r["smoke"]["status"], r["smoke"]["cpu"]) for r in document["results"]
    ] == [
        ("amd64", "passed", "qemu64"),
        ("arm64", "passed", "cortex-a53"),
    ]
