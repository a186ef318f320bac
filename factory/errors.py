"""Errors that end a factory command: each kind carries its own exit code and a fix."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """One exit code per kind of failure. Documented in docs/exit-codes.md, locked by a test."""

    OK = 0
    FAILURE = 1
    """An unexpected internal error (a bug in factory: please report it)."""
    USAGE = 2
    """Bad command line or bad images.toml."""
    ENGINE = 3
    """The Docker engine or the builder image: unreachable, too old, bootstrap failed."""
    BUILD = 4
    """A compile failed."""
    VALIDATION = 5
    """A binary failed its ELF audit or its smoke run."""
    REGISTRY = 6
    """The registry refused, was unreachable, or failed verification."""
    DOCTOR = 7
    """`factory doctor` found something required missing."""
    MERGE = 8
    """`factory index merge` refused: a shard missing, twice, or of another revision."""
    INTERRUPTED = 130
    """Stopped by SIGINT or SIGTERM."""


class FactoryError(Exception):
    """An error a user can act on: a one-paragraph message that names the fix."""

    exit_code: ExitCode = ExitCode.FAILURE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}" if self.hint else self.message


class UsageError(FactoryError):
    exit_code = ExitCode.USAGE


class ConfigError(FactoryError):
    exit_code = ExitCode.USAGE


class EngineError(FactoryError):
    exit_code = ExitCode.ENGINE


class BuildError(FactoryError):
    exit_code = ExitCode.BUILD


class ValidationError(FactoryError):
    exit_code = ExitCode.VALIDATION


class RegistryError(FactoryError):
    exit_code = ExitCode.REGISTRY


class DoctorError(FactoryError):
    exit_code = ExitCode.DOCTOR


class MergeError(FactoryError):
    """The shards do not make one complete, consistent image: nothing was written."""

    exit_code = ExitCode.MERGE
