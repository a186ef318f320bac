"""The files factory reads at run time that are not Python: its Dockerfiles and their contexts.

They stay in the repository's top-level ``dockerfiles/`` folder; this module is the one place
that knows where that folder is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

DOCKERFILES: Final = Path(__file__).resolve().parent.parent / "dockerfiles"


def dockerfile(name: str) -> Path:
    """``dockerfiles/<name>.Dockerfile``; its build context is ``dockerfiles/<name>/``."""
    return DOCKERFILES / f"{name}.Dockerfile"
