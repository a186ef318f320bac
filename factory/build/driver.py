"""The Driver protocol and the one table of drivers, by images.toml's [workspace] driver.

A driver compiles what a Request asks for and returns one Binary per image x target, each
already in dist/bin/<image>/<target>/<binary>. The pipeline picks it from DRIVERS and nothing
else in factory branches on the driver's name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Protocol

from factory.build.bazel import BazelDriver
from factory.build.binary import Binary
from factory.build.cargo import CargoDriver
from factory.build.job import Request
from factory.model.config import Driver as DriverName


class Driver(Protocol):
    """Compiles every image x target of a Request (see factory.build.job)."""

    def build(self, request: Request) -> list[Binary]: ...


DRIVERS: Final[Mapping[DriverName, Driver]] = {"cargo": CargoDriver(), "bazel": BazelDriver()}
