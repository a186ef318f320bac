"""What cargo says while it builds: its JSON messages (--message-format=json-...) on stdout,
its status lines ("Compiling ring v0.17.8") on stderr, and its unit graph (--unit-graph)."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from typing import Final

from factory.util.meter import Meter

_COMPILING: Final = re.compile(r"^\s*Compiling (\S+) v")
_DONE_REASONS: Final = ('{"reason":"compiler-artifact"', '{"reason":"build-script-executed"')


def executable_from_messages(stdout: str, binary: str) -> str | None:
    """The binary's path from cargo's JSON messages (the last compiler-artifact naming it)."""
    found: str | None = None
    for line in stdout.splitlines():
        if not line.startswith("{"):
            continue
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            continue
        target = message.get("target") or {}
        if (
            message.get("reason") == "compiler-artifact"
            and target.get("name") == binary
            and "bin" in target.get("kind", [])
            and message.get("executable")
        ):
            found = str(message["executable"])
    return found


@dataclass(frozen=True, kw_only=True)
class Units:
    """What cargo's JSON messages said of one build's units (compiler-artifact messages)."""

    total: int = 0
    fresh: int = 0
    host_total: int = 0
    """Units compiled for the host: build scripts, proc-macros and their dependencies (their
    files are outside the target directory's <triple>/ half)."""
    host_fresh: int = 0

    @staticmethod
    def from_messages(stdout: str, triple: str) -> Units:
        total = fresh = host_total = host_fresh = 0
        for line in stdout.splitlines():
            if not line.startswith('{"reason":"compiler-artifact"'):
                continue
            message = json.loads(line)
            is_fresh = bool(message.get("fresh"))
            total += 1
            fresh += is_fresh
            if not any(f"/{triple}/" in name for name in message.get("filenames", [])):
                host_total += 1
                host_fresh += is_fresh
        return Units(total=total, fresh=fresh, host_total=host_total, host_fresh=host_fresh)


def unit_total(unit_graph: str) -> int | None:
    """The number of units in `cargo build --unit-graph`'s output (None if it is not one)."""
    try:
        document = json.loads(unit_graph)
    except json.JSONDecodeError:
        return None
    units = document.get("units") if isinstance(document, dict) else None
    return len(units) if isinstance(units, list) else None


class UnitCounter:
    """Feeds a Meter from cargo's output lines as they arrive: units done (each unit ends with
    a compiler-artifact or build-script-executed message, fresh or not) and the crate compiling
    now."""

    def __init__(self, meter: Meter, part: str) -> None:
        self._meter = meter
        self._part = part
        self._done = 0
        self._lock = threading.Lock()

    def __call__(self, line: str) -> None:
        with self._lock:
            if line.startswith(_DONE_REASONS):
                self._done += 1
                self._meter.advance(self._part, self._done, None)
            elif (match := _COMPILING.match(line)) is not None:
                self._meter.advance(self._part, self._done, match.group(1))
