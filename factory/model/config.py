"""images.toml: the file users write, parsed into frozen dataclasses.

Every mistake becomes one ConfigError that names the file, the key (with its line where the
text shows it) and the fix. The dataclasses below are also the source of the JSON Schema
(factory/model/schema.py): a field's metadata["doc"] is its description.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from factory.errors import ConfigError, UsageError
from factory.model import targets as target_table

DEFAULT_CONFIG = Path("images.toml")
DEFAULT_BASE = "debian:trixie-slim"
DEFAULT_DOCKERFILE = "dockerfiles/builder.Dockerfile"
DEFAULT_REGISTRY = "127.0.0.1:5000/factory"

Driver = Literal["cargo", "bazel"]
Profile = Literal["opt", "dbg", "fastbuild"]

# The OCI distribution spec's grammar for tags and repository names.
TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_HOST = rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:]+\])(?::[0-9]+)?"
REPOSITORY_RE = re.compile(rf"(?:{_HOST}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
IMAGE_NAME_RE = re.compile(_PATH_COMPONENT)
USER_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*(?::[A-Za-z0-9_][A-Za-z0-9_.-]*)?")


def doc(text: str) -> dict[str, str]:
    return {"doc": text}


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
    dockerfile: str = field(
        default=DEFAULT_DOCKERFILE,
        metadata=doc("The builder's Dockerfile, relative to images.toml."),
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


@dataclass(frozen=True, kw_only=True)
class ImageConfig:
    name: str = field(metadata=doc("The image's name: the last component of its repository."))
    binary: str = field(metadata=doc("The binary (Cargo bin target) that the image runs."))
    package: str | None = field(
        default=None, metadata=doc("The Cargo package that holds the binary (default: binary).")
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
    image: tuple[ImageConfig, ...] = field(
        default=(), metadata=doc("The images: one [[image]] table each.")
    )
    source: Path = field(default=DEFAULT_CONFIG, metadata={"internal": True})
    """The file this came from (not a key of the file)."""

    @property
    def root(self) -> Path:
        return self.source.resolve().parent

    @property
    def workspace_path(self) -> Path:
        return (self.root / self.workspace.path).resolve()

    @property
    def dockerfile_path(self) -> Path:
        return (self.root / self.builder.dockerfile).resolve()

    def repository_of(self, image: ImageConfig) -> str:
        return image.repository or f"{self.registry.repository}/{image.name}"

    def select_images(self, names: typing.Sequence[str]) -> tuple[ImageConfig, ...]:
        if not names:
            return self.image
        known = {i.name: i for i in self.image}
        for name in names:
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise UsageError(
                    f"{self.source}: no [[image]] is named {name!r}.{hint} "
                    f"Images: {', '.join(known)}."
                )
        return tuple(i for i in self.image if i.name in names)


# --- parsing ------------------------------------------------------------------------------


class _Located:
    """Finds the line of a key in the TOML text, for messages (best effort)."""

    _HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-\" ]+?)\s*\]\]?")

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def line_of(self, path: tuple[str | int, ...]) -> int | None:
        *tables, last = path
        if isinstance(last, int):
            tables, last = [*tables, last], ""
        want = ".".join(str(p) for p in tables if not isinstance(p, int))
        want_index = next((p for p in tables if isinstance(p, int)), None)
        header, counts, index = "", {}, None  # type: ignore[var-annotated]
        for number, line in enumerate(self.lines, start=1):
            match = self._HEADER.match(line)
            if match:
                header = match.group(2).replace(" ", "").replace('"', "")
                if match.group(1) == "[[":
                    counts[header] = counts.get(header, -1) + 1
                root = header.split(".")[0]
                index = counts.get(root)
                if last == "" and header == want and index == want_index:
                    return number
                continue
            in_table = header == want and (want_index is None or index == want_index)
            if in_table and last and re.match(rf"^\s*{re.escape(str(last))}\s*=", line):
                return number
        return None


def _describe(value: object) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    for kind, name in names.items():
        if type(value) is kind:
            return f"{name} ({value!r})"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def _expected(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if tp is str:
        return "a string"
    if tp is bool:
        return "true or false"
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin is tuple:
        item = _expected(typing.get_args(tp)[0]).removeprefix("a ").removeprefix("an ")
        return f"an array of {item}s"
    if origin is dict:
        return "a table of strings"
    if dataclasses.is_dataclass(tp):
        return "a table"
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_expected(a) for a in typing.get_args(tp) if a is not type(None))
    return str(tp)


class _Parser:
    def __init__(self, source: Path, text: str) -> None:
        self.source = source
        self.where = _Located(text)

    def fail(self, path: tuple[str | int, ...], problem: str, fix: str) -> ConfigError:
        key = ""
        for part in path:
            key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else part)
        line = self.where.line_of(path) if path else None
        at = f", line {line}" if line else ""
        where = f"{self.source}{at}: " + (f"`{key}`: " if key else "")
        return ConfigError(f"{where}{problem} {fix}")

    def value(self, tp: Any, raw: object, path: tuple[str | int, ...]) -> Any:
        origin = typing.get_origin(tp)
        if origin in (types.UnionType, typing.Union):
            options = [a for a in typing.get_args(tp) if a is not type(None)]
            return self.value(options[0], raw, path)
        if dataclasses.is_dataclass(tp):
            if not isinstance(raw, dict):
                raise self.fail(path, f"expected a table, got {_describe(raw)}.", "Use [table].")
            return self.table(typing.cast(type, tp), raw, path)
        if origin is Literal:
            choices = typing.get_args(tp)
            if raw not in choices:
                close = difflib.get_close_matches(str(raw), [str(c) for c in choices], n=1)
                hint = f"Did you mean {close[0]!r}? " if close else ""
                raise self.fail(
                    path,
                    f"{raw!r} is not allowed.",
                    f"{hint}Use one of: {', '.join(repr(c) for c in choices)}.",
                )
            return raw
        if origin is tuple:
            if not isinstance(raw, list):
                raise self.fail(
                    path, f"expected {_expected(tp)}, got {_describe(raw)}.", "Write [ ... ]."
                )
            item = typing.get_args(tp)[0]
            return tuple(self.value(item, v, (*path, i)) for i, v in enumerate(raw))
        if origin is dict:
            if not isinstance(raw, dict):
                raise self.fail(
                    path,
                    f"expected a table of strings, got {_describe(raw)}.",
                    'Write { k = "v" }.',
                )
            for k, v in raw.items():
                if not isinstance(v, str):
                    raise self.fail(
                        (*path, k), f"expected a string, got {_describe(v)}.", "Quote the value."
                    )
            return dict(raw)
        ok = {
            str: isinstance(raw, str),
            bool: isinstance(raw, bool),
            int: isinstance(raw, int) and not isinstance(raw, bool),
            float: isinstance(raw, int | float) and not isinstance(raw, bool),
        }[tp]
        if not ok:
            raise self.fail(
                path, f"expected {_expected(tp)}, got {_describe(raw)}.", "Correct the value."
            )
        return float(raw) if tp is float else raw  # type: ignore[arg-type]

    def table(self, cls: type, raw: dict[str, object], path: tuple[str | int, ...]) -> Any:
        fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
        hints = typing.get_type_hints(cls)
        for key in raw:
            if key not in fields:
                close = difflib.get_close_matches(key, fields, n=1)
                hint = f"Did you mean {close[0]!r}?" if close else "Remove it."
                raise self.fail(
                    (*path, key),
                    "unknown key.",
                    f"{hint} Keys allowed here: {', '.join(fields)}.",
                )
        values: dict[str, Any] = {}
        for name, f in fields.items():
            if name in raw:
                values[name] = self.value(hints[name], raw[name], (*path, name))
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                table = ".".join(str(p) for p in path if not isinstance(p, int)) or "the file"
                raise self.fail(
                    path,
                    f"the required key `{name}` is missing.",
                    f"Add `{name} = ...` to {table}.",
                )
        return cls(**values)


def load(source: Path) -> Config:
    """Read and validate images.toml. Raises ConfigError with a message that names the fix."""
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{source}: no such file. Run factory where images.toml is, or pass "
            "--config PATH (the README has a complete example)."
        ) from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{source}: cannot be read ({err}). Check the path.") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(
            f"{source}: not valid TOML: {err}. Fix the syntax at that position."
        ) from None
    return parse(raw, source=source, text=text)


def parse(raw: dict[str, Any], *, source: Path, text: str = "") -> Config:
    parser = _Parser(source, text)
    config: Config = parser.table(Config, raw, ())
    config = dataclasses.replace(config, source=source)
    _check(config, parser)
    return config


def _check(config: Config, parser: _Parser) -> None:
    if not config.image:
        raise parser.fail(
            (), "no image is described.", "Add an [[image]] table with name and binary."
        )
    if not config.workspace_path.is_dir():
        raise parser.fail(
            ("workspace", "path"),
            f"the workspace {config.workspace.path!r} does not exist "
            f"(resolved to {config.workspace_path}).",
            "Point it at the folder holding the workspace's Cargo.toml, relative to images.toml.",
        )
    _check_repository(parser, ("registry", "repository"), config.registry.repository)
    seen: dict[str, int] = {}
    for index, image in enumerate(config.image):
        path: tuple[str | int, ...] = ("image", index)
        if not IMAGE_NAME_RE.fullmatch(image.name):
            raise parser.fail(
                (*path, "name"),
                f"{image.name!r} is not a valid repository name component.",
                "Use lowercase letters, digits and single separators (. _ -), e.g. 'hello-world'.",
            )
        if image.name in seen:
            raise parser.fail(
                (*path, "name"),
                f"the image name {image.name!r} is used twice (also by image {seen[image.name]}).",
                "Give every [[image]] its own name.",
            )
        seen[image.name] = index
        if not image.targets:
            raise parser.fail((*path, "targets"), "no target is selected.", 'Use ["all"].')
        for i, spec in enumerate(image.targets):
            try:
                target_table.expand(spec)
            except UsageError as err:
                raise parser.fail((*path, "targets", i), err.message, "") from None
        if not image.tags:
            raise parser.fail((*path, "tags"), "no tag is given.", 'Use ["latest"].')
        for i, tag in enumerate(image.tags):
            if not TAG_RE.fullmatch(tag):
                raise parser.fail(
                    (*path, "tags", i),
                    f"{tag!r} is not a valid OCI tag.",
                    "A tag is 1 to 128 letters, digits, '_', '.', '-', not starting with . or -.",
                )
        if image.repository is not None:
            _check_repository(parser, (*path, "repository"), image.repository)
        if image.user is not None and not USER_RE.fullmatch(image.user):
            raise parser.fail(
                (*path, "user"),
                f"{image.user!r} is not a user.",
                "Write uid[:gid], e.g. 65532:65532.",
            )
        if image.entrypoint is not None and not image.entrypoint:
            raise parser.fail(
                (*path, "entrypoint"), "the entrypoint is empty.", f'Use ["/{image.binary}"].'
            )
        if image.smoke.stdout is not None:
            try:
                re.compile(image.smoke.stdout)
            except re.error as err:
                raise parser.fail(
                    (*path, "smoke", "stdout"),
                    f"not a valid regular expression ({err}).",
                    "Escape brackets and parentheses with \\\\.",
                ) from None
        if not 0 <= image.smoke.exit_code <= 255:
            raise parser.fail(
                (*path, "smoke", "exit_code"), "an exit code is 0 to 255.", "Correct it."
            )
        if image.smoke.timeout <= 0:
            raise parser.fail(
                (*path, "smoke", "timeout"), "the timeout must be positive.", "Use e.g. 60."
            )


def _check_repository(parser: _Parser, path: tuple[str | int, ...], ref: str) -> None:
    if not REPOSITORY_RE.fullmatch(ref) or len(ref) > 255:
        raise parser.fail(
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
