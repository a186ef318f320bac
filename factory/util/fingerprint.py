"""Digests of factory's own code: a cache or stamp that depends on some modules names them, and
a change to any of their files makes it stale."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from pathlib import Path


def module_files(name: str) -> list[Path]:
    """The source files of a module, or of every module of a package, found without importing
    them (the validators load pyelftools and capstone)."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise RuntimeError(f"fingerprint: factory module {name} not found")
    origin = Path(spec.origin)
    if spec.submodule_search_locations is None:
        return [origin]
    return sorted(origin.parent.rglob("*.py"))


@functools.cache
def code_digest(modules: tuple[str, ...]) -> str:
    """A digest of some of factory's own modules (a package counts with every module in it).
    Read once per process (every unit's fingerprint asks). A name that does not resolve fails
    loudly."""
    digest = hashlib.sha256()
    for name in modules:
        for path in module_files(name):
            digest.update(f"{name}:{path.name}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()
