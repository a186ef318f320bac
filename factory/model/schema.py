"""A JSON Schema for images.toml, generated from the dataclasses in factory.model.config."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any, Literal

from factory import resources
from factory.model import config as cfg

SCHEMA_PATH = resources.schema()


def _type_schema(tp: Any) -> dict[str, Any]:
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        return _type_schema(options[0])
    if dataclasses.is_dataclass(tp):
        return _object_schema(typing.cast(type, tp))
    if origin is Literal:
        return {"enum": list(typing.get_args(tp))}
    if origin is tuple:
        return {"type": "array", "items": _type_schema(typing.get_args(tp)[0])}
    if origin is dict:
        return {"type": "object", "additionalProperties": {"type": "string"}}
    return {
        str: {"type": "string"},
        bool: {"type": "boolean"},
        int: {"type": "integer"},
        float: {"type": "number"},
    }[tp]


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return dataclasses.MISSING
    if dataclasses.is_dataclass(value):
        return dataclasses.MISSING
    return list(value) if isinstance(value, tuple) else value


def _object_schema(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for f in dataclasses.fields(cls):
        if f.metadata.get("internal"):
            continue
        schema = _type_schema(hints[f.name])
        if "item_choices" in f.metadata:  # an array whose items are one of a few values
            choices = list(f.metadata["item_choices"])
            schema = {**schema, "items": {**schema["items"], "enum": choices}, "uniqueItems": True}
        if "doc" in f.metadata:
            schema = {"description": f.metadata["doc"], **schema}
        default = _default(f)
        if default is dataclasses.MISSING:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                required.append(f.name)
        elif default is not None:
            schema["default"] = default
        properties[f.name] = schema
    out: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        out["required"] = required
    return out


def generate() -> dict[str, Any]:
    schema = _object_schema(cfg.Config)
    schema["properties"]["image"]["minItems"] = 1
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "factory images.toml",
        **schema,
        "required": ["image"],
    }


def render() -> str:
    return json.dumps(generate(), indent=2, sort_keys=False) + "\n"
