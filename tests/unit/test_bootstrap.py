"""Base image resolution and the Debian bootstrap, without an engine."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import docker.errors
import pytest

from factory.engine import bootstrap
from factory.engine.bootstrap import BootstrapError, parse_base
from factory.errors import ExitCode


@pytest.mark.parametrize(
    ("ref", "suite", "tag", "bootstrap_tag"),
    [
        ("debian:trixie-slim", "trixie", "trixie-slim", "factory-bootstrap/debian:trixie-slim"),
        ("debian:trixie", "trixie", "trixie", "factory-bootstrap/debian:trixie"),
        ("debian:bookworm-20250101-slim", "bookworm", "bookworm-20250101-slim",
         "factory-bootstrap/debian:bookworm-20250101-slim"),
        ("docker.io/library/debian:sid-slim", "sid", "sid-slim",
         "factory-bootstrap/debian:sid-slim"),
        ("debian", "stable", "latest", "factory-bootstrap/debian:latest"),
        ("debian:stable-slim", "stable", "stable-slim", "factory-bootstrap/debian:stable-slim"),
    ],
)  # fmt: skip
def test_parse_base(ref: str, suite: str, tag: str, bootstrap_tag: str) -> None:
    base = parse_base(ref)
    assert (base.suite, base.tag, base.bootstrap_tag) == (suite, tag, bootstrap_tag)


@pytest.mark.parametrize(
    "ref", ["alpine:3", "ubuntu:noble", "debian:potato", "debian@sha256:" + "0" * 64]
)
def test_non_debian_bases_are_refused_with_a_fix(ref: str) -> None:
    with pytest.raises(BootstrapError) as caught:
        parse_base(ref)
    assert caught.value.exit_code is ExitCode.ENGINE
    assert "docker load" in str(caught.value)


def test_find_tool_prefers_mmdebstrap_then_debootstrap() -> None:
    assert bootstrap.find_tool(lambda name: f"/usr/bin/{name}") == "mmdebstrap"
    only_deboot = {"debootstrap": "/usr/sbin/debootstrap", "tar": "/usr/bin/tar"}
    assert bootstrap.find_tool(only_deboot.get) == "debootstrap"


def test_no_tool_is_a_clear_error() -> None:
    with pytest.raises(BootstrapError, match="apt-get install mmdebstrap"):
        bootstrap.find_tool(lambda name: None)


def test_bootstrap_commands() -> None:
    assert bootstrap.bootstrap_command("mmdebstrap", "trixie") == [
        "mmdebstrap", "--variant=minbase", "--quiet", "trixie", "-",
    ]  # fmt: skip
    assert bootstrap.bootstrap_command("debootstrap", "trixie", Path("/tmp/r")) == [
        "debootstrap", "--variant=minbase", "trixie", "/tmp/r",
    ]  # fmt: skip
    with pytest.raises(ValueError):
        bootstrap.bootstrap_command("debootstrap", "trixie")


def test_imported_image_is_labelled() -> None:
    changes = bootstrap.import_changes(parse_base("debian:trixie-slim"), "mmdebstrap")
    assert "LABEL org.factory.managed=true" in changes
    assert "LABEL org.factory.bootstrap=mmdebstrap" in changes
    assert 'CMD ["/bin/bash"]' in changes


class _Images:
    def __init__(self, present: set[str]) -> None:
        self.present = present

    def get(self, ref: str) -> object:
        if ref not in self.present:
            raise docker.errors.ImageNotFound(ref)
        return SimpleNamespace(tags=[ref], attrs={})


class _Engine:
    def __init__(self, present: set[str]) -> None:
        self.images = _Images(present)


def _never_pull(engine: Any, ref: str) -> bool:
    return False


def test_resolve_prefers_the_local_image() -> None:
    engine: Any = _Engine({"debian:trixie-slim"})
    assert bootstrap.resolve_base(engine, "debian:trixie-slim", pull=_never_pull) == (
        "debian:trixie-slim"
    )


def test_resolve_reuses_an_earlier_bootstrap() -> None:
    engine: Any = _Engine({"factory-bootstrap/debian:trixie-slim"})
    logged: list[str] = []
    ref = bootstrap.resolve_base(engine, "debian:trixie-slim", pull=_never_pull, log=logged.append)
    assert ref == "factory-bootstrap/debian:trixie-slim"
    assert logged and "bootstrapped earlier" in logged[0]


def test_resolve_pulls_before_bootstrapping() -> None:
    engine: Any = _Engine(set())
    assert bootstrap.resolve_base(engine, "alpine:3", pull=lambda e, r: True) == "alpine:3"


def test_resolve_unpullable_non_debian_base_fails() -> None:
    engine: Any = _Engine(set())
    with pytest.raises(BootstrapError, match="not a Debian suite"):
        bootstrap.resolve_base(engine, "alpine:3", pull=_never_pull)


def test_resolve_bootstraps_when_nothing_else_works(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def fake_bootstrap(engine: Any, base: bootstrap.BaseRef, **kw: Any) -> str:
        calls.append(base.suite)
        return base.bootstrap_tag

    monkeypatch.setattr(bootstrap, "bootstrap", fake_bootstrap)
    engine: Any = _Engine(set())
    ref = bootstrap.resolve_base(engine, "debian:trixie-slim", pull=_never_pull)
    assert ref == "factory-bootstrap/debian:trixie-slim"
    assert calls == ["trixie"]


class _SuffixMatchingImages:
    """Podman's answer to a short name: any image whose name ends with it."""

    def __init__(self, names: list[str]) -> None:
        self.names = names

    def get(self, ref: str) -> object:
        for name in self.names:
            if name == ref or name.endswith(f"/{ref}"):
                return SimpleNamespace(tags=[name], attrs={})
        raise docker.errors.ImageNotFound(ref)


def test_resolve_does_not_take_an_image_whose_name_only_ends_with_the_base() -> None:
    engine: Any = SimpleNamespace(
        images=_SuffixMatchingImages(["localhost/factory-bootstrap/debian:trixie-slim"])
    )
    ref = bootstrap.resolve_base(engine, "debian:trixie-slim", pull=_never_pull)
    assert ref == "factory-bootstrap/debian:trixie-slim"


def test_the_import_names_the_tag_inside_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def import_image(**kwargs: Any) -> str:
        seen.update(kwargs)
        b"".join(kwargs["src"])
        return "{}"

    engine: Any = SimpleNamespace(api=SimpleNamespace(import_image=import_image))
    base = parse_base("debian:trixie-slim")
    bootstrap._stream_import(engine, base, "mmdebstrap", ["true"], None)
    # Podman's import reads no `tag` parameter: the whole name goes in `repo`.
    assert seen["repository"] == "factory-bootstrap/debian:trixie-slim"
    assert "tag" not in seen
