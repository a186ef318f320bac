"""Reading a TOML document into frozen dataclasses by their type hints.

Every mistake becomes one ConfigError that names the file, the key (with its line where the
text shows it), what is wrong and the fix; a misspelt key or choice gets a "did you mean".
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from factory.errors import ConfigError

KeyPath = tuple[str | int, ...]
"""Where a value is in the document: table names, keys and array indexes."""


def doc(text: str) -> dict[str, str]:
    """A dataclass field's metadata: its description (the JSON Schema's, factory.model.schema)."""
    return {"doc": text}


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice a misspelt word most likely meant, if any is close: for "did you mean"."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return close[0] if close else None


class Locator:
    """Finds the line of a key in the TOML text, for messages (best effort)."""

    _HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-\" ]+?)\s*\]\]?")

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def line_of(self, path: KeyPath) -> int | None:
        *tables, last = path
        if isinstance(last, int):
            tables, last = [*tables, last], ""
        want = ".".join(str(p) for p in tables if not isinstance(p, int))
        first = next((i for i, p in enumerate(tables) if isinstance(p, int)), None)
        want_index = None if first is None else tables[first]
        # the array of tables the index counts: `image`, `package.metadata.factory.image`
        array = "" if first is None else ".".join(str(p) for p in tables[:first])
        header, counts, index = "", {}, None  # type: ignore[var-annotated]
        for number, line in enumerate(self.lines, start=1):
            match = self._HEADER.match(line)
            if match:
                header = match.group(2).replace(" ", "").replace('"', "")
                if match.group(1) == "[[":
                    counts[header] = counts.get(header, -1) + 1
                inside = bool(array) and (header == array or header.startswith(array + "."))
                index = counts.get(array) if inside else None
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


@dataclass(frozen=True, kw_only=True)
class Origin:
    """Where part of a document was read: a file, its text, and the key path in that file of
    the part's root (a Cargo.toml holds images.toml's keys under `workspace.metadata.factory`)."""

    source: Path
    text: str
    prefix: KeyPath = ()


class Reader:
    """Reads one document, which may be assembled from several files: ``origins`` maps a key
    path of the document to the file (and the place in it) that the part under it came from,
    so that a message names the file, key and line the user wrote. Default: all of it is
    ``source``."""

    def __init__(
        self, source: Path, text: str, origins: Mapping[KeyPath, Origin] | None = None
    ) -> None:
        self.source = source
        self.origins: dict[KeyPath, Origin] = {(): Origin(source=source, text=text)}
        self.origins.update(origins or {})
        self._locators: dict[Path, Locator] = {}

    def locate(self, path: KeyPath) -> tuple[Origin, KeyPath]:
        """The file a key path of the document was read from, and the path in that file."""
        start = max((k for k in self.origins if path[: len(k)] == k), key=len)
        origin = self.origins[start]
        return origin, (*origin.prefix, *path[len(start) :])

    def fail(self, path: KeyPath, problem: str, fix: str) -> ConfigError:
        origin, path = self.locate(path)
        key = ""
        for part in path:
            key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else part)
        where_in = self._locators.setdefault(origin.source, Locator(origin.text))
        line = where_in.line_of(path) if path else None
        at = f", line {line}" if line else ""
        where = f"{origin.source}{at}: " + (f"`{key}`: " if key else "")
        return ConfigError(f"{where}{problem} {fix}")

    def value(self, tp: Any, raw: object, path: KeyPath) -> Any:
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
                close = closest(str(raw), [str(c) for c in choices])
                hint = f"Did you mean {close!r}? " if close else ""
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

    def table(self, cls: type, raw: dict[str, object], path: KeyPath) -> Any:
        fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
        hints = typing.get_type_hints(cls)
        for key in raw:
            if key not in fields:
                close = closest(key, fields)
                hint = f"Did you mean {close!r}?" if close else "Remove it."
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
