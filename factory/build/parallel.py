"""Jobs side by side: N workers, each with a resource of its own (a builder container), taking
jobs in order; the first failure stops the others.

When a job fails, no worker takes another job, every other worker's resource is cancelled
(its container killed, so a cargo that runs in it stops now, not at the end of its target),
the workers' resources are closed (containers removed) and the first failure is raised. The
failures that the cancelling itself causes are not reported. One worker runs in the calling
thread, exactly as a plain loop would.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")
Worker = TypeVar("Worker")

GIB: Final = 1 << 30
MEMORY_PER_JOB: Final = 2 * GIB
"""What one compile may take at its peak (rustc on a large crate with thin LTO)."""


@dataclass(frozen=True, kw_only=True)
class Plan:
    """How many targets compile at once and cargo's -j for each."""

    jobs: int
    cargo_jobs: int | None
    """cargo --jobs for each (None: cargo's default, all cores, when one job runs)."""
    cores: int
    available: int
    """Bytes of memory available when planned."""

    def describe(self) -> str:
        each = f"cargo -j {self.cargo_jobs} each" if self.cargo_jobs else "cargo's default -j"
        return (
            f"{self.jobs} target(s) at once, {each} ({self.cores} cores, "
            f"{self.available / GIB:.1f} GiB available; "
            f"jobs = min(targets, cores, available GiB / {MEMORY_PER_JOB // GIB}), "
            "cargo -j = cores / jobs)"
        )


def available_memory(meminfo: str = "/proc/meminfo") -> int:
    """MemAvailable in bytes (the whole memory when the kernel does not say)."""
    try:
        with open(meminfo) as lines:
            for line in lines:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def plan(targets: int, requested: int | None, *, cores: int, available: int) -> Plan:
    """``requested`` jobs (--jobs), or the default: as many targets as there are cores and
    2 GiB of available memory for each; cargo's -j splits the cores between them."""
    if requested is not None:
        jobs = max(1, min(requested, targets))
    else:
        jobs = max(1, min(targets, cores, available // MEMORY_PER_JOB))
    cargo_jobs = None if jobs == 1 else max(1, cores // jobs)
    return Plan(jobs=jobs, cargo_jobs=cargo_jobs, cores=cores, available=available)


class _Pool(Generic[Item, Result, Worker]):
    """The shared state of one run_all: the queue, the workers, the first failure."""

    def __init__(
        self,
        items: Sequence[Item],
        open_worker: Callable[[], AbstractContextManager[Worker]],
        work: Callable[[Worker, Item], Result],
        cancel: Callable[[Worker], None],
    ) -> None:
        self._queue = list(enumerate(items))
        self._open = open_worker
        self._work = work
        self._cancel = cancel
        self._lock = threading.Lock()
        self._workers: list[Worker] = []
        self.stop = threading.Event()
        self.failure: BaseException | None = None
        self.results: dict[int, Result] = {}

    def _take(self) -> tuple[int, Item] | None:
        with self._lock:
            if self.stop.is_set() or not self._queue:
                return None
            return self._queue.pop(0)

    def fail(self, error: BaseException, me: Worker | None) -> None:
        """Record the first failure and cancel every other worker (later ones are its echoes)."""
        with self._lock:
            if self.failure is not None:
                return
            self.failure = error
            self.stop.set()
            others = [w for w in self._workers if w is not me]
        for other in others:
            self._cancel(other)

    def loop(self) -> None:
        """One worker's thread: take jobs until none is left or one failed."""
        try:
            with self._open() as worker:
                with self._lock:
                    self._workers.append(worker)
                while (taken := self._take()) is not None:
                    index, item = taken
                    try:
                        self.results[index] = self._work(worker, item)
                    except BaseException as error:  # raised once, in the caller's thread
                        self.fail(error, worker)
                        return
        except BaseException as error:
            self.fail(error, None)


def run_all(
    items: Sequence[Item],
    jobs: int,
    *,
    open_worker: Callable[[], AbstractContextManager[Worker]],
    work: Callable[[Worker, Item], Result],
    cancel: Callable[[Worker], None],
) -> list[Result]:
    """``work(worker, item)`` for every item, on ``jobs`` workers; results in item order."""
    if jobs <= 1 or len(items) <= 1:
        with open_worker() as worker:
            return [work(worker, item) for item in items]
    pool = _Pool(items, open_worker, work, cancel)
    threads = [
        threading.Thread(target=pool.loop, name=f"factory-job-{n}", daemon=True)
        for n in range(min(jobs, len(items)))
    ]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    except BaseException as interrupt:  # Ctrl-C: stop the others, then let it through
        pool.fail(interrupt, None)
        for thread in threads:
            thread.join()
        raise
    if pool.failure is not None:
        raise pool.failure
    return [pool.results[index] for index in range(len(items))]
