"""`factory keygen|sign|verify|referrers`: signatures and other artifacts that refer to an image.

`factory image --push` attaches the SBOM (and, with --sign-key, a signature) itself; these
commands sign, check and list what a registry holds for any image reference.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from factory.cli.app import app
from factory.cli.options import InsecureOption, ReferenceArgument
from factory.publish import supply
from factory.util import console


@app.command("keygen")
def keygen_command(
    prefix: Annotated[
        Path, typer.Argument(metavar="PREFIX", help="Writes PREFIX.key (0600) and PREFIX.pub.")
    ],
) -> None:
    """Make an ECDSA P-256 key pair for signing images (PEM; encrypted if COSIGN_PASSWORD)."""
    from factory.publish import signing  # cryptography loads only for the signing commands

    pair = signing.generate(prefix)
    if console.options().json:
        console.result_json({"private": str(pair.private), "public": str(pair.public)})
    else:
        console.result(f"private key: {pair.private}")
        console.result(f"public key:  {pair.public}")


@app.command("sign")
def sign_command(
    ref: ReferenceArgument,
    key: Annotated[
        Path, typer.Option("--key", metavar="PATH", help="The private key (PEM, ECDSA P-256).")
    ],
    insecure: InsecureOption = False,
) -> None:
    """Sign an image in a registry (cosign's simple signing), attached as a referrer."""
    attached = supply.sign(ref, key, insecure=insecure)
    if console.options().json:
        console.result_json(attached.to_json())
    else:
        console.result(f"signed {attached.subject}: signature {attached.digest} ({attached.via})")


@app.command("verify")
def verify_command(
    ref: ReferenceArgument,
    key: Annotated[Path, typer.Option("--key", metavar="PATH", help="The public key (PEM).")],
    insecure: InsecureOption = False,
) -> None:
    """Check an image's signatures with a public key: exit 0 when one is valid, else 5."""
    checked = supply.verify(ref, key, insecure=insecure)
    if console.options().json:
        console.result_json({"reference": ref, "signatures": [c.to_json() for c in checked]})
        return
    for c in checked:
        console.result(f"{c.artifact}: {c.reason}")


@app.command("referrers")
def referrers_command(ref: ReferenceArgument, insecure: InsecureOption = False) -> None:
    """List the artifacts (SBOMs, signatures) that refer to an image."""
    subject, listed, via = supply.listing(ref, insecure=insecure)
    if console.options().json:
        console.result_json({"subject": subject, "via": via, "referrers": listed})
        return
    console.info(f"{len(listed)} referrer(s) of {subject} ({via})")
    console.table(
        ["artifact type", "digest", "size"],
        [
            [str(m.get("artifactType", "-")), str(m["digest"]), str(m.get("size", ""))]
            for m in listed
        ],
    )
