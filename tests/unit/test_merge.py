"""The merge's logic without a registry: which manifest each target gets, what is refused, the
index's bytes; the shard result file; the command line's shard options."""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from pathlib import Path

import pytest

from factory.cli import main
from factory.distribution.media_types import MEDIA_MANIFEST, Descriptor
from factory.errors import ExitCode, MergeError, UsageError
from factory.image import assemble as asm
from factory.model.targets import BY_NAME, Target
from factory.publish import merge, shard
from factory.publish.shard import ShardImage, ShardResult, ShardTarget
from tests.imagekit import make_project

REPOSITORY = "127.0.0.1:5000/it/greeter"
TAGS = ("latest", "1.0")
EXPECTED = tuple(BY_NAME[n] for n in ("amd64", "amd64_v3", "arm64", "arm64_v9a"))


def digest(name: str) -> str:
    return "sha256:" + (name.encode().hex() * 64)[:64]


def result(source: str, *names: str, repository: str = REPOSITORY) -> ShardResult:
    targets = tuple(
        ShardTarget(
            target=BY_NAME[n],
            digest=digest(n),
            size=400,
            media_type=MEDIA_MANIFEST,
            tags=tuple(f"{t}-{BY_NAME[n].tag_suffix}" for t in TAGS),
        )
        for n in names
    )
    image = ShardImage(
        image="greeter", repository=repository, tags=TAGS, provenance={}, targets=targets
    )
    return ShardResult(images=(image,), source=source)


def choose(*shards: ShardResult, served: Mapping[str, str] | None = None) -> list[str]:
    chosen, _ = merge.choose("greeter", REPOSITORY, TAGS, EXPECTED, shards, (served or {}).get)
    return [c.target.name for c in chosen]


def test_entries_come_in_the_table_s_order_baselines_first() -> None:
    names = choose(result("b.json", "arm64_v9a", "arm64"), result("a.json", "amd64_v3", "amd64"))
    assert names == ["amd64", "arm64", "amd64_v3", "arm64_v9a"]


def test_targets_no_file_lists_come_from_the_per_target_tags() -> None:
    chosen, notes = merge.choose(
        "greeter",
        REPOSITORY,
        TAGS,
        EXPECTED,
        [result("a.json", "amd64", "amd64_v3")],
        {"latest-arm64": digest("x"), "latest-arm64-v9a": digest("y")}.get,
    )
    assert [(c.target.name, c.digest) for c in chosen[1::2]] == [
        ("arm64", digest("x")),
        ("arm64_v9a", digest("y")),
    ]
    assert chosen[1].source == f"the tag {REPOSITORY}:latest-arm64"
    assert notes == []


def test_a_result_file_wins_over_a_tag_and_the_merge_says_so() -> None:
    chosen, notes = merge.choose(
        "greeter",
        REPOSITORY,
        TAGS,
        EXPECTED,
        [result("a.json", *(t.name for t in EXPECTED))],
        {"latest-arm64": digest("old")}.get,
    )
    assert chosen[1].digest == digest("arm64")
    [note] = notes
    assert "a.json" in note and "latest-arm64" in note and "the result file wins" in note


def test_a_platform_twice_is_refused() -> None:
    with pytest.raises(MergeError) as caught:
        choose(result("a.json", "amd64", "arm64"), result("b.json", "arm64", "arm64_v9a"))
    assert caught.value.exit_code == ExitCode.MERGE
    assert "linux/arm64 (arm64) appears twice" in caught.value.message
    assert "a.json" in caught.value.message and "b.json" in caught.value.message


def test_missing_targets_are_named_with_the_tags_looked_for() -> None:
    with pytest.raises(MergeError) as caught:
        choose(result("a.json", "amd64", "amd64_v3"))
    message = caught.value.message
    assert "arm64, arm64_v9a are missing" in message
    assert "latest-arm64, latest-arm64-v9a" in message
    assert "Nothing was written" in message


def test_a_target_the_merge_does_not_expect_is_refused() -> None:
    with pytest.raises(MergeError, match="amd64_v4, which the merge does not expect"):
        choose(result("a.json", "amd64", "amd64_v4"))


def test_a_shard_of_another_repository_is_refused() -> None:
    with pytest.raises(MergeError, match="--registry"):
        choose(result("a.json", "amd64", repository="127.0.0.1:5000/other/greeter"))


def read(target: str, platform: str | None = None, **annotations: str) -> merge.Read:
    chosen = merge.Chosen(
        target=BY_NAME[target], digest=digest(target), media_type=MEDIA_MANIFEST, source="a.json"
    )
    base = {merge.CREATED: "2023-11-14T22:13:20Z", merge.REVISION: "abc", asm.BUILDER: "b1"}
    return merge.Read(
        chosen=chosen,
        size=400,
        annotations={**base, **annotations},
        config_platform=platform or str(BY_NAME[target].platform),
    )


def test_consistent_shards_give_their_annotations_to_the_index() -> None:
    annotations = merge.check("greeter", [read("amd64"), read("arm64")])
    assert annotations[merge.REVISION] == "abc"


@pytest.mark.parametrize(
    ("key", "what"),
    [
        (merge.REVISION, "revisions"),
        (asm.CARGO_LOCK, "Cargo.lock files"),
        (asm.BUILDER, "builders"),
    ],
)
def test_shards_of_another_revision_lock_or_builder_are_refused(key: str, what: str) -> None:
    entries = [read("amd64"), read("amd64_v3"), read("arm64", **{key: "other"})]
    with pytest.raises(MergeError) as caught:
        merge.check("greeter", entries)
    assert f"different {what}" in caught.value.message
    assert "arm64 from other" in caught.value.message


def test_other_annotations_that_differ_are_refused() -> None:
    with pytest.raises(MergeError, match=r"org\.opencontainers\.image\.created"):
        merge.check("greeter", [read("amd64"), read("arm64", **{merge.CREATED: "1970"})])


def test_a_manifest_whose_config_is_another_platform_is_refused() -> None:
    with pytest.raises(MergeError, match="linux/amd64/v3 by its config, not linux/arm64"):
        merge.check("greeter", [read("amd64"), read("arm64", platform="linux/amd64/v3")])


def test_the_index_of_the_same_manifests_is_the_same_in_any_order(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", tuple(t.name for t in EXPECTED))
    config = project.config
    [layout] = asm.assemble(
        config, config.image, None, tmp_path / "oci", environ={"SOURCE_DATE_EPOCH": "1700000000"}
    )
    pairs: list[tuple[Target, Descriptor]] = [(i.target, i.manifest) for i in layout.images]
    random.Random(7).shuffle(pairs)
    index = json.loads((layout.path / "blobs" / "sha256" / layout.index.digest[7:]).read_bytes())
    assert asm.index_blob(pairs, index["annotations"]).digest == layout.index.digest


# --- the result file ----------------------------------------------------------------------


def test_a_result_file_reads_back(tmp_path: Path) -> None:
    written = result("this run", "amd64", "arm64")
    path = tmp_path / "shard.json"
    written.write(path)
    assert shard.read(path) == ShardResult(images=written.images, source=str(path))


def test_a_missing_result_file_is_a_shard_that_failed(tmp_path: Path) -> None:
    with pytest.raises(MergeError, match="failed or did not run"):
        shard.read(tmp_path / "absent.json")


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (lambda d: d.update(schema="factory.image/v1"), "`schema`"),
        (
            lambda d: d["images"][0]["targets"][0].update(target="amd65"),
            "images[0].targets[0].target",
        ),
        (
            lambda d: d["images"][0]["targets"][0].update(platform="linux/arm64"),
            "targets[0].platform",
        ),
        (lambda d: d["images"][0]["targets"][0].pop("manifest_size"), "targets[0].manifest_size"),
    ],
)
def test_a_bad_result_file_names_its_key(tmp_path: Path, change: object, key: str) -> None:
    document = result("x", "amd64").to_json()
    change(document)  # type: ignore[operator]
    path = tmp_path / "shard.json"
    path.write_text(json.dumps(document))
    with pytest.raises(UsageError) as caught:
        shard.read(path)
    assert str(path) in caught.value.message and key in caught.value.message


# --- the command line ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--shard"], "add --push"),
        (["--push", "--metadata-file", "x.json"], "add --push --shard"),
        (["--push", "--shard", "--sign-key", "k.pem"], "pass --sign-key to `factory index merge`"),
    ],
)
def test_shard_options_that_do_not_go_together(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], says: str
) -> None:
    project = make_project(tmp_path / "p", ("amd64",))
    code = main(["image", "--no-build", "-C", str(project.root / "images.toml"), *args])
    assert code == ExitCode.USAGE
    assert says in capsys.readouterr().err
