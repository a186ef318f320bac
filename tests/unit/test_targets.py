from __future__ import annotations

import pytest

from factory.errors import UsageError
from factory.model import targets

SEED_NAMES = [
    "amd64",
    "amd64_v2",
    "amd64_v3",
    "amd64_v4",
    "arm64",
    *(f"arm64_v8_{n}a" for n in range(1, 10)),
    "arm64_v9a",
    *(f"arm64_v9_{n}a" for n in range(1, 7)),
]


def test_the_table_has_the_seeds_21_targets_in_order() -> None:
    assert [t.name for t in targets.TARGETS] == SEED_NAMES


def test_flags_follow_the_seed() -> None:
    assert targets.get("amd64").rustflags == ("-Ctarget-feature=+crt-static",)
    assert targets.get("amd64_v3").rustflags == (
        "-Ctarget-feature=+crt-static",
        "-Ctarget-cpu=x86-64-v3",
    )
    assert targets.get("arm64_v8_2a").rustflags[-1] == "-Ctarget-feature=+v8.2a"
    assert targets.get("arm64_v9a").rustflags[-1] == "-Ctarget-feature=+v9a"
    assert targets.get("arm64_v9_6a").rustflags[-1] == "-Ctarget-feature=+v9.6a"
    assert all(t.rustflags[0] == targets.CRT_STATIC for t in targets.TARGETS)


def test_oci_platforms_follow_the_image_spec() -> None:
    assert str(targets.get("amd64").platform) == "linux/amd64"
    assert targets.get("amd64").platform.variant is None
    assert str(targets.get("amd64_v4").platform) == "linux/amd64/v4"
    assert targets.get("arm64").platform.variant is None
    assert str(targets.get("arm64_v8_1a").platform) == "linux/arm64/v8.1"
    assert str(targets.get("arm64_v9a").platform) == "linux/arm64/v9"
    assert str(targets.get("arm64_v9_3a").platform) == "linux/arm64/v9.3"
    assert len({str(t.platform) for t in targets.TARGETS}) == 21


def test_qemu_models_are_the_oldest_of_each_level() -> None:
    cpus = {t.name: t.qemu_cpu for t in targets.TARGETS}
    assert cpus["amd64"] == "qemu64"
    assert cpus["amd64_v2"] == "Nehalem"
    assert cpus["amd64_v3"] == "Haswell-noTSX"
    assert cpus["amd64_v4"] is None
    assert "AVX-512" in targets.get("amd64_v4").qemu_note
    assert cpus["arm64"] == "cortex-a53"
    assert cpus["arm64_v8_2a"] == "cortex-a55"
    assert cpus["arm64_v8_4a"] == "neoverse-v1"
    assert cpus["arm64_v9a"] == "neoverse-n2"
    assert cpus["arm64_v9_6a"] == "max"


def test_host_features_grow_with_the_level() -> None:
    for a, b in zip(targets.TARGETS, targets.TARGETS[1:], strict=False):
        # Armv9.0 builds on v8.5, not on v8.9: the one step where the set may shrink.
        if a.arch is b.arch and (a.name, b.name) != ("arm64_v8_9a", "arm64_v9a"):
            assert set(a.host_features) <= set(b.host_features), (a.name, b.name)
    assert "avx512f" in targets.get("amd64_v4").host_features
    assert "avx2" not in targets.get("amd64_v2").host_features
    assert "sve2" in targets.get("arm64_v9a").host_features
    assert "sve2" not in targets.get("arm64_v8_9a").host_features


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (["all"], SEED_NAMES),
        (["amd64*"], ["amd64", "amd64_v2", "amd64_v3", "amd64_v4"]),
        (["arm64_v9*"], ["arm64_v9a", *(f"arm64_v9_{n}a" for n in range(1, 7))]),
        (["linux/arm64/v8.2"], ["arm64_v8_2a"]),
        (["linux/amd64"], ["amd64"]),
        (["arm64", "amd64", "amd64"], ["amd64", "arm64"]),
    ],
)
def test_selection(spec: list[str], expected: list[str]) -> None:
    assert [t.name for t in targets.select(spec)] == expected


def test_unknown_target_suggests_the_nearest_name() -> None:
    with pytest.raises(UsageError) as err:
        targets.select(["arm64_v8_2"])
    assert "Did you mean 'arm64_v8_2a'?" in err.value.message
    assert "amd64_v4" in err.value.message


def test_a_glob_matching_nothing_is_an_error() -> None:
    with pytest.raises(UsageError, match="matches no target"):
        targets.select(["riscv*"])


def test_tag_suffixes() -> None:
    assert targets.get("amd64_v3").tag_suffix == "amd64-v3"
    assert targets.get("arm64_v9a").tag_suffix == "arm64-v9a"
