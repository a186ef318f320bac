"""Work that waits on something else (a registry's answers), done side by side in threads."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


def side_by_side(
    function: Callable[[Item], Result], items: Iterable[Item], *, at_most: int = 8
) -> list[Result]:
    """``[function(item) for item in items]``, computed by up to ``at_most`` threads at once (for
    calls that mostly wait, such as HTTP requests: the GIL is free while they wait). The results
    keep the items' order; the first failure is raised once every thread has stopped."""
    work = list(enumerate(items))
    results: dict[int, Result] = {}
    failures: list[BaseException] = []
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                if not work or failures:
                    return
                index, item = work.pop(0)
            try:
                result = function(item)
            except BaseException as err:  # re-raised in the calling thread
                with lock:
                    failures.append(err)
                return
            with lock:
                results[index] = result

    count = len(work)
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(min(at_most, count))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return [results[index] for index in range(count)]
