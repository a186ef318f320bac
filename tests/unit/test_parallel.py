"""factory.build.parallel (jobs side by side, the first failure stops the rest) and the
progress it reports (factory.util.meter, factory.build.cargo_messages.UnitCounter)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from factory.build import parallel
from factory.build.cargo_messages import UnitCounter, unit_total
from factory.util.meter import PlainMeter

GIB = parallel.GIB


def test_the_default_plan_follows_cores_and_memory() -> None:
    assert parallel.plan(5, None, cores=2, available=20 * GIB).jobs == 2
    assert parallel.plan(5, None, cores=2, available=20 * GIB).cargo_jobs == 1
    assert parallel.plan(5, None, cores=16, available=64 * GIB).jobs == 5
    assert parallel.plan(5, None, cores=16, available=64 * GIB).cargo_jobs == 3
    assert parallel.plan(21, None, cores=16, available=9 * GIB).jobs == 4, "2 GiB per job"
    assert parallel.plan(1, None, cores=16, available=64 * GIB).jobs == 1
    low = parallel.plan(5, None, cores=8, available=GIB)
    assert (low.jobs, low.cargo_jobs) == (1, None), "one job keeps cargo's own -j"


def test_jobs_n_is_taken_as_given_up_to_the_number_of_targets() -> None:
    assert parallel.plan(5, 1, cores=16, available=64 * GIB).jobs == 1
    assert parallel.plan(5, 1, cores=16, available=64 * GIB).cargo_jobs is None
    assert parallel.plan(5, 3, cores=2, available=GIB).jobs == 3
    assert parallel.plan(2, 8, cores=2, available=GIB).jobs == 2
    text = parallel.plan(5, None, cores=2, available=20 * GIB).describe()
    assert "2 target(s) at once, cargo -j 1 each (2 cores, 20.0 GiB available" in text
    assert "jobs = min(targets, cores, available GiB / 2)" in text


def test_available_memory_reads_memavailable(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal: 100 kB\nMemAvailable:    2048 kB\n")
    assert parallel.available_memory(str(meminfo)) == 2048 * 1024


class _Worker:
    def __init__(self, name: str) -> None:
        self.name = name
        self.cancelled = threading.Event()
        self.closed = False


def _workers(opened: list[_Worker]) -> Callable[[], AbstractContextManager[_Worker]]:
    @contextmanager
    def open_worker() -> Iterator[_Worker]:
        worker = _Worker(f"w{len(opened)}")
        opened.append(worker)
        try:
            yield worker
        finally:
            worker.closed = True

    return open_worker


def test_results_come_back_in_item_order_from_all_workers() -> None:
    opened: list[_Worker] = []
    seen: set[str] = set()
    lock = threading.Lock()

    def work(worker: _Worker, item: int) -> int:
        with lock:
            seen.add(worker.name)
        time.sleep(0.05 * (item % 3))
        return item * 10

    results = parallel.run_all(
        list(range(7)), 3, open_worker=_workers(opened), work=work, cancel=lambda w: None
    )
    assert results == [n * 10 for n in range(7)]
    assert len(opened) == 3 and len(seen) == 3
    assert all(w.closed for w in opened)


def test_the_first_failure_cancels_the_others_and_is_raised_alone() -> None:
    opened: list[_Worker] = []
    started: list[int] = []

    def work(worker: _Worker, item: int) -> int:
        started.append(item)
        if item == 1:
            time.sleep(0.1)
            raise RuntimeError("target 1 failed")
        # a long compile that only a cancel ends, and then fails as its echo
        if worker.cancelled.wait(timeout=10):
            raise RuntimeError("killed")
        return item

    with pytest.raises(RuntimeError, match="target 1 failed"):
        parallel.run_all(
            [0, 1, 2, 3],
            2,
            open_worker=_workers(opened),
            work=work,
            cancel=lambda w: w.cancelled.set(),
        )
    assert sorted(started) == [0, 1], "no job starts after the failure"
    assert all(w.closed for w in opened), "every worker's resource is closed"


def test_one_job_runs_in_the_calling_thread() -> None:
    opened: list[_Worker] = []
    threads: list[str] = []

    def work(worker: _Worker, item: int) -> int:
        threads.append(threading.current_thread().name)
        return item

    assert parallel.run_all([1, 2], 1, open_worker=_workers(opened), work=work, cancel=print) == [
        1,
        2,
    ]
    assert set(threads) == {threading.current_thread().name} and len(opened) == 1


def test_plain_progress_is_at_most_one_line_per_part_per_interval() -> None:
    lines: list[str] = []
    now = [0.0]
    meter = PlainMeter(lines.append, interval=10.0, clock=lambda: now[0])
    meter.start("hello amd64", 40)
    meter.start("hello arm64", None)
    counter = UnitCounter(meter, "hello amd64")
    for second in range(25):
        now[0] = float(second)
        counter('{"reason":"compiler-artifact","fresh":false}')
        counter("   Compiling ring v0.17.8")
    meter.advance("hello arm64", 3, "tokio")
    assert lines == [
        "build: hello amd64: 11/40 units, compiling ring (10 s)",
        "build: hello amd64: 21/40 units, compiling ring (20 s)",
        "build: hello arm64: 3 units, compiling tokio (24 s)",
    ]
    meter.finish("hello amd64", "build: hello amd64 done")
    meter.advance("hello amd64", 99, None)
    assert lines[-1] == "build: hello amd64 done", "a finished part says nothing more"


def test_the_unit_total_is_read_from_the_unit_graph() -> None:
    assert unit_total('{"version":1,"units":[{},{},{}],"roots":[2]}') == 3
    assert unit_total("not json") is None
    assert unit_total('{"version":1}') is None
