from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from factory import resources
from factory.errors import ConfigError, ExitCode
from factory.model import config as cfg
from tests.conftest import ROOT

GOOD = """\
[workspace]
path = "ws"

[[image]]
name = "hello-world"
binary = "hello_world"
targets = ["amd64", "arm64_v9*"]
tags = ["latest", "1.0"]
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "ws").mkdir(exist_ok=True)
    path = tmp_path / "images.toml"
    path.write_text(text)
    return path


def test_a_minimal_file_gets_defaults(tmp_path: Path) -> None:
    config = cfg.load(write(tmp_path, GOOD))
    image = config.image[0]
    assert config.workspace.driver == "cargo"
    assert config.workspace.profile == "opt"
    assert config.builder.base == "debian:trixie-slim"
    assert image.resolved_entrypoint == ("/hello_world",)
    assert [t.name for t in image.resolved_targets][:2] == ["amd64", "arm64_v9a"]
    assert config.repository_of(image) == "127.0.0.1:5000/factory/hello-world"
    assert config.workspace_path == (tmp_path / "ws").resolve()


def test_the_builder_dockerfile_is_factorys_own_unless_images_toml_names_one(
    tmp_path: Path,
) -> None:
    config = cfg.load(write(tmp_path, GOOD))
    assert config.builder.dockerfile is None
    assert config.dockerfile_path == resources.dockerfile("builder")
    assert cfg.to_json(config)["builder"]["dockerfile"] == str(resources.dockerfile("builder"))
    own = cfg.load(write(tmp_path, f'[builder]\ndockerfile = "team/builder.Dockerfile"\n{GOOD}'))
    assert own.dockerfile_path == (tmp_path / "team" / "builder.Dockerfile").resolve()


def test_the_bundled_images_toml_is_valid() -> None:
    config = cfg.load(ROOT / "images.toml")
    assert [t.name for t in config.image[0].resolved_targets] == [
        "amd64",
        "amd64_v2",
        "amd64_v3",
        "amd64_v4",
        "arm64",
    ]
    assert config.image[0].smoke.stdout is not None


# Ten broken files: (what is wrong, text, words the message must contain).
BROKEN = [
    (
        "unknown key",
        GOOD.replace("binary =", 'binry = "x"\nbinary ='),
        ["`image[0].binry`", "line 6", "Did you mean 'binary'?"],
    ),
    (
        "wrong type",
        GOOD.replace('tags = ["latest", "1.0"]', 'tags = "latest"'),
        ["`image[0].tags`", "expected an array of strings", "line 8"],
    ),
    (
        "unknown target",
        GOOD.replace('"arm64_v9*"', '"arm64_v8_2"'),
        ["arm64_v8_2", "Did you mean 'arm64_v8_2a'?", "`image[0].targets[1]`"],
    ),
    (
        "missing field",
        GOOD.replace('binary = "hello_world"\n', ""),
        ["`binary` is missing", "image[0]"],
    ),
    (
        "duplicate image",
        GOOD + '\n[[image]]\nname = "hello-world"\nbinary = "b"\n',
        ["used twice", "`image[1].name`", "line 11"],
    ),
    (
        "invalid tag",
        GOOD.replace('"1.0"', '"-bad tag"'),
        ["'-bad tag' is not a valid OCI tag", "`image[0].tags[1]`"],
    ),
    (
        "invalid repository",
        GOOD + '\n[registry]\nrepository = "Local Host/Foo"\n',
        ["`registry.repository`", "not a valid repository reference", "host[:port]/path"],
    ),
    (
        "missing workspace",
        GOOD.replace('path = "ws"', 'path = "nowhere"'),
        ["`workspace.path`", "'nowhere' does not exist", "line 2"],
    ),
    (
        "bad driver",
        GOOD.replace('path = "ws"', 'path = "ws"\ndriver = "bazle"'),
        ["`workspace.driver`", "Did you mean 'bazel'?"],
    ),
    (
        "toml syntax",
        GOOD.replace('name = "hello-world"', 'name = "hello-world'),
        ["not valid TOML", "line 5"],
    ),
    ("no image", '[workspace]\npath = "ws"\n', ["no image is described", "[[image]]"]),
    (
        "bad regex",
        GOOD + '[image.smoke]\nstdout = "[1, 2"\n',
        ["`image[0].smoke.stdout`", "not a valid regular expression"],
    ),
    (
        "bad user",
        GOOD.replace("tags =", 'user = "root user"\ntags ='),
        ["`image[0].user`", "uid[:gid]"],
    ),
    (
        "bad feature",
        GOOD.replace("tags =", 'features = ["vendored openssl"]\ntags ='),
        ["`image[0].features[0]`", "not a Cargo feature name", "one feature per string"],
    ),
    (
        "64K pages",
        GOOD + "[image.smoke]\npage_sizes = [4096, 65536]\n",
        [
            "`image[0].smoke.page_sizes[1]`",
            "65536 is not a page size",
            "4096",
            "16384",
            "no 64K flavour",
        ],
    ),
    (
        "page size twice",
        GOOD + "[image.smoke]\npage_sizes = [16384, 16384]\n",
        ["`image[0].smoke.page_sizes[1]`", "16384 is listed twice"],
    ),
    (
        "page size not a number",
        GOOD + '[image.smoke]\npage_sizes = ["16k"]\n',
        ["`image[0].smoke.page_sizes", "integer"],
    ),
]


@pytest.mark.parametrize(("what", "text", "words"), BROKEN, ids=[b[0] for b in BROKEN])
def test_every_mistake_is_one_clear_message(
    tmp_path: Path, what: str, text: str, words: list[str]
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        cfg.load(path)
    message = str(err.value)
    assert message.startswith(str(path)), message
    for word in words:
        assert word in message, (what, message)
    assert "\n" not in message


@pytest.mark.parametrize(("what", "text", "words"), BROKEN[:10], ids=[b[0] for b in BROKEN[:10]])
def test_the_cli_exits_2_without_a_traceback(
    tmp_path: Path, what: str, text: str, words: list[str]
) -> None:
    path = write(tmp_path, text)
    proc = subprocess.run(
        [sys.executable, "-m", "factory", "--config", str(path), "config"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == ExitCode.USAGE, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.startswith("error: ")
    assert words[0] in proc.stderr.replace("\n", "")


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("binary =", "binry = 1\nbinary ="))
    proc = subprocess.run(
        [sys.executable, "-m", "factory", "--debug", "--config", str(path), "config"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == ExitCode.USAGE
    assert "Traceback" in proc.stderr


def test_a_missing_file_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--config PATH"):
        cfg.load(tmp_path / "images.toml")


def test_select_images(tmp_path: Path) -> None:
    config = cfg.load(write(tmp_path, GOOD))
    assert config.select_images([]) == config.image
    with pytest.raises(Exception, match="Did you mean 'hello-world'"):
        config.select_images(["hello-wrld"])
