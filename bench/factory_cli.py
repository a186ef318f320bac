"""factory's own CLI, with the Cargo driver's cache volume taken from the environment.

    FACTORY_BENCH_CACHE_VOLUME=factory-bench-cache python -m bench.factory_cli build -t arm64

The benchmarks time real `factory` commands but must not wipe the caches of people using the
same engine, so their cold builds get a volume of their own. Nothing else changes.
"""

from __future__ import annotations

import os

from factory.build import driver
from factory.build.cargo import CargoDriver
from factory.cli import main

VOLUME_VARIABLE = "FACTORY_BENCH_CACHE_VOLUME"

if __name__ == "__main__":
    volume = os.environ.get(VOLUME_VARIABLE)
    if volume:
        driver.DRIVERS = {**driver.DRIVERS, "cargo": CargoDriver(volume=volume)}  # type: ignore[misc]
    raise SystemExit(main())
