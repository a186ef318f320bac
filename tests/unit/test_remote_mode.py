"""Remote mode without an engine: how factory decides one is remote, which files of a
workspace it would upload, and what it refuses (the end-to-end run through a proxy that refuses
host mounts is tests/integration/test_remote_engine.py)."""

from __future__ import annotations

import io
import os
import re
import socket
import tarfile
from pathlib import Path, PurePosixPath
from typing import Any

import docker
import pytest

from factory.build.job import BAZEL_CACHE, CARGO_CACHE
from factory.engine import binfmt, docker_engine, doctor, local_registry, locality, transfer
from factory.errors import EngineError, UsageError
from factory.publish import docker_load
from factory.util import upload_set


@pytest.mark.parametrize(
    ("environ", "remote", "plain"),
    [
        ({}, False, False),
        ({"DOCKER_HOST": "unix:///run/user/1000/docker.sock"}, False, False),
        ({"DOCKER_HOST": "tcp://10.0.0.5:2375"}, True, True),
        ({"DOCKER_HOST": "tcp://10.0.0.5:2376", "DOCKER_TLS_VERIFY": "1"}, True, False),
        ({"DOCKER_HOST": "ssh://ci@build-host"}, True, False),
        ({"DOCKER_HOST": "unix:///tmp/forwarded.sock", "FACTORY_REMOTE_ENGINE": "1"}, True, False),
        ({"DOCKER_HOST": "tcp://127.0.0.1:2375", "FACTORY_REMOTE_ENGINE": "0"}, False, True),
    ],
)
def test_the_engine_is_remote_unless_it_is_a_socket_of_this_host(
    environ: dict[str, str], remote: bool, plain: bool
) -> None:
    where = locality.locality(environ)
    assert (where.remote, where.plain_tcp) == (remote, plain)


def test_the_plain_tcp_warning_names_the_host_and_the_fix() -> None:
    text = locality.plain_tcp_warning(locality.locality({"DOCKER_HOST": "tcp://10.0.0.5:2375"}))
    assert "root on 10.0.0.5" in text and "DOCKER_TLS_VERIFY=1" in text


def _tree(top: Path) -> None:
    for name in ("target/release/x", "src/target/mod.rs", "src/main.rs", "sub/gen/a.rs",
                 "sub/keep/b.rs", "sub/x.log", "sub/y.log", ".git/HEAD", "vendor/v.rs",
                 "notes.tmp", "Cargo.toml", "Cargo.lock", "member/.git"):  # fmt: skip
        (top / name).parent.mkdir(parents=True, exist_ok=True)
        (top / name).write_text(name)
    (top / ".gitignore").write_text("Cargo.lock\n*.tmp\n")
    (top / "sub" / ".gitignore").write_text("*.log\n!y.log\ngen/\n")
    (top / ".dockerignore").write_text("# comment\nvendor\n!notes.tmp\n")
    (top / "linked").symlink_to("src")


def test_the_upload_leaves_out_target_git_and_what_ignore_files_exclude(tmp_path: Path) -> None:
    _tree(tmp_path)
    chosen = sorted(str(p) for p in upload_set.files(tmp_path))
    assert chosen == [
        ".dockerignore", ".gitignore", "Cargo.lock", "Cargo.toml", "linked", "notes.tmp",
        "src/main.rs", "src/target/mod.rs", "sub/.gitignore", "sub/keep/b.rs", "sub/y.log",
    ]  # fmt: skip


def test_the_archive_keeps_modes_and_times_and_belongs_to_root(tmp_path: Path) -> None:
    script = tmp_path / "build.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    os.utime(script, (1_000_000, 1_000_000))
    (tmp_path / "link").symlink_to("build.sh")
    listening = socket.socket(socket.AF_UNIX)
    listening.bind(str(tmp_path / "sock"))  # a socket has no tar form: left out
    sink = io.BytesIO()
    paths = [PurePosixPath(n) for n in ("build.sh", "sock", "link")]
    assert transfer.write_archive(tmp_path, paths, sink) == 2
    with tarfile.open(fileobj=io.BytesIO(sink.getvalue())) as tar:
        made, link = tar.getmembers()
    listening.close()
    assert (made.name, made.mode, made.mtime, made.uid, made.uname) == (
        "build.sh",
        0o755,
        1_000_000,
        0,
        "",
    )
    assert (link.issym(), link.linkname) == (True, "build.sh")


def test_a_local_engine_gets_a_bind_mount_and_no_upload(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.delenv("FACTORY_REMOTE_ENGINE", raising=False)
    engine: Any = None  # nothing may be asked of it
    with transfer.directory_mount(engine, "img", tmp_path, "/src", progress=print) as mount:
        assert mount == docker_engine.Mount(
            source=str(tmp_path), target="/src", read_only=True, bind=True
        )


def test_a_bind_mount_never_reaches_a_remote_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.0.0.5:2376")
    bound = docker_engine.Mount(source="/home/me/ws", target="/src", bind=True)
    with pytest.raises(EngineError, match="mount /home/me/ws of this host"):
        docker_engine._docker_mounts([bound])
    volume = docker_engine.Mount(source="factory-cache", target="/cache")
    assert [m["Type"] for m in docker_engine._docker_mounts([volume])] == ["volume"]


def test_the_cache_volumes_are_named_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FACTORY_CACHE_VOLUME", raising=False)
    assert (CARGO_CACHE.volume, BAZEL_CACHE.volume) == ("factory-cache", "factory-bazel-cache")
    monkeypatch.setenv("FACTORY_CACHE_VOLUME", "ci-7-cache")
    assert (CARGO_CACHE.volume, BAZEL_CACHE.volume) == ("ci-7-cache", "ci-7-cache-bazel")
    assert CARGO_CACHE.mount().source == "ci-7-cache"
    monkeypatch.setenv("FACTORY_CACHE_VOLUME", "../etc")
    with pytest.raises(UsageError, match="not a volume name"):
        _ = CARGO_CACHE.volume


def test_what_needs_the_engines_host_is_refused_with_a_remote_engine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.0.0.5:2376")
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
    published = re.escape("published on 10.0.0.5's 127.0.0.1")
    with pytest.raises(EngineError, match=published) as refused:
        local_registry.refuse_remote("127.0.0.1", 5000)
    assert "--registry" in (refused.value.hint or "")
    engine: Any = None  # refused before the engine is asked anything
    with pytest.raises(EngineError, match=re.escape("10.0.0.5's, which factory cannot check")):
        binfmt.fix(engine, "builder")
    checked = doctor.check_binfmt()
    assert (checked.status, checked.detail.split(":")[0]) == (doctor.Status.WARN, "not checked")
    assert docker_load._cpuinfo() == ""


def test_nothing_is_refused_with_a_local_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.delenv("FACTORY_REMOTE_ENGINE", raising=False)
    local_registry.refuse_remote("127.0.0.1", 5000)
    assert "flags" in docker_load._cpuinfo() or "Features" in docker_load._cpuinfo()


class _FakeClient:
    def ping(self) -> bool:
        return True


def test_the_client_warns_once_about_plain_tcp_and_dials_ssh_through_ssh(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    asked: list[dict[str, Any]] = []

    def from_env(**kwargs: Any) -> _FakeClient:
        asked.append(kwargs)
        return _FakeClient()

    monkeypatch.setattr(docker, "from_env", from_env)
    monkeypatch.setattr(docker_engine, "_warned", False)
    monkeypatch.delenv("DOCKER_TLS_VERIFY", raising=False)
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.0.0.5:2375")
    docker_engine.client()
    docker_engine.client()
    assert capsys.readouterr().err.count("is plain TCP: anyone who can reach that port") == 1
    monkeypatch.setenv("DOCKER_HOST", "ssh://ci@build-host")
    docker_engine.client()
    assert [a["use_ssh_client"] for a in asked] == [False, False, True]
    assert "plain TCP" not in capsys.readouterr().err
