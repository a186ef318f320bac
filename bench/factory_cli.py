"""factory's own CLI, with warm starts switched by the environment.

    FACTORY_CACHE_VOLUME=factory-bench-cache FACTORY_BENCH_WARM_START=0 \
        python -m bench.factory_cli build -t arm64

The benchmarks time real `factory` commands but must not wipe the caches of people using the
same engine, so their cold builds get a volume of their own (FACTORY_CACHE_VOLUME, which factory
itself reads). Nothing else changes, but for FACTORY_BENCH_WARM_START=0, which makes the driver
start new target directories empty (the "before" side of bench/warm_start.py).
"""

from __future__ import annotations

import os

from factory.build import driver
from factory.build.cargo import CargoDriver
from factory.cli import main

WARM_START_VARIABLE = "FACTORY_BENCH_WARM_START"
"""0: new target directories start empty, as before warm starts (bench/warm_start.py)."""

if __name__ == "__main__":
    if os.environ.get(WARM_START_VARIABLE, "1") == "0":
        chosen = CargoDriver(warm_start=False)
        driver.DRIVERS = {**driver.DRIVERS, "cargo": chosen}  # type: ignore[misc]
    raise SystemExit(main())
