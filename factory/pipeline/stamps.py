"""What the pipeline remembers between runs: fingerprints of a build's inputs and the build stamp.

The stamp, dist/bin/<image>/<target>/.factory-build.json, records

- ``fingerprint``: the build's inputs (builder image, driver, profile, target flags, workspace
  sources, the driver code) and ``sha256``: the binary the build left; a binary on disk with the
  same of both is up to date;
- ``smoke``: the smoke expectations, profile and validator code a passed validation of that
  binary was judged by (``SmokeStamps``, the validation stage's ``Reuse``).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from factory.build.cargo_config import FLAG_VARIABLES
from factory.model import config as cfg
from factory.model.dist import Dist
from factory.model.targets import Target
from factory.util import fsutil
from factory.util.fingerprint import code_digest
from factory.validate.report import TargetResult
from factory.validate.stage import Subject

_SKIP_DIRS: Final = frozenset({"target", ".git", "dist", "node_modules", ".venv"})
# The code a build or a validation result depends on, by module or package name (a package
# counts with every module in it). A name that does not resolve fails loudly.
_DRIVER_CODE: Final = ("factory.build", "factory.model.targets")
_VALIDATOR_CODE: Final = ("factory.validate", "factory.model.targets")


# --- fingerprints -------------------------------------------------------------------------


def _walk(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("bazel-")
        )
        for name in sorted(filenames):
            yield Path(dirpath) / name


def tree_digest(root: Path) -> str:
    """A digest of a source tree's files (names, executable bits, contents)."""
    digest = hashlib.sha256()
    for path in _walk(root):
        if path.is_symlink() or not path.is_file():
            continue
        rel = path.relative_to(root).as_posix()
        executable = os.access(path, os.X_OK)
        digest.update(f"{rel}\0{int(executable)}\0".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def build_fingerprint(
    *,
    builder_tag: str,
    driver: str,
    profile: str,
    image: cfg.ImageConfig,
    target: Target,
    sources: str,
    environ: Mapping[str, str] = os.environ,
) -> str:
    document = {
        "rustflags_environment": {name: environ.get(name) for name in FLAG_VARIABLES},
        "builder": builder_tag,
        "driver": driver,
        "driver_code": code_digest(_DRIVER_CODE),
        "profile": profile,
        "target": target.to_json(),
        "package": image.cargo_package,
        "features": list(image.features),
        "default_features": image.default_features,
        "binary": image.binary,
        "bazel_label": image.bazel_label,
        "sources": sources,
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def smoke_fingerprint(smoke: cfg.SmokeConfig, profile: str) -> str:
    document = {
        "args": list(smoke.args),
        "stdout": smoke.stdout,
        "exit_code": smoke.exit_code,
        "timeout": smoke.timeout,
        "page_sizes": list(smoke.page_sizes),
        "profile": profile,
        "validator": code_digest(_VALIDATOR_CODE),
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


# --- stamps -------------------------------------------------------------------------------


def read_stamp(dist: Dist, image: str, target: str) -> dict[str, Any]:
    """The build stamp of image x target; empty when there is none or it cannot be read (the
    stamp is only a cache: an unusable one makes the build and the validation run again)."""
    try:
        document = json.loads(dist.stamp(image, target).read_text())
    except (OSError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}


def write_stamp(dist: Dist, image: str, target: str, document: dict[str, Any]) -> None:
    fsutil.atomic_write_json(dist.stamp(image, target), document)


@dataclass(frozen=True, kw_only=True)
class SmokeStamps:
    """The validation stage's ``Reuse`` in the pipeline: a passed result stands while the build
    stamp records the same smoke expectations, profile and validator code."""

    dist: Dist
    profile: cfg.Profile

    def trusts(self, subject: Subject) -> bool:
        stamp = read_stamp(self.dist, *subject.key)
        return stamp.get("smoke") == smoke_fingerprint(subject.smoke, self.profile)

    def record(self, subject: Subject, result: TargetResult) -> None:
        """Remember a passed result in the stamp of the very binary the build left."""
        stamp = read_stamp(self.dist, *subject.key)
        if result.passed and stamp.get("sha256") == result.binary.sha256:
            stamp["smoke"] = smoke_fingerprint(subject.smoke, self.profile)
            write_stamp(self.dist, *subject.key, stamp)
