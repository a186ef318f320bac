"""`factory inspect REF`: what a registry serves for a reference."""

from __future__ import annotations

from factory.cli.app import app
from factory.cli.options import InsecureOption, ReferenceArgument
from factory.cli.render import size
from factory.distribution import inspect as inspection
from factory.util import console


@app.command("inspect")
def inspect_command(ref: ReferenceArgument, insecure: InsecureOption = False) -> None:
    """Show what a registry serves for REF: the index's platforms, digests and sizes."""
    found = inspection.inspect(ref, insecure=insecure)
    if console.options().json:
        console.result_json(found.to_json())
        return
    kind = "index" if found.is_index else "manifest"
    console.result(f"{found.reference}  ({kind}, {found.size} bytes)")
    console.table(
        ["platform", "digest", "manifest", "image"],
        [
            [e.platform or "-", e.digest, f"{e.manifest_size} B", size(e.image_size)]
            for e in found.entries
        ],
    )
