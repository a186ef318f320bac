"""The files factory reads at run time that are not Python: its Dockerfiles, their contexts and
the JSON Schema of images.toml.

The Dockerfiles have one copy in the repository, its top-level ``dockerfiles/`` folder; the
wheel carries that folder inside the package as ``factory/dockerfiles/`` (pyproject.toml's
``force-include``). This module is the one place that knows where they are: it asks
``importlib.resources`` for the package's folder and takes its ``dockerfiles/`` when the package
has one (an installed wheel), else the checkout's top-level ``dockerfiles/`` beside the package.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from factory.errors import FactoryError

_PACKAGE = "factory"


def _package_dir(package: str) -> Path:
    """A package's folder on disk (factory is installed as files, never run from a zip)."""
    found = resources.files(package)
    if not isinstance(found, Path):
        raise FactoryError(
            f"The package {package} is not installed as a folder of files ({found!r}), so "
            "factory cannot read its Dockerfiles.",
            hint="Reinstall factory from its wheel with uv tool install, pipx or pip.",
        )
    return found


def dockerfiles() -> Path:
    """The folder of factory's Dockerfiles: the packaged copy, else the checkout's."""
    package = _package_dir(_PACKAGE)
    packaged = package / "dockerfiles"
    return packaged if packaged.is_dir() else package.parent / "dockerfiles"


def dockerfile(name: str) -> Path:
    """``dockerfiles/<name>.Dockerfile``; its build context is ``dockerfiles/<name>/``."""
    return dockerfiles() / f"{name}.Dockerfile"


def schema() -> Path:
    """The JSON Schema of images.toml (generated from factory/model/config.py's dataclasses)."""
    return _package_dir(f"{_PACKAGE}.model") / "images.schema.json"
