"""dist/ beside images.toml: what the stages leave for each other, and the one place that knows
its paths.

    dist/bin/<image>/<target>/<binary>      the build's output (and its build stamp beside it)
    dist/logs/<image>/<target>.log          the build's own output (cargo's messages, stderr)
    dist/report.json                        the validation's verdicts (factory.report/v1)
    dist/oci/<image>/                       one OCI image layout per image
    dist/merge/<image>/                     the index `factory index merge` made, alone
    dist/.cache/layers/                     each layer's gzip, by the tar's sha256
    dist/.cache/sbom/                       each SBOM made, by the digest of its inputs
    dist/.lock                              one run at a time
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from factory.model import config as cfg

STAMP: Final = ".factory-build.json"


@dataclass(frozen=True, kw_only=True)
class Dist:
    """The dist/ folder of one images.toml."""

    root: Path

    @classmethod
    def of(cls, config: cfg.Config) -> Dist:
        return cls(root=config.root / "dist")

    @property
    def bin(self) -> Path:
        """dist/bin: what smoke runs mount read-only."""
        return self.root / "bin"

    def binary(self, image: str, target: str, binary: str) -> Path:
        """Where a binary goes: dist/bin/<image>/<target>/<binary>."""
        return self.bin / image / target / binary

    def stamp(self, image: str, target: str) -> Path:
        """The build stamp of one image x target, beside its binary."""
        return self.bin / image / target / STAMP

    def log(self, image: str, target: str) -> Path:
        """The compile's own output for one image x target, kept apart from the others."""
        return self.root / "logs" / image / f"{target}.log"

    @property
    def report(self) -> Path:
        return self.root / "report.json"

    @property
    def oci(self) -> Path:
        """The default folder of the OCI layouts (`--oci-layout DIR` replaces it)."""
        return self.root / "oci"

    @property
    def merged(self) -> Path:
        """Where `factory index merge` keeps each merged index (and what it attached)."""
        return self.root / "merge"

    @property
    def layer_cache(self) -> Path:
        return self.root / ".cache" / "layers"

    @property
    def sbom_cache(self) -> Path:
        return self.root / ".cache" / "sbom"

    @property
    def lock(self) -> Path:
        return self.root / ".lock"
