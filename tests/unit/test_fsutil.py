from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import pytest

from factory.util import fsutil


def test_atomic_write_replaces_whole_files(tmp_path: Path) -> None:
    target = tmp_path / "dir" / "report.json"
    fsutil.atomic_write_json(target, {"a": 1})
    fsutil.atomic_write(target, b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in target.parent.iterdir()] == ["report.json"]


def test_atomic_write_leaves_nothing_when_interrupted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")

    def interrupted(_fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fsutil.atomic_write(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def _hold(lock: str, ready: str, seconds: float) -> None:
    with fsutil.exclusive(Path(lock), what="dist/", wait_message=lambda _m: None):
        Path(ready).write_text("held")
        time.sleep(seconds)


def test_a_second_holder_waits_and_says_for_whom(tmp_path: Path) -> None:
    lock, ready = tmp_path / ".lock", tmp_path / "ready"
    holder = multiprocessing.get_context("fork").Process(
        target=_hold, args=(str(lock), str(ready), 1.0)
    )
    holder.start()
    while not ready.exists():
        time.sleep(0.01)
    messages: list[str] = []
    started = time.monotonic()
    with fsutil.exclusive(lock, what="dist/", wait_message=messages.append):
        waited = time.monotonic() - started
    holder.join()
    assert waited > 0.5
    assert messages[0].startswith(f"waiting for factory run (pid {holder.pid})")
    assert os.getpid() != holder.pid
