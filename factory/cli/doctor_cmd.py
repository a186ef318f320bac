"""`factory doctor`: check this host."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from factory.cli.app import app
from factory.engine import doctor
from factory.errors import DoctorError, FactoryError
from factory.model import config as cfg
from factory.util import console


@app.command("doctor")
def doctor_command(
    fix: Annotated[
        bool,
        typer.Option(
            "--fix",
            help="Register the builder's QEMU in binfmt_misc (one privileged container) so "
            "`docker run` of another architecture's image works.",
        ),
    ] = False,
) -> None:
    """Check the Docker engine, disk space, binfmt_misc, bootstrap tools and the registry."""
    if fix:
        _fix_binfmt()
    findings: list[doctor.Check] = []
    engine_finding, root = doctor.check_engine()
    findings.append(engine_finding)
    findings.append(doctor.check_disk(Path(root) if root else Path.cwd()))
    findings.append(doctor.check_binfmt())
    base_present = False
    config: cfg.Config | None = None
    try:
        config = cfg.load(Path(console.options().config))
    except FactoryError as err:
        findings.append(
            doctor.Check(
                name="images.toml",
                status=doctor.Status.WARN,
                detail=err.message,
                fix="Fix images.toml.",
            )
        )
    if engine_finding.status is not doctor.Status.FAIL:
        from factory.engine import docker_engine as engine

        base = config.builder.base if config else cfg.DEFAULT_BASE
        base_present = bool(engine.client().images.list(name=base))
    findings.append(doctor.check_bootstrap_tools(base_present))
    if config is not None:
        findings.append(doctor.check_registry(config.registry.repository))
    if console.options().json:
        console.result_json([f.to_json() for f in findings])
    else:
        console.table(
            ["check", "status", "detail", "fix"],
            [[f.name, f.status.value, f.detail, f.fix] for f in findings],
        )
    failed = [f.name for f in findings if f.status is doctor.Status.FAIL]
    if failed:
        raise DoctorError(f"Required: {', '.join(failed)}.", hint="Apply the fixes shown above.")


def _fix_binfmt() -> None:
    from factory.engine import binfmt, builder
    from factory.engine import docker_engine as engine

    config = cfg.load(Path(console.options().config))
    client = engine.client()
    image = builder.ensure_builder(
        client, dockerfile=config.dockerfile_path, base=config.builder.base
    )
    console.info(f"doctor: registering QEMU in binfmt_misc from {image.tag} (privileged)")
    for name, enabled in sorted(binfmt.fix(client, image.tag).items()):
        console.info(f"doctor: {name} {'enabled' if enabled else 'DISABLED'}")
