"""Property-based: any images.toml is accepted or rejected with one clear message."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from factory.errors import ConfigError
from factory.model import config as cfg

KEYS = {
    "workspace": ["path", "driver", "profile", "pth"],
    "builder": ["base", "dockerfile", "bse"],
    "registry": ["repository", "insecure", "repo"],
    "bazel": ["remote_cache", "remote_executor", "remote_header", "flags", "cache"],
}
IMAGE_KEYS = [
    "name",
    "binary",
    "package",
    "targets",
    "tags",
    "repository",
    "entrypoint",
    "cmd",
    "user",
    "env",
    "labels",
    "annotations",
    "files",
    "smoke",
    "tag",
    "nme",
]
WORDS = [
    "ws",
    ".",
    "nowhere",
    "cargo",
    "bazel",
    "opt",
    "dbg",
    "amd64",
    "arm64_v9*",
    "all",
    "linux/arm64/v8.2",
    "riscv",
    "latest",
    "-bad",
    "Hello",
    "127.0.0.1:5000/x",
    "a b",
    "[unclosed",
    "65532:65532",
    "hello-world",
    "hello_world",
    "",
]

scalars = st.one_of(
    st.sampled_from(WORDS),
    st.text(max_size=12),
    st.integers(-5, 300),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.sampled_from(
                ["k", "stdout", "args", "exit_code", "timeout", "ca_certificates", "passwd"]
            ),
            inner,
            max_size=3,
        ),
    ),
    max_leaves=6,
)


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for table, keys in KEYS.items():
        if draw(st.booleans()):
            document[table] = draw(st.dictionaries(st.sampled_from(keys), values, max_size=3))
    images = draw(
        st.lists(st.dictionaries(st.sampled_from(IMAGE_KEYS), values, max_size=6), max_size=3)
    )
    keep_empty: bool = draw(st.booleans())
    if images or keep_empty:
        document["image"] = images
    if draw(st.booleans()):
        document[draw(st.sampled_from(["images", "workspce", "x"]))] = draw(values)
    return document


def _check(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "ws").mkdir()
        path = Path(tmp) / "images.toml"
        path.write_text(text)
        try:
            config = cfg.load(path)
        except ConfigError as err:
            message = str(err)
            assert message.startswith(str(path)), message
            assert "\n" not in message
            assert "Traceback" not in message
        else:
            assert config.image
            cfg.to_json(config)


@settings(max_examples=800, deadline=None, suppress_health_check=list(HealthCheck))
@given(documents())
def test_generated_documents(document: dict[str, Any]) -> None:
    _check(tomli_w.dumps(document))


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(documents(), st.integers(0, 400), st.sampled_from(['"', "[", "]", "=", "\n", "'''", "x=1"]))
def test_mangled_documents(document: dict[str, Any], at: int, junk: str) -> None:
    text = tomli_w.dumps(document)
    at = min(at, len(text))
    _check(text[:at] + junk + text[at:])
