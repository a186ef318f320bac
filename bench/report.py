"""Put the latest result tables into BENCHMARKS.md, between its markers.

    uv run python bench/report.py

Every `<!-- bench:NAME -->` ... `<!-- /bench:NAME -->` block of BENCHMARKS.md is replaced by
bench/results/NAME.md (and the plot NAME.png when it exists); the prose around stays as written.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

DOCUMENT = common.ROOT / "BENCHMARKS.md"
_BLOCK = re.compile(r"<!-- bench:(\w+) -->\n.*?<!-- /bench:\1 -->", re.S)


def fill(text: str, results: Path) -> str:
    """`text` with every marked block replaced by that benchmark's latest table and plot."""

    def block(match: re.Match[str]) -> str:
        name = match.group(1)
        table = results / f"{name}.md"
        body = table.read_text() if table.exists() else "(not measured yet)\n"
        if (results / f"{name}.png").exists():
            body += f"\n![{name}](bench/results/{name}.png)\n"
        return f"<!-- bench:{name} -->\n{body}<!-- /bench:{name} -->"

    return _BLOCK.sub(block, text)


def main() -> int:
    DOCUMENT.write_text(fill(DOCUMENT.read_text(), common.RESULTS))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
