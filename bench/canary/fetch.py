#!/usr/bin/env python3
"""Bring the canary crates' published sources to bench/canary/crates/<name>-<version>/.

Each canary of canaries.toml (or the ones named, or only the small one with --small) is fetched
as cargo fetches any dependency: a throwaway manifest in a temporary directory depends on
`<name> = "=<version>"`, `cargo fetch` downloads and unpacks it under
$CARGO_HOME/registry/src/*/<name>-<version>/, and that directory is copied to the output
directory. A copy is made in a temporary directory beside its final place and renamed once it is
whole, so a crate present there is complete; it is fetched again only when it is not.

Without cargo on the PATH, cargo runs in a container of factory's newest builder image, with a
CARGO_HOME in the temporary directory. Standard library only: this runs before anything is
installed.

Exit status: 0 when every crate is there, 2 when cargo is missing, a fetch fails, a published
crate lacks its Cargo.lock or its binary, or the names or canaries.toml are wrong.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

HERE: Final = Path(__file__).resolve().parent
CANARIES: Final = HERE / "canaries.toml"
DEFAULT_OUT: Final = HERE / "crates"
MARKER: Final = ".canary-complete"
"""Written in a copy once it is whole, before the copy is renamed into place."""
BUILDER_LABEL: Final = "org.factory.role=builder"
FORMAT: Final = "{{.Repository}}:{{.Tag}}"
CONTAINER_WORK: Final = "/canary-fetch"
CONTAINER_CA: Final = "/etc/factory/host-ca.crt"
PROXY_VARIABLES: Final = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
)


class FetchError(Exception):
    """A problem explained in one paragraph; the script exits with status 2."""


@dataclass(frozen=True)
class Canary:
    name: str
    version: str
    bin: str
    small: bool
    features: tuple[str, ...] = ()
    no_default_features: bool = False
    smoke_args: tuple[str, ...] = ()
    smoke_stdout: str = ""
    categories: tuple[str, ...] = ()
    exercise_args: tuple[str, ...] = ()
    exercise_creates: tuple[str, ...] = ()

    @property
    def directory(self) -> str:
        return f"{self.name}-{self.version}"

    @property
    def image(self) -> str:
        """The image's name: the crate's, as an OCI repository component allows it."""
        return self.name.replace("_", "-")

    def images_toml(self, workspace: Path, targets: Sequence[str]) -> str:
        """An images.toml that builds this canary, unmodified, through factory."""
        lines = [
            "[workspace]",
            f"path = {json.dumps(str(workspace))}",
            'driver = "cargo"',
            "",
            "[[image]]",
            f"name = {json.dumps(self.image)}",
            f"binary = {json.dumps(self.bin)}",
            f"package = {json.dumps(self.name)}",
            f"features = {json.dumps(list(self.features))}",
            f"default_features = {json.dumps(not self.no_default_features)}",
            f"targets = {json.dumps(list(targets))}",
            "",
            "[image.smoke]",
            f"args = {json.dumps(list(self.smoke_args))}",
            f"stdout = {json.dumps(self.smoke_stdout)}",
            "timeout = 120",
        ]
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Cargo:
    """How to run `cargo fetch` in a directory: on the host, or in a builder container."""

    image: str | None = None
    """The builder image when cargo runs in a container; None for the host's cargo."""

    def describe(self) -> str:
        return "the host's cargo" if self.image is None else f"cargo in {self.image}"


# ---- canaries.toml ----------------------------------------------------------------------------


def _require(table: dict[str, Any], key: str, kind: type, where: str) -> Any:
    value = table.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise FetchError(f"{where}: `{key}` must be a {kind.__name__}, not {value!r}.")
    return value


def load_canaries(path: Path) -> list[Canary]:
    """The canaries of `path`, checked enough for this script and for the tests that use it."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise FetchError(f"The canary list {path} cannot be read: {error}.") from error
    categories = data.get("categories")
    tables = data.get("canary")
    if not isinstance(categories, dict) or not isinstance(tables, list) or not tables:
        raise FetchError(f"{path} needs a [categories] table and at least one [[canary]] table.")
    canaries: list[Canary] = []
    for index, table in enumerate(tables):
        where = f"{path.name}, canary #{index + 1}"
        if not isinstance(table, dict):
            raise FetchError(f"{where} is not a table.")
        name = _require(table, "name", str, where)
        where = f"{path.name}, canary {name}"
        version = _require(table, "version", str, where)
        if not re.fullmatch(r"\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]+)?", version):
            raise FetchError(f"{where}: `version` must be one exact version, not {version!r}.")
        optional = [key for key in ("exercise_args", "exercise_creates") if key in table]
        for key in ["features", "smoke_args", "categories", "tools", *optional]:
            values = _require(table, key, list, where)
            if not all(isinstance(value, str) for value in values):
                raise FetchError(f"{where}: `{key}` must be a list of strings.")
        _require(table, "no_default_features", bool, where)
        _require(table, "why", str, where)
        _require(table, "evidence", dict, where)
        pattern = _require(table, "smoke_stdout", str, where)
        try:
            re.compile(pattern)
        except re.error as error:
            raise FetchError(
                f"{where}: `smoke_stdout` is no regular expression: {error}."
            ) from error
        unknown = sorted(set(table["categories"]) - set(categories))
        if unknown:
            raise FetchError(f"{where}: unknown categories {', '.join(unknown)}.")
        missing = sorted(set(table["categories"]) - set(table["evidence"]))
        if missing:
            raise FetchError(f"{where}: no evidence for {', '.join(missing)}.")
        canaries.append(
            Canary(
                name=name,
                version=version,
                bin=_require(table, "bin", str, where),
                small=bool(table.get("small", False)),
                features=tuple(table["features"]),
                no_default_features=table["no_default_features"],
                smoke_args=tuple(table["smoke_args"]),
                smoke_stdout=pattern,
                categories=tuple(table["categories"]),
                exercise_args=tuple(table.get("exercise_args", ())),
                exercise_creates=tuple(table.get("exercise_creates", ())),
            )
        )
    names = [canary.name for canary in canaries]
    if len(set(names)) != len(names):
        raise FetchError(f"{path} names a crate twice.")
    if sum(canary.small for canary in canaries) != 1:
        raise FetchError(f"{path} must mark exactly one canary with `small = true`.")
    covered = {category for table in tables for category in table["categories"]}
    if covered != set(categories):
        lacking = ", ".join(sorted(set(categories) - covered))
        raise FetchError(f"{path}: no canary covers {lacking}.")
    return canaries


def select(canaries: Sequence[Canary], names: Sequence[str], small: bool) -> list[Canary]:
    if small:
        return [canary for canary in canaries if canary.small]
    if not names:
        return list(canaries)
    known = {canary.name: canary for canary in canaries}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise FetchError(
            f"{', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not in the canary "
            f"list; the canaries are {', '.join(known)}."
        )
    return [known[name] for name in dict.fromkeys(names)]


# ---- cargo ------------------------------------------------------------------------------------


def find_cargo() -> Cargo:
    """The host's cargo, else a builder image to run cargo in; FetchError when neither exists."""
    if shutil.which("cargo"):
        return Cargo()
    if not shutil.which("docker"):
        problem = "docker is not either, so no builder image can stand in for it"
    else:
        image, problem = newest_builder()
        if image is not None:
            return Cargo(image=image)
    raise FetchError(
        f"cargo is not on the PATH, and {problem}. Install Rust's cargo (rustup, or the "
        "distribution's cargo package) and run this again, or build factory's builder image "
        "first (factory builder) so that cargo runs in it; the fetch needs cargo and the crate "
        "registry, nothing else."
    )


def newest_builder() -> tuple[str | None, str]:
    """The newest image labelled as factory's builder (docker lists newest first), or why not."""
    argv = ["docker", "images", "--filter", f"label={BUILDER_LABEL}", "--format", FORMAT]
    try:
        listed = subprocess.run(argv, capture_output=True, text=True, check=False)
    except OSError as error:
        return None, f"docker does not run ({error})"
    if listed.returncode != 0:
        said = " ".join(listed.stderr.split()) or f"status {listed.returncode}"
        return None, f"docker cannot list its images ({said})"
    for line in listed.stdout.splitlines():
        if line.strip() and "<none>" not in line:
            return line.strip(), ""
    return None, f"docker has no factory builder image (none labelled {BUILDER_LABEL})"


def manifest(canary: Canary) -> str:
    """A package that only depends on the canary; default features off, so less is fetched."""
    return (
        "[package]\n"
        'name = "factory-canary-fetch"\n'
        'version = "0.0.0"\n'
        'edition = "2021"\n'
        "publish = false\n\n"
        "[lib]\n"
        'path = "lib.rs"\n\n'
        "[dependencies]\n"
        f'{canary.name} = {{ version = "={canary.version}", default-features = false }}\n\n'
        "[workspace]\n"
    )


def host_ca_bundle() -> Path | None:
    """The host's CA bundle, which the container trusts instead of its own."""
    for candidate in (os.environ.get("SSL_CERT_FILE"), "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            return Path(candidate).resolve()
    return None


def cargo_home() -> Path:
    configured = os.environ.get("CARGO_HOME")
    return Path(configured) if configured else Path.home() / ".cargo"


def unpacked(home: Path, canary: Canary) -> Path | None:
    """The crate as cargo unpacked it under `home`, when it is there whole."""
    found = [
        path
        for path in (home / "registry" / "src").glob(f"*/{canary.directory}")
        if (path / "Cargo.toml").is_file() and (path / ".cargo-ok").is_file()
    ]
    return max(found, key=lambda path: path.stat().st_mtime) if found else None


def run_fetch(cargo: Cargo, work: Path, canary: Canary) -> Path:
    """`cargo fetch` for the canary in `work`; the CARGO_HOME it unpacked the crate into."""
    (work / "Cargo.toml").write_text(manifest(canary), encoding="utf-8")
    (work / "lib.rs").write_text("", encoding="utf-8")
    if cargo.image is None:
        home = cargo_home()
        argv = ["cargo", "fetch", "--manifest-path", str(work / "Cargo.toml")]
    else:
        home = work / "cargo-home"
        home.mkdir()
        argv = ["docker", "run", "--rm", "--user", f"{os.getuid()}:{os.getgid()}"]
        argv += ["--volume", f"{work}:{CONTAINER_WORK}", "--workdir", CONTAINER_WORK]
        argv += ["--env", f"CARGO_HOME={CONTAINER_WORK}/cargo-home"]
        argv += ["--env", f"HOME={CONTAINER_WORK}"]
        for variable in PROXY_VARIABLES:
            if variable in os.environ:
                argv += ["--env", variable]
        ca = host_ca_bundle()
        if ca is not None:  # for a TLS-inspecting proxy, as factory's own fetch does
            argv += [
                "--volume",
                f"{ca}:{CONTAINER_CA}:ro",
                "--env",
                f"CARGO_HTTP_CAINFO={CONTAINER_CA}",
            ]
        argv += [cargo.image, "cargo", "fetch"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
    except OSError as error:
        raise FetchError(
            f"{canary.name} {canary.version} could not be fetched: {argv[0]} did not start "
            f"({error})."
        ) from error
    if done.returncode != 0:
        said = (
            " ".join(line.strip() for line in done.stderr.splitlines() if line.strip())
            or "nothing on stderr"
        )
        raise FetchError(
            f"{canary.name} {canary.version} could not be fetched: `cargo fetch` with "
            f"{cargo.describe()} exited with status {done.returncode} ({said[-1500:]}). Check "
            "that the crate registry is reachable (a proxy goes in HTTPS_PROXY) and that this "
            "exact version is published and not yanked, then run this again."
        )
    return home


# ---- the copies -------------------------------------------------------------------------------


def size_of(path: Path) -> int:
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())


def human(size: float) -> str:
    for unit in ("B", "KiB", "MiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def complete(path: Path) -> bool:
    return all((path / name).is_file() for name in (MARKER, "Cargo.toml", "Cargo.lock"))


def binaries(path: Path) -> set[str]:
    """The binary targets of a published crate (its normalized Cargo.toml, or src/main.rs)."""
    data = tomllib.loads((path / "Cargo.toml").read_text(encoding="utf-8"))
    names = {str(target["name"]) for target in data.get("bin", []) if "name" in target}
    package = data.get("package", {})
    if package.get("autobins", True) is not False:
        if (path / "src" / "main.rs").is_file():
            names.add(str(package.get("name", "")))
        names.update(item.stem for item in (path / "src" / "bin").glob("*.rs"))
    return names


def check(copy: Path, canary: Canary) -> None:
    if not (copy / "Cargo.lock").is_file():
        raise FetchError(
            f"{canary.name} {canary.version} was published without a Cargo.lock, so it cannot "
            "be built with --locked as a canary must be; pick another version or crate in "
            "canaries.toml."
        )
    if canary.bin not in binaries(copy):
        raise FetchError(
            f"{canary.name} {canary.version} has no binary target named {canary.bin!r} (it has "
            f"{', '.join(sorted(binaries(copy))) or 'none'}); correct `bin` in canaries.toml."
        )


def place(source: Path, out: Path, canary: Canary) -> Path:
    """Copy `source` to out/<name>-<version>, whole or not at all."""
    target = out / canary.directory
    out.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{canary.directory}.", dir=out))
    try:
        copy = partial / canary.directory
        shutil.copytree(source, copy, symlinks=True)
        check(copy, canary)
        (copy / MARKER).write_text(f"{canary.name} {canary.version}\n", encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        copy.rename(target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target


def fetch(canary: Canary, out: Path, cargo: Cargo | None) -> tuple[str, Path, Cargo | None]:
    """Make out/<name>-<version> whole; what was done, where, and the cargo found on the way.

    What was done: "present" (a whole copy was there), "cached" (copied from the crate cargo
    had already unpacked in CARGO_HOME) or "fetched" (`cargo fetch` ran first).
    """
    target = out / canary.directory
    if complete(target):
        check(target, canary)
        return "present", target, cargo
    if cargo is None:
        cargo = find_cargo()
    if cargo.image is None and (source := unpacked(cargo_home(), canary)) is not None:
        return "cached", place(source, out, canary), cargo
    with tempfile.TemporaryDirectory(prefix="factory-canary-") as work:
        home = run_fetch(cargo, Path(work), canary)
        source = unpacked(home, canary)
        if source is None:
            raise FetchError(
                f"`cargo fetch` for {canary.name} {canary.version} succeeded, but the unpacked "
                f"crate is not under {home / 'registry' / 'src'}/*/{canary.directory}; if "
                "CARGO_HOME points elsewhere for cargo than for this script, make them agree."
            )
        return "fetched", place(source, out, canary), cargo


def relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("names", nargs="*", help="canaries to fetch (default: all of them)")
    parser.add_argument("--small", action="store_true", help="only the small canary")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"output directory (default: {DEFAULT_OUT})"
    )
    parser.add_argument(
        "--canaries", type=Path, default=CANARIES, help="the canary list (default: %(default)s)"
    )
    options = parser.parse_args(argv)
    if options.small and options.names:
        parser.error("--small and crate names exclude each other")
    try:
        chosen = select(load_canaries(options.canaries), options.names, options.small)
        out: Path = options.out.resolve()
        out.mkdir(parents=True, exist_ok=True)
        cargo: Cargo | None = None
        for canary in chosen:
            done, path, cargo = fetch(canary, out, cargo)
            print(
                f"{done:8} {canary.name} {canary.version}  {relative(path)}  "
                f"{human(size_of(path))}",
                flush=True,
            )
    except FetchError as error:
        print(f"fetch.py: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
