"""Which files of a workspace go to a remote engine: everything but what a checkout would not
commit or a Docker build would not send.

Left out: ``target/`` at the top (Cargo's output), every ``.git`` (directory, or the file of a
worktree or submodule), what a ``.gitignore`` excludes (each one applies below its own directory,
with git's semantics through the ``pathspec`` package: the deeper file's last matching pattern
decides, and nothing inside an excluded directory comes back), then what the top
``.dockerignore`` excludes (Docker's semantics: patterns are anchored at the top; unlike Docker,
a ``!`` pattern cannot bring back a file inside a directory excluded as a whole). Cargo.lock at
the top is always sent (factory builds with --locked). Not read: ``.git/info/exclude`` and git's
global excludes file (the files are chosen the same on every machine, git or not).

Files and symbolic links are listed (a link is sent as a link, as a bind mount would show it);
empty directories are not.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Final

import pathspec

GITIGNORE: Final = ".gitignore"
DOCKERIGNORE: Final = ".dockerignore"
ALWAYS_OUT: Final = ("/target/", ".git")
ALWAYS_IN: Final = frozenset({"Cargo.lock"})


@dataclass(frozen=True, kw_only=True)
class _Rules:
    """The patterns of one ignore file, which apply below ``base`` (relative to the top)."""

    base: PurePosixPath
    spec: pathspec.GitIgnoreSpec

    def verdict(self, relative: PurePosixPath, is_dir: bool) -> bool | None:
        """True: excluded; False: re-included by a `!` pattern; None: no pattern matched."""
        inner = relative.relative_to(self.base).as_posix() if self.base.parts else str(relative)
        return self.spec.check_file(inner + ("/" if is_dir else "")).include


def _dockerignore_lines(lines: Sequence[str]) -> list[str]:
    """A .dockerignore's patterns as gitignore patterns anchored at the top."""
    out: list[str] = []
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        body = line.removeprefix("!").strip().lstrip("/")
        if body.startswith("./"):
            body = body[2:]
        if body:
            out.append(("!" if negated else "") + "/" + body)
    return out


def _read(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []


def _excluded(rules: Sequence[_Rules], relative: PurePosixPath, is_dir: bool) -> bool:
    decided = False
    for rule in rules:
        verdict = rule.verdict(relative, is_dir)
        if verdict is not None:
            decided = verdict
    return decided


def files(top: Path) -> Iterator[PurePosixPath]:
    """The workspace's files to upload, relative to ``top``, in a stable order."""
    fixed = _Rules(base=PurePosixPath(), spec=pathspec.GitIgnoreSpec.from_lines(ALWAYS_OUT))
    docker = pathspec.GitIgnoreSpec.from_lines(_dockerignore_lines(_read(top / DOCKERIGNORE)))
    last = _Rules(base=PurePosixPath(), spec=docker)
    scopes: dict[PurePosixPath, list[_Rules]] = {}
    for folder, dirs, names in os.walk(top):
        here = PurePosixPath(Path(folder).relative_to(top).as_posix())
        rules = list(scopes.get(here, []))
        if GITIGNORE in names:
            lines = _read(Path(folder) / GITIGNORE)
            rules.append(_Rules(base=here, spec=pathspec.GitIgnoreSpec.from_lines(lines)))
        every = [fixed, *rules, last]
        kept_dirs = []
        for name in sorted(dirs):
            relative = here / name
            if Path(folder, name).is_symlink():
                if not _excluded(every, relative, is_dir=False):
                    yield relative
            elif not _excluded(every, relative, is_dir=True):
                kept_dirs.append(name)
                scopes[relative] = rules
        dirs[:] = kept_dirs
        for name in sorted(names):
            relative = here / name
            if (not here.parts and name in ALWAYS_IN) or not _excluded(
                every, relative, is_dir=False
            ):
                yield relative
