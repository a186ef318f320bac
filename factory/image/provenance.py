"""Where an image comes from: its time, git revision, source URL, package version, Cargo.lock and
builder.

The time stamps every layer entry, config and annotation, so it must not change between two
assemblies of the same inputs: it is SOURCE_DATE_EPOCH when set, else the commit time of the last
git commit that touched the workspace (HEAD's when none did), else the Unix epoch (0). The
revision is that same commit. The source is a URL or nothing: never a path of the build machine,
so two clones of one commit annotate their images alike. The Cargo.lock and the builder are
digests of content (the lock file's; the builder's Dockerfile, its context and its base image's
reference), not of anything a machine holds (no builder image id), so two machines that build
the same commit with the same builder record the same values: `factory index merge` compares
them across the shards of one image.
"""

from __future__ import annotations

import glob
import os
import re
import subprocess
import tomllib
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from factory.distribution.media_types import sha256_digest
from factory.engine.images import content_hash, load_context
from factory.errors import UsageError


@dataclass(frozen=True, kw_only=True)
class Provenance:
    created: int
    """Unix time used for every time stamp in the image."""
    created_from: str
    """Where `created` came from: `SOURCE_DATE_EPOCH`, `git commit <sha>` or `none`."""
    revision: str | None
    source: str | None
    version: str | None
    cargo_lock: str | None = None
    """`sha256:<hex>` of the workspace's Cargo.lock; None without one."""
    builder: str | None = None
    """A hash of the builder's Dockerfile, context and base reference (`builder_digest`)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "created_from": self.created_from,
            "revision": self.revision,
            "source": self.source,
            "version": self.version,
            "cargo_lock": self.cargo_lock,
            "builder": self.builder,
        }


def file_digest(path: Path) -> str | None:
    """`sha256:<hex>` of a file's bytes; None when there is no such file."""
    return sha256_digest(path.read_bytes()) if path.is_file() else None


def builder_digest(dockerfile: Path, base: str) -> str | None:
    """What the builder is made of: its Dockerfile and context files and the base image's
    reference (not the base's id, which differs between two bootstraps of the same Debian);
    None when the Dockerfile is not there (built elsewhere)."""
    if not dockerfile.is_file():
        return None
    return content_hash(load_context(dockerfile), {"BASE": base}, "")


def collect(
    workspace: Path,
    package: str,
    *,
    environ: Mapping[str, str] | None = None,
    builder: str | None = None,
) -> Provenance:
    """The provenance of `package` in the Cargo workspace at `workspace`; ``builder``: what
    `builder_digest` says of the builder."""
    commit = last_commit(workspace)
    revision, _ = commit
    created, created_from = build_epoch(workspace, environ=environ, commit=commit)
    package_table = cargo_package(workspace, package)
    source = source_url(_git(workspace, "remote", "get-url", "origin"))
    return Provenance(
        created=created,
        created_from=created_from,
        revision=revision,
        source=source or source_url(package_table.get("repository")),
        version=package_table.get("version"),
        cargo_lock=file_digest(workspace / "Cargo.lock"),
        builder=builder,
    )


def build_epoch(
    workspace: Path,
    *,
    environ: Mapping[str, str] | None = None,
    commit: tuple[str | None, int | None] | None = None,
) -> tuple[int, str]:
    """The time every build and image of this workspace claims, and where it came from:
    SOURCE_DATE_EPOCH when set, else the last commit that touched the workspace (``commit``,
    when the caller has read it with `last_commit` already), else 0.

    The compile gets it too (clang takes __DATE__ and __TIME__ from it), so two builds of the
    same sources give the same binary.
    """
    env = os.environ if environ is None else environ
    epoch = source_date_epoch(env)
    if epoch is not None:
        return epoch, "SOURCE_DATE_EPOCH"
    revision, commit_time = last_commit(workspace) if commit is None else commit
    if revision is not None and commit_time is not None:
        return commit_time, f"git commit {revision[:12]}"
    return 0, "none (no SOURCE_DATE_EPOCH, no git commit)"


def last_commit(workspace: Path) -> tuple[str | None, int | None]:
    """The last commit that touched the workspace (else HEAD) and its commit time.

    Commits elsewhere in the repository change neither, so they do not change the digests.
    """
    for args in (("--", "."), ()):
        out = _git(workspace, "log", "-1", "--format=%H %ct", *args)
        if out:
            sha, _, stamp = out.partition(" ")
            return sha, int(stamp) if stamp.isdigit() else None
    return None, None


def source_date_epoch(env: Mapping[str, str]) -> int | None:
    raw = env.get("SOURCE_DATE_EPOCH")
    if raw is None or raw == "":
        return None
    if not raw.strip().isdigit():
        raise UsageError(
            f"SOURCE_DATE_EPOCH={raw!r} is not a Unix time. Set it to whole seconds since "
            "1970 (e.g. `export SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)`) or unset it."
        )
    return int(raw.strip())


def cargo_package(workspace: Path, name: str) -> dict[str, str]:
    """`version` and `repository` of the Cargo package `name` (workspace inheritance resolved).

    Empty when the workspace has no readable Cargo.toml or no such package (a Bazel-only
    workspace, say): provenance is best effort and never stops an assembly.
    """
    root = _toml(workspace / "Cargo.toml")
    if root is None:
        return {}
    inherited = root.get("workspace", {}).get("package", {})
    manifests = [root]
    for member in root.get("workspace", {}).get("members", []):
        for path in sorted(glob.glob(str(workspace / member / "Cargo.toml"))):
            table = _toml(Path(path))
            if table is not None:
                manifests.append(table)
    for manifest in manifests:
        package = manifest.get("package", {})
        if package.get("name") != name:
            continue
        out: dict[str, str] = {}
        for key in ("version", "repository"):
            value = package.get(key)
            if isinstance(value, dict) and value.get("workspace") is True:
                value = inherited.get(key)
            if isinstance(value, str):
                out[key] = value
        return out
    return {}


def _toml(path: Path) -> dict[str, Any] | None:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None


def _git(workspace: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(
            ["git", "-C", str(workspace), *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    out = proc.stdout.strip()
    return out if proc.returncode == 0 and out else None


_SCP_LIKE = re.compile(r"^(?:[^@/:]+@)?(?P<host>[A-Za-z0-9][A-Za-z0-9.-]*):(?P<path>[^/].*)$")
_SSH_SCHEMES = frozenset({"ssh", "git+ssh", "ssh+git"})


def source_url(remote: str | None) -> str | None:
    """A git remote (or a Cargo `repository`) as an annotation may publish it, else None.

    `git@host:org/repo.git` and `ssh://git@host/org/repo.git` become `https://host/org/repo`;
    an http(s) URL is kept without the user name and password in it; anything else (a path of
    this machine, `file://`, another scheme) is not a URL a reader can open, and is dropped.
    """
    if not remote:
        return None
    text = remote.strip()
    scp = _SCP_LIKE.match(text)
    if scp is not None and "://" not in text:
        return _https(scp.group("host"), scp.group("path"))
    parts = urllib.parse.urlsplit(text)
    if not parts.hostname:
        return None
    if parts.scheme in _SSH_SCHEMES:
        return _https(parts.hostname, parts.path)
    if parts.scheme in ("http", "https"):
        host = parts.netloc.rsplit("@", 1)[-1]
        return urllib.parse.urlunsplit(parts._replace(netloc=host))
    return None


def _https(host: str, path: str) -> str | None:
    """The web address of a repository reached over ssh: https, no `.git`, no user, no port."""
    repository = path.strip("/").removesuffix(".git").rstrip("/")
    return f"https://{host}/{repository}" if repository else None
