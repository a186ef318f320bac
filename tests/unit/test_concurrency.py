"""side_by_side: the results in order, the calls really overlapping, the first failure raised."""

from __future__ import annotations

import threading

import pytest

from factory.util.concurrency import side_by_side


def test_results_keep_the_order_of_the_items() -> None:
    assert side_by_side(lambda n: n * n, range(20), at_most=3) == [n * n for n in range(20)]
    assert side_by_side(lambda n: n, []) == []


def test_the_calls_run_at_the_same_time() -> None:
    """Three calls that each wait for the other two: they finish only if they overlap."""
    meeting = threading.Barrier(3, timeout=10)
    assert side_by_side(lambda n: (meeting.wait(), n)[1], [1, 2, 3], at_most=3) == [1, 2, 3]


def test_no_more_threads_than_asked() -> None:
    running = 0
    most = 0
    lock = threading.Lock()
    release = threading.Event()

    def call(n: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
            if running == 2:
                release.set()
        release.wait(10)
        with lock:
            running -= 1
        return n

    assert side_by_side(call, range(6), at_most=2) == list(range(6))
    assert most == 2


def test_the_first_failure_is_raised_in_the_caller() -> None:
    def call(n: int) -> int:
        if n == 3:
            raise ValueError("three")
        return n

    with pytest.raises(ValueError, match="three"):
        side_by_side(call, range(6), at_most=2)
