"""images.toml: the file users write, parsed into frozen dataclasses.

Every mistake becomes one ConfigError that names the file, the key (with its line where the
text shows it) and the fix: factory/model/reader.py reads the TOML into the dataclasses by their
types, and the checks here add what the types alone do not say. The dataclasses below are also
the source of the JSON Schema (factory/model/schema.py): a field's metadata["doc"] is its
description.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from factory import resources
from factory.errors import ConfigError, UsageError
from factory.model import targets as target_table
from factory.model.cache_config import CacheConfig, check_cache
from factory.model.reader import KeyPath, Origin, Reader, closest, doc

DEFAULT_CONFIG = Path("images.toml")
DEFAULT_BASE = "debian:trixie-slim"
DEFAULT_REGISTRY = "127.0.0.1:5000/factory"
PAGE_SIZES = (4096, 16384)
"""The page sizes a smoke run can have: qemu-user's (the host's 4K), Debian's arm64-16k kernel."""

Driver = Literal["cargo", "bazel"]
Profile = Literal["opt", "dbg", "fastbuild"]

# The OCI distribution spec's grammar for tags and repository names.
TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_HOST = rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:]+\])(?::[0-9]+)?"
REPOSITORY_RE = re.compile(rf"(?:{_HOST}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
IMAGE_NAME_RE = re.compile(_PATH_COMPONENT)
FEATURE_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_+.-]*(?:/[A-Za-z0-9_][A-Za-z0-9_+.-]*)?")
USER_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*(?::[A-Za-z0-9_][A-Za-z0-9_.-]*)?")


@dataclass(frozen=True, kw_only=True)
class WorkspaceConfig:
    path: str = field(default=".", metadata=doc("The Rust workspace, relative to images.toml."))
    driver: Driver = field(default="cargo", metadata=doc("How to compile: cargo or bazel."))
    profile: Profile = field(
        default="opt",
        metadata=doc("opt (LTO, stripped, -O3), dbg (debug info) or fastbuild (no optimisation)."),
    )


@dataclass(frozen=True, kw_only=True)
class BuilderConfig:
    base: str = field(
        default=DEFAULT_BASE,
        metadata=doc(
            "The base image of the builder. When it is neither present nor pullable, factory "
            "bootstraps it from Debian's packages."
        ),
    )
    dockerfile: str | None = field(
        default=None,
        metadata=doc(
            "A builder Dockerfile of your own, relative to images.toml (its context is the "
            "folder beside it named after its stem). Absent: factory's own builder."
        ),
    )


@dataclass(frozen=True, kw_only=True)
class RegistryConfig:
    repository: str = field(
        default=DEFAULT_REGISTRY,
        metadata=doc(
            "Where images go: `<registry>/<path>`; each image is pushed to <this>/<name>."
        ),
    )
    insecure: bool = field(
        default=False,
        metadata=doc("Allow plain HTTP for a registry that is not on a loopback address."),
    )


@dataclass(frozen=True, kw_only=True)
class BazelConfig:
    remote_cache: str | None = field(
        default=None, metadata=doc("Passed as --remote_cache (grpc://, grpcs:// or https://).")
    )
    remote_executor: str | None = field(default=None, metadata=doc("Passed as --remote_executor."))
    remote_header: tuple[str, ...] = field(
        default=(), metadata=doc("Each passed as --remote_header=NAME=VALUE.")
    )
    flags: tuple[str, ...] = field(default=(), metadata=doc("Extra flags for `bazel build`."))


@dataclass(frozen=True, kw_only=True)
class FilesConfig:
    ca_certificates: bool = field(
        default=False, metadata=doc("Add /etc/ssl/certs/ca-certificates.crt to the image.")
    )
    passwd: bool = field(
        default=False,
        metadata=doc("Add /etc/passwd and /etc/group with a non-root user `nonroot` (65532)."),
    )


@dataclass(frozen=True, kw_only=True)
class SmokeConfig:
    args: tuple[str, ...] = field(default=(), metadata=doc("Arguments for the smoke run."))
    stdout: str | None = field(
        default=None, metadata=doc("A regular expression the smoke run's stdout must match.")
    )
    exit_code: int = field(default=0, metadata=doc("The exit code the smoke run must give."))
    timeout: float = field(default=60.0, metadata=doc("Seconds before the smoke run is killed."))
    page_sizes: tuple[int, ...] = field(
        default=(),
        metadata={"item_choices": PAGE_SIZES}
        | doc(
            "Page sizes in bytes to run the smoke test under: 4096 is the normal run (qemu-user "
            "has the host's 4K pages); 16384 also boots each arm64 binary under Debian's "
            "16K-page arm64 kernel in qemu-system-aarch64. Empty: the normal run only."
        ),
    )


@dataclass(frozen=True, kw_only=True)
class ImageConfig:
    name: str = field(metadata=doc("The image's name: the last component of its repository."))
    binary: str = field(metadata=doc("The binary (Cargo bin target) that the image runs."))
    package: str | None = field(
        default=None, metadata=doc("The Cargo package that holds the binary (default: binary).")
    )
    features: tuple[str, ...] = field(
        default=(), metadata=doc("Cargo features of the package to build with (`--features`).")
    )
    default_features: bool = field(
        default=True,
        metadata=doc("false: build without the package's default features (Cargo driver)."),
    )
    bazel_label: str | None = field(
        default=None,
        metadata=doc(
            "The Bazel label prefix; `_<target>` is appended "
            "(default: //rust/<binary>:<binary>_static)."
        ),
    )
    targets: tuple[str, ...] = field(
        default=target_table.DEFAULT_TARGETS,
        metadata=doc("Target names, `all`, globs (`arm64_v9*`) or OCI platforms."),
    )
    tags: tuple[str, ...] = field(default=("latest",), metadata=doc("Tags of the image index."))
    repository: str | None = field(
        default=None, metadata=doc("Overrides [registry].repository + '/' + name.")
    )
    entrypoint: tuple[str, ...] | None = field(
        default=None, metadata=doc('The image\'s entrypoint (default: ["/<binary>"]).')
    )
    cmd: tuple[str, ...] = field(default=(), metadata=doc("The image's default arguments."))
    user: str | None = field(
        default=None, metadata=doc("The user to run as: `uid[:gid]` or a name from passwd.")
    )
    env: dict[str, str] = field(default_factory=dict, metadata=doc("Environment variables."))
    labels: dict[str, str] = field(default_factory=dict, metadata=doc("Image config labels."))
    annotations: dict[str, str] = field(default_factory=dict, metadata=doc("Manifest annotations."))
    files: FilesConfig = field(default_factory=FilesConfig, metadata=doc("Extra files."))
    smoke: SmokeConfig = field(default_factory=SmokeConfig, metadata=doc("The smoke test."))

    @property
    def resolved_targets(self) -> tuple[target_table.Target, ...]:
        return target_table.select(self.targets)

    @property
    def cargo_package(self) -> str:
        return self.package or self.binary

    @property
    def resolved_entrypoint(self) -> tuple[str, ...]:
        return self.entrypoint if self.entrypoint is not None else (f"/{self.binary}",)


@dataclass(frozen=True, kw_only=True)
class Config:
    workspace: WorkspaceConfig = field(default_factory=WorkspaceConfig, metadata=doc("Workspace."))
    builder: BuilderConfig = field(default_factory=BuilderConfig, metadata=doc("Builder."))
    registry: RegistryConfig = field(default_factory=RegistryConfig, metadata=doc("Registry."))
    bazel: BazelConfig = field(default_factory=BazelConfig, metadata=doc("Bazel options."))
    cache: CacheConfig = field(
        default_factory=CacheConfig, metadata=doc("A compile cache for Cargo builds (sccache).")
    )
    image: tuple[ImageConfig, ...] = field(
        default=(), metadata=doc("The images: one [[image]] table each.")
    )
    source: Path = field(default=DEFAULT_CONFIG, metadata={"internal": True})
    """The file this came from (not a key of the file); relative paths start at its folder."""
    files: tuple[Path, ...] = field(default=(), metadata={"internal": True})
    """Every file it was read from: images.toml, or the Cargo.toml files that hold it; none
    for the defaults of a workspace's one binary."""

    @property
    def root(self) -> Path:
        return self.source.resolve().parent

    @property
    def workspace_path(self) -> Path:
        return (self.root / self.workspace.path).resolve()

    @property
    def dockerfile_path(self) -> Path:
        """The builder's Dockerfile: [builder] dockerfile, else the one factory carries."""
        if self.builder.dockerfile is None:
            return resources.dockerfile("builder")
        return (self.root / self.builder.dockerfile).resolve()

    def repository_of(self, image: ImageConfig) -> str:
        return image.repository or f"{self.registry.repository}/{image.name}"

    def select_images(self, names: typing.Sequence[str]) -> tuple[ImageConfig, ...]:
        if not names:
            return self.image
        known = {i.name: i for i in self.image}
        for name in names:
            if name not in known:
                close = closest(name, known)
                hint = f" Did you mean {close!r}?" if close else ""
                raise UsageError(
                    f"{self.source}: no [[image]] is named {name!r}.{hint} "
                    f"Images: {', '.join(known)}."
                )
        return tuple(i for i in self.image if i.name in names)


def load(source: Path) -> Config:
    """Read and validate images.toml. Raises ConfigError with a message that names the fix."""
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise ConfigError(
            f"{source}: no such file. Run factory where images.toml is, or pass "
            "--config PATH (docs/configuration.md describes every key; `factory init` writes one)."
        ) from err
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{source}: cannot be read ({err}). Check the path.") from err
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(
            f"{source}: not valid TOML: {err}. Fix the syntax at that position."
        ) from err
    return parse(raw, source=source, text=text)


def parse(
    raw: dict[str, Any],
    *,
    source: Path,
    text: str = "",
    origins: Mapping[KeyPath, Origin] | None = None,
    files: tuple[Path, ...] | None = None,
) -> Config:
    """Validate a document read from ``source`` (or, with ``origins``, assembled from the
    files it names: see factory.model.reader.Reader)."""
    reader = Reader(source, text, origins)
    config: Config = reader.table(Config, raw, ())
    config = dataclasses.replace(config, source=source, files=(source,) if files is None else files)
    _check(config, reader)
    return config


# --- the checks the types alone do not make -----------------------------------------------


def _check(config: Config, reader: Reader) -> None:
    if not config.image:
        raise reader.fail(
            (), "no image is described.", "Add an [[image]] table with name and binary."
        )
    if not config.workspace_path.is_dir():
        raise reader.fail(
            ("workspace", "path"),
            f"the workspace {config.workspace.path!r} does not exist "
            f"(resolved to {config.workspace_path}).",
            "Point it at the folder holding the workspace's Cargo.toml, relative to images.toml.",
        )
    _check_repository(reader, ("registry", "repository"), config.registry.repository)
    check_cache(reader, config.cache)
    seen: dict[str, int] = {}
    for index, image in enumerate(config.image):
        path: KeyPath = ("image", index)
        _check_name(reader, path, image.name, seen)
        seen[image.name] = index
        _check_image(reader, path, image)
        _check_smoke(reader, (*path, "smoke"), image.smoke)


def _check_name(reader: Reader, path: KeyPath, name: str, seen: dict[str, int]) -> None:
    if not IMAGE_NAME_RE.fullmatch(name):
        raise reader.fail(
            (*path, "name"),
            f"{name!r} is not a valid repository name component.",
            "Use lowercase letters, digits and single separators (. _ -), e.g. 'hello-world'.",
        )
    if name in seen:
        raise reader.fail(
            (*path, "name"),
            f"the image name {name!r} is used twice (also by image {seen[name]}).",
            "Give every [[image]] its own name.",
        )


def _check_image(reader: Reader, path: KeyPath, image: ImageConfig) -> None:
    if not image.targets:
        raise reader.fail((*path, "targets"), "no target is selected.", 'Use ["all"].')
    for i, spec in enumerate(image.targets):
        try:
            target_table.expand(spec)
        except UsageError as err:
            raise reader.fail((*path, "targets", i), err.message, "") from err
    if not image.tags:
        raise reader.fail((*path, "tags"), "no tag is given.", 'Use ["latest"].')
    for i, tag in enumerate(image.tags):
        if not TAG_RE.fullmatch(tag):
            raise reader.fail(
                (*path, "tags", i),
                f"{tag!r} is not a valid OCI tag.",
                "A tag is 1 to 128 letters, digits, '_', '.', '-', not starting with . or -.",
            )
    if image.repository is not None:
        _check_repository(reader, (*path, "repository"), image.repository)
    if image.user is not None and not USER_RE.fullmatch(image.user):
        raise reader.fail(
            (*path, "user"),
            f"{image.user!r} is not a user.",
            "Write uid[:gid], e.g. 65532:65532.",
        )
    if image.entrypoint is not None and not image.entrypoint:
        raise reader.fail(
            (*path, "entrypoint"), "the entrypoint is empty.", f'Use ["/{image.binary}"].'
        )
    for i, feature in enumerate(image.features):
        if not FEATURE_RE.fullmatch(feature):
            raise reader.fail(
                (*path, "features", i),
                f"{feature!r} is not a Cargo feature name.",
                'Name one feature per string, e.g. ["vendored", "serde/derive"].',
            )


def _check_smoke(reader: Reader, path: KeyPath, smoke: SmokeConfig) -> None:
    if smoke.stdout is not None:
        try:
            re.compile(smoke.stdout)
        except re.error as err:
            raise reader.fail(
                (*path, "stdout"),
                f"not a valid regular expression ({err}).",
                "Escape brackets and parentheses with \\\\.",
            ) from err
    if not 0 <= smoke.exit_code <= 255:
        raise reader.fail((*path, "exit_code"), "an exit code is 0 to 255.", "Correct it.")
    if smoke.timeout <= 0:
        raise reader.fail((*path, "timeout"), "the timeout must be positive.", "Use e.g. 60.")
    for i, size in enumerate(smoke.page_sizes):
        if size not in PAGE_SIZES:
            raise reader.fail(
                (*path, "page_sizes", i),
                f"{size} is not a page size factory can run a binary under.",
                "Use 4096 (the normal smoke run, qemu-user with the host's 4K pages) or 16384 "
                "(arm64 binaries also boot under Debian's 16K-page arm64 kernel); Debian "
                "packages no arm64 kernel with other page sizes (no 64K flavour), so 65536 "
                "cannot be tested.",
            )
        if size in smoke.page_sizes[:i]:
            raise reader.fail(
                (*path, "page_sizes", i), f"{size} is listed twice.", "List each size once."
            )


def _check_repository(reader: Reader, path: KeyPath, ref: str) -> None:
    if not REPOSITORY_RE.fullmatch(ref) or len(ref) > 255:
        raise reader.fail(
            path,
            f"{ref!r} is not a valid repository reference.",
            "Write host[:port]/path in lowercase with no tag, e.g. '127.0.0.1:5000/factory'.",
        )


def to_json(config: Config) -> dict[str, Any]:
    """The resolved configuration, defaults filled in, for `factory config`."""

    def convert(value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {
                f.name: convert(getattr(value, f.name))
                for f in dataclasses.fields(value)
                if not f.metadata.get("internal")
            }
        if isinstance(value, tuple | list):
            return [convert(v) for v in value]
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        return value

    document: dict[str, Any] = convert(config)
    for image, out in zip(config.image, document["image"], strict=True):
        out["targets"] = [t.name for t in image.resolved_targets]
        out["entrypoint"] = list(image.resolved_entrypoint)
        out["package"] = image.cargo_package
        out["repository"] = config.repository_of(image)
    document["workspace"]["path"] = str(config.workspace_path)
    document["builder"]["dockerfile"] = str(config.dockerfile_path)
    return document
