"""Initramfs archives: the newc cpio format the Linux kernel unpacks as its first root file system.

Pure and deterministic: the same entries give the same bytes (inode numbers count up from 1,
owner root, modification time 0). The archive is uncompressed; the kernel takes that as it is.
Directories must come before what they hold; ``Entry`` paths are relative (``init``,
``dev/console``), as ``cpio -H newc`` writes them.
"""

from __future__ import annotations

import stat
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

_MAGIC: Final = b"070701"
_TRAILER: Final = "TRAILER!!!"


@dataclass(frozen=True, kw_only=True)
class Entry:
    """One file, directory or device node of the archive."""

    path: str
    mode: int
    """The full st_mode: type and permission bits (``stat.S_IFREG | 0o755``)."""
    data: bytes = b""
    device: tuple[int, int] = (0, 0)
    """(major, minor) of a character or block device."""

    @classmethod
    def file(cls, path: str, data: bytes, *, executable: bool = False) -> Entry:
        return cls(path=path, mode=stat.S_IFREG | (0o755 if executable else 0o644), data=data)

    @classmethod
    def directory(cls, path: str) -> Entry:
        return cls(path=path, mode=stat.S_IFDIR | 0o755)

    @classmethod
    def char_device(cls, path: str, major: int, minor: int) -> Entry:
        return cls(path=path, mode=stat.S_IFCHR | 0o600, device=(major, minor))


def _pad(length: int) -> bytes:
    return b"\0" * (-length % 4)


def _member(inode: int, entry: Entry) -> bytes:
    if entry.data and not stat.S_ISREG(entry.mode):
        raise ValueError(f"{entry.path}: only regular files have data")
    if entry.path.startswith("/") or not entry.path:
        raise ValueError(f"{entry.path!r}: archive paths are relative and not empty")
    name = entry.path.encode() + b"\0"
    fields = (
        inode,
        entry.mode,
        0,  # uid
        0,  # gid
        2 if stat.S_ISDIR(entry.mode) else 1,  # nlink
        0,  # mtime
        len(entry.data),
        0,  # devmajor
        0,  # devminor
        entry.device[0],
        entry.device[1],
        len(name),
        0,  # check (unused by newc)
    )
    header = _MAGIC + b"".join(b"%08x" % value for value in fields)
    head = header + name
    return head + _pad(len(head)) + entry.data + _pad(len(entry.data))


def newc(entries: Sequence[Entry]) -> bytes:
    """The archive of ``entries`` in order, closed by the ``TRAILER!!!`` entry."""
    seen: set[str] = set()
    parts: list[bytes] = []
    for inode, entry in enumerate(entries, start=1):
        if entry.path in seen:
            raise ValueError(f"{entry.path}: listed twice")
        seen.add(entry.path)
        parts.append(_member(inode, entry))
    parts.append(_member(0, Entry(path=_TRAILER, mode=0)))
    return b"".join(parts)
