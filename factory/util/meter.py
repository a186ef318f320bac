"""Progress of long work with parts (targets compiling side by side, an image's build steps):
a live display on a terminal, at most one plain line per part per interval elsewhere, nothing
under --quiet.

A part is started with its total (units, steps; None when unknown), advanced with how many are
done and what runs now, and finished with a line of its own, which both kinds print.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final, Protocol

from factory.util import console
from factory.util.console import Progress

if TYPE_CHECKING:  # rich is imported only when a live display is made
    from rich.console import Console
    from rich.table import Table

INTERVAL: Final = 10.0
"""Seconds between two plain lines of one part."""


class Meter(Protocol):
    def start(
        self, part: str, total: int | None, *, noun: str = "units", verb: str = "compiling"
    ) -> None: ...

    def advance(self, part: str, done: int, now: str | None) -> None: ...

    def finish(self, part: str, line: str) -> None: ...


@dataclass(frozen=True, kw_only=True)
class State:
    part: str
    total: int | None
    done: int = 0
    now: str | None = None
    started: float = 0.0
    noun: str = "units"
    verb: str = "compiling"

    def count(self) -> str:
        done = f"{self.done}/{self.total}" if self.total else str(self.done)
        return f"{done} {self.noun}"

    def describe(self, clock: float) -> str:
        running = f", {self.verb} {self.now}" if self.now else ""
        return f"{self.part}: {self.count()}{running} ({clock - self.started:.0f} s)"


class PlainMeter:
    """One line per part at most every ``interval`` seconds, through ``emit``."""

    def __init__(
        self,
        emit: Progress,
        *,
        prefix: str = "build: ",
        interval: float = INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._emit = emit
        self._prefix = prefix
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._states: dict[str, State] = {}
        self._last: dict[str, float] = {}

    def start(
        self, part: str, total: int | None, *, noun: str = "units", verb: str = "compiling"
    ) -> None:
        with self._lock:
            now = self._clock()
            self._states[part] = State(part=part, total=total, started=now, noun=noun, verb=verb)
            self._last[part] = now

    def advance(self, part: str, done: int, now: str | None) -> None:
        with self._lock:
            state = self._states.get(part)
            if state is None:
                return
            state = replace(state, done=done, now=now or state.now)
            self._states[part] = state
            clock = self._clock()
            if clock - self._last[part] < self._interval:
                return
            self._last[part] = clock
        self._emit(self._prefix + state.describe(clock))

    def finish(self, part: str, line: str) -> None:
        with self._lock:
            self._states.pop(part, None)
        self._emit(line)


class LiveMeter:
    """A table of the running parts, redrawn in place on a terminal; finished lines scroll
    above it. Use as a context manager around the work."""

    def __init__(self, console: Console, *, clock: Callable[[], float] = time.monotonic) -> None:
        from rich.live import Live

        self._console = console
        self._clock = clock
        self._lock = threading.Lock()
        self._states: dict[str, State] = {}
        self._live = Live(console=console, refresh_per_second=4, transient=True,
                          get_renderable=self._render)  # fmt: skip

    def __enter__(self) -> LiveMeter:
        self._live.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._live.stop()

    def _render(self) -> Table:
        from rich.table import Table

        table = Table.grid(padding=(0, 2))
        with self._lock:
            states = list(self._states.values())
        clock = self._clock()
        for state in states:
            table.add_row(
                state.part, state.count(), f"{clock - state.started:.0f} s", state.now or ""
            )
        return table

    def start(
        self, part: str, total: int | None, *, noun: str = "units", verb: str = "compiling"
    ) -> None:
        with self._lock:
            self._states[part] = State(
                part=part, total=total, started=self._clock(), noun=noun, verb=verb
            )

    def advance(self, part: str, done: int, now: str | None) -> None:
        with self._lock:
            state = self._states.get(part)
            if state is not None:
                self._states[part] = replace(state, done=done, now=now or state.now)

    def finish(self, part: str, line: str) -> None:
        with self._lock:
            self._states.pop(part, None)
        self._console.print(line, markup=False, highlight=False)


@contextmanager
def for_console(progress: Progress) -> Iterator[Meter]:
    """The meter of the progress lines that go to ``progress``: live when they go to a
    terminal through console.info, plain lines (at most one per part per 10 s) elsewhere,
    nothing under --quiet. While the live display runs, other lines written to stderr appear
    above it."""
    isatty = getattr(sys.stderr, "isatty", None)
    if progress is console.info and isatty and isatty() and not console.options().quiet:
        from rich.console import Console

        with LiveMeter(Console(stderr=True, highlight=False, soft_wrap=True)) as live:
            yield live
    else:
        yield PlainMeter(progress)
