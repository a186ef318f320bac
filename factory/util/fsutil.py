"""Files that are never seen half-written, and one factory run per output folder at a time."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from factory.util import console


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write `data` to `path` so that readers see the old file or the new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path, document: Any) -> None:
    atomic_write(path, (json.dumps(document, indent=2) + "\n").encode())


@contextlib.contextmanager
def exclusive(
    lock_path: Path, *, what: str, wait_message: console.Progress = console.info
) -> Iterator[None]:
    """Hold an exclusive lock on `lock_path` (flock: released if the process dies).

    A second run waits, and says once what it waits for and who holds it.
    """
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            wait_message(f"waiting for {holder} to finish with {what} ({lock_path})")
            started = time.monotonic()
            fcntl.flock(handle, fcntl.LOCK_EX)
            wait_message(f"got {what} after {time.monotonic() - started:.1f} s")
        handle.seek(0)
        handle.truncate()
        handle.write(f"factory run (pid {os.getpid()})\n")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)
