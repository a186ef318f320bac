"""Small renderings shared by the commands' human-readable output."""

from __future__ import annotations

from pathlib import Path


def size(n: int) -> str:
    """A byte count as KiB below one MiB, else as MiB (one decimal)."""
    return f"{n / 1024:.1f} KiB" if n < 1 << 20 else f"{n / (1 << 20):.1f} MiB"


def relative(path: Path) -> str:
    """`path` relative to the working directory when it lies below it, else as it is."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
