from __future__ import annotations

import tomllib

import jsonschema
import pytest

from factory.model import schema
from tests.conftest import ROOT


def test_the_committed_schema_is_current() -> None:
    committed = schema.SCHEMA_PATH.read_text()
    assert committed.strip() == schema.render().strip(), (
        "factory/model/images.schema.json is stale: run "
        "`uv run factory config --schema > factory/model/images.schema.json`"
    )


def test_the_bundled_images_toml_matches_the_schema() -> None:
    document = tomllib.loads((ROOT / "images.toml").read_text())
    jsonschema.validate(document, schema.generate())


def test_the_schema_rejects_unknown_keys() -> None:
    document = tomllib.loads((ROOT / "images.toml").read_text())
    document["image"][0]["binry"] = "x"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, schema.generate())
