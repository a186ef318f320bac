from __future__ import annotations

from pathlib import Path

import pytest

from factory.engine import doctor


def test_binfmt_not_mounted(tmp_path: Path) -> None:
    finding = doctor.check_binfmt(tmp_path)
    assert finding.status is doctor.Status.WARN
    assert "factory doctor --fix" in finding.fix


def test_binfmt_without_qemu(tmp_path: Path) -> None:
    (tmp_path / "status").write_text("enabled\n")
    (tmp_path / "register").write_text("")
    finding = doctor.check_binfmt(tmp_path)
    assert finding.status is doctor.Status.WARN
    assert "qemu-user-binfmt" in finding.fix
    assert "factory doctor --fix" in finding.fix


def test_binfmt_with_qemu(tmp_path: Path) -> None:
    (tmp_path / "status").write_text("enabled\n")
    (tmp_path / "qemu-aarch64").write_text("enabled\n")
    finding = doctor.check_binfmt(tmp_path)
    assert finding.status is doctor.Status.OK
    assert finding.detail == "qemu-aarch64"


def test_disk_thresholds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    for free, status in [
        (50 * 1024**3, doctor.Status.OK),
        (5 * 1024**3, doctor.Status.WARN),
        (1024**3, doctor.Status.FAIL),
    ]:
        monkeypatch.setattr(shutil, "disk_usage", lambda _p, f=free: usage(0, 0, f))
        assert doctor.check_disk(tmp_path / "missing" / "dir").status is status


def test_bootstrap_tools_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    monkeypatch.setattr(shutil, "which", lambda _name: None)
    assert doctor.check_bootstrap_tools(base_present=False).status is doctor.Status.FAIL
    assert doctor.check_bootstrap_tools(base_present=True).status is doctor.Status.WARN


def test_a_silent_loopback_registry_is_only_a_warning() -> None:
    finding = doctor.check_registry("127.0.0.1:9/factory", timeout=1)
    assert finding.status is doctor.Status.WARN
    assert "starts a local registry" in finding.fix


def test_the_engine_is_named_by_what_answers() -> None:
    podman = {"Version": "4.3.1", "Components": [{"Name": "Podman Engine"}, {"Name": "Conmon"}]}
    docker_engine = {"Version": "20.10.24", "Components": [{"Name": "Engine"}]}
    assert doctor.engine_kind(podman) == "Podman"
    assert doctor.engine_kind(docker_engine) == "Docker"
    assert doctor.engine_kind({}) == "Docker"
