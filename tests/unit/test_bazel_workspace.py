"""The Bazel workspace of examples/hello_world: parsed, evaluated with stubs, kept in sync.

No Bazel runs here (none >= 7 can be obtained on these machines): these tests check what can be
checked without one. tests/integration/test_bazel_e2e.py builds with a real Bazel where the
builder has one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import starlark as sl

from factory.build import bazel_sync
from factory.cli import main
from factory.model import targets as target_table
from tests.conftest import ROOT
from tests.starlark_fake import FakeBazel, parse, starlark_files

WORKSPACE = ROOT / "examples" / "hello_world"

EXPECTED_FILES = {
    ".bazelrc",
    ".bazelversion",
    "MODULE.bazel",
    "rust.MODULE.bazel",
    "BUILD",
    "settings.bzl",
    "transitions.bzl",
    "constraints/BUILD",
    "constraints/levels.bzl",
    "constraints/libc/BUILD",
    "constraints/amd64/BUILD",
    "constraints/amd64/defs.bzl",
    "constraints/arm64/BUILD",
    "constraints/arm64/defs.bzl",
    "rust/hello_world/BUILD",
}


def test_the_workspace_has_the_seeds_files() -> None:
    missing = sorted(p for p in EXPECTED_FILES if not (WORKSPACE / p).is_file())
    assert missing == []
    assert (WORKSPACE / ".bazelversion").read_text().strip() == "9.0.0"


@pytest.mark.parametrize(
    "path", starlark_files(WORKSPACE), ids=lambda p: str(p.relative_to(WORKSPACE))
)
def test_every_starlark_file_parses(path: Path) -> None:
    parse(path)


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [
        ("BUILD", 'platform(name = "x"\n', "Parse error"),
        ("BUILD", "def f():\n    pass\n", "`def` is not allowed"),
        ("BUILD", "for x in []:\n    pass\n", "`for` cannot be used outside `def`"),
        ("x.bzl", 'X = f"{y}"\n', "f-strings"),
        ("rust.MODULE.bazel", "def f():\n    pass\n", "`def` is not allowed"),
    ],
)
def test_the_parser_rejects_what_bazel_rejects(name: str, text: str, problem: str) -> None:
    with pytest.raises(sl.StarlarkError, match=problem):
        parse(Path(name), text)


def test_every_file_seen_is_one_the_workspace_has() -> None:
    seen = {str(p.relative_to(WORKSPACE)) for p in starlark_files(WORKSPACE)}
    assert seen == {p for p in EXPECTED_FILES if not p.startswith(".")}


# --- the generated files ------------------------------------------------------------------


def test_the_committed_generated_files_match_the_target_table() -> None:
    assert bazel_sync.check(WORKSPACE) == ()


def test_sync_check_through_the_cli_passes_on_the_committed_files() -> None:
    assert main(["bazel", "sync", "--check", "--workspace", str(WORKSPACE), "-q"]) == 0


def _copy_workspace(tmp_path: Path) -> Path:
    copy = tmp_path / "ws"
    for path in WORKSPACE.rglob("*"):
        if path.is_file() and "target" not in path.relative_to(WORKSPACE).parts:
            dest = copy / path.relative_to(WORKSPACE)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(path.read_bytes())
    return copy


def test_sync_check_fails_with_exit_2_when_a_file_drifts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = _copy_workspace(tmp_path)
    defs = copy / "constraints" / "arm64" / "defs.bzl"
    defs.write_text(defs.read_text().replace('    "v9_6a",', ""))
    assert main(["bazel", "sync", "--check", "--workspace", str(copy)]) == 2
    err = capsys.readouterr().err
    assert "constraints/arm64/defs.bzl" in err
    assert '-    "v9_6a",' not in err and '+    "v9_6a",' in err
    assert "factory bazel sync" in err
    assert '"v9_6a",' not in defs.read_text()  # --check changes nothing


def test_sync_writes_what_differs_and_then_check_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = _copy_workspace(tmp_path)
    (copy / "settings.bzl").unlink()
    (copy / "BUILD").write_text("# stale\n")
    assert main(["bazel", "sync", "--workspace", str(copy), "--json"]) == 0
    out = capsys.readouterr().out
    assert '"changed": [\n    "BUILD",\n    "settings.bzl"\n  ]' in out
    assert bazel_sync.check(copy) == ()
    assert main(["bazel", "sync", "--check", "--workspace", str(copy)]) == 0


def test_sync_refuses_a_folder_without_module_bazel(tmp_path: Path) -> None:
    assert main(["bazel", "sync", "--workspace", str(tmp_path)]) == 2


# --- evaluation with stubs ----------------------------------------------------------------


@pytest.fixture(scope="module")
def bazel() -> FakeBazel:
    fake = FakeBazel(WORKSPACE)
    packages = ("", "constraints", "constraints/libc", "constraints/amd64", "constraints/arm64")
    for package in packages:
        fake.eval_build(package)
    fake.eval_build("rust/hello_world")
    fake.eval_module("MODULE.bazel")  # and rust.MODULE.bazel, which it includes
    return fake


def test_there_is_one_platform_per_target_with_defined_constraints(bazel: FakeBazel) -> None:
    targets = bazel.recorded.targets
    platforms = {label: attrs for label, (kind, attrs) in targets.items() if kind == "platform"}
    assert sorted(platforms) == sorted(f"//:{t.name}" for t in target_table.TARGETS)
    defined = {label for label, (kind, _) in targets.items() if kind == "constraint_value"}
    for target in target_table.TARGETS:
        values = platforms[f"//:{target.name}"]["constraint_values"]
        local = [v for v in values if v.startswith("//")]
        assert set(local) <= defined, (target.name, set(local) - defined)
        assert "//constraints/libc:musl" in values
        cpu = "x86_64" if target.arch is target_table.Arch.AMD64 else "aarch64"
        assert f"@platforms//cpu:{cpu}" in values


def test_levels_are_distinct_constraint_values(bazel: FakeBazel) -> None:
    seen: dict[tuple[str, ...], str] = {}
    for target in target_table.TARGETS:
        _, attrs = bazel.recorded.targets[f"//:{target.name}"]
        key = tuple(sorted(attrs["constraint_values"]))
        assert key not in seen, f"{target.name} and {seen[key]} have the same platform"
        seen[key] = target.name


def test_each_target_gets_a_static_binary(bazel: FakeBazel) -> None:
    targets = bazel.recorded.targets
    kind, attrs = targets["//rust/hello_world:hello_world"]
    assert kind == "rust_binary"
    assert attrs["deps"] == ["@crates//:mimalloc", "@crates//:tokio"]
    assert attrs["edition"] == "2024"
    for target in target_table.TARGETS:
        kind, attrs = targets[f"//rust/hello_world:hello_world_static_{target.name}"]
        assert (kind, attrs["binary"], attrs["target"]) == ("rule", ":hello_world", target.name)


def test_the_transition_applies_mode_and_target_flags(bazel: FakeBazel) -> None:
    def transition(target: str, mode: str) -> dict[str, Any]:
        result = bazel.run_bzl(
            'load("//:transitions.bzl", "static_binary")\n'
            'impl = static_binary(name = None)["binary"].cfg.implementation\n'
            "impl({"
            f'"//command_line_option:compilation_mode": "{mode}", '
            '"//command_line_option:copt": ["-O1"], '
            '"@rules_rust//rust/settings:extra_rustc_flags": ["--cfg=user"]'
            f'}}, struct(target = "{target}"))\n'
        )
        assert isinstance(result, dict)
        return result

    opt = transition("amd64_v3", "opt")
    assert opt["//command_line_option:platforms"] == ["//:amd64_v3"]
    assert opt["@rules_rust//rust/settings:lto"] == "thin"
    assert opt["//command_line_option:copt"] == ["-O1", "-march=x86-64-v3"]
    assert opt["@rules_rust//rust/settings:extra_rustc_flags"] == [
        "--cfg=user",
        "-Copt-level=3",
        "-Ccodegen-units=1",
        "-Cpanic=abort",
        "-Cstrip=symbols",
        "-Clink-self-contained=no",
        "-Ctarget-feature=+crt-static",
        "-Ctarget-cpu=x86-64-v3",
    ]
    dbg = transition("arm64_v8_2a", "dbg")
    assert dbg["@rules_rust//rust/settings:lto"] == "off"
    assert dbg["@rules_rust//rust/settings:extra_rustc_flags"][-3:] == [
        "-Clink-self-contained=no",
        "-Ctarget-feature=+crt-static",
        "-Ctarget-feature=+v8.2a",
    ]
    assert "-Cdebuginfo=2" in dbg["@rules_rust//rust/settings:extra_rustc_flags"]
    fast = transition("arm64", "fastbuild")
    assert "-Cstrip=symbols" not in fast["@rules_rust//rust/settings:extra_rustc_flags"]
    assert fast["//command_line_option:copt"] == ["-O1", "-march=armv8-a"]


def test_the_static_binary_rule_refuses_an_unknown_target(bazel: FakeBazel) -> None:
    with pytest.raises(sl.StarlarkError, match="not one of the values"):
        bazel.run_bzl(
            'load("//:transitions.bzl", "static_binary")\n'
            'static_binary(name = "x", binary = ":hello_world", target = "amd64_v5")\n',
            package="rust/hello_world",
        )


def test_settings_carry_every_targets_flags_from_the_table() -> None:
    fake = FakeBazel(WORKSPACE)
    settings = fake.run_bzl(
        'load("//:settings.bzl", "TARGETS", "TARGET_NAMES")\n'
        "{'targets': TARGETS, 'names': TARGET_NAMES}\n"
    )
    assert settings["names"] == [t.name for t in target_table.TARGETS]
    for target in target_table.TARGETS:
        row = settings["targets"][target.name]
        assert row["triple"] == target.triple
        assert row["rustc_flags"] == list(target.rustflags)
        assert row["copts"] == [f"-march={target.c_march}"]


def test_module_pins_the_seeds_versions(bazel: FakeBazel) -> None:
    deps = {
        attrs["name"]: attrs["version"]
        for call, attrs in bazel.recorded.module_calls
        if call == "bazel_dep"
    }
    assert deps == {"platforms": "1.0.0", "rules_rust": "0.68.1", "toolchains_llvm": "1.6.0"}
    tags = bazel.recorded.tags
    rust = [a for e, t, a in tags if e.endswith("%rust") and t == "toolchain"]
    assert rust == [{"edition": "2024", "extra_target_triples": [], "versions": ["1.93.1"]}]
    llvm = [a for e, t, a in tags if e.endswith("%llvm") and t == "toolchain"]
    assert {a["llvm_version"] for a in llvm} == {"21.1.8"}
    sysroots = {
        a["targets"][0]: a["path"] for e, t, a in tags if e.endswith("%llvm") and t == "sysroot"
    }
    assert sysroots == {
        "linux-x86_64": "/opt/factory/sysroot/x86_64-linux-musl",
        "linux-aarch64": "/opt/factory/sysroot/aarch64-linux-musl",
    }
    sets = [a for e, t, a in tags if t == "repository_set"]
    musl = {(a["name"], a["target_triple"]) for a in sets if a["target_triple"].endswith("musl")}
    assert musl == {
        (exec_set, triple)
        for exec_set in ("rust_linux_x86_64", "rust_linux_aarch64")
        for triple in ("x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl")
    }
    # rules_rust 0.68.1 fails when a later repository_set call of a name sets more than these.
    firsts: set[str] = set()
    for attrs in sets:
        if attrs["name"] in firsts:
            assert set(attrs) <= {"name", "target_triple", "target_compatible_with"}, attrs
        else:
            firsts.add(attrs["name"])
            assert attrs["exec_triple"] == attrs["target_triple"], attrs
            assert attrs["versions"] == ["1.93.1"] and attrs["edition"] == "2024"
    for attrs in sets:
        libc = "musl" if attrs["target_triple"].endswith("musl") else "glibc"
        assert f"//constraints/libc:{libc}" in attrs["target_compatible_with"]
    assert bazel.recorded.use_repo == {
        "@toolchains_llvm//toolchain/extensions:llvm.bzl%llvm": [
            a["name"] for e, t, a in tags if e.endswith("%llvm") and t == "toolchain"
        ],
        "@rules_rust//rust:extensions.bzl%rust": ["rust_toolchains"],
        "@rules_rust//crate_universe:extensions.bzl%crate": ["crates"],
    }
    cargo = [a for e, t, a in tags if t == "from_cargo"]
    assert cargo[0]["cargo_lockfile"] == "//:Cargo.lock"
    assert {"x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl"} <= set(
        cargo[0]["supported_platform_triples"]
    )


def test_a_misspelt_tag_attribute_fails_in_the_fake(tmp_path: Path) -> None:
    (tmp_path / "MODULE.bazel").write_text(
        'rust = use_extension("@rules_rust//rust:extensions.bzl", "rust")\n'
        'rust.toolchain(edition = "2024", extra_target_tripels = [])\n'
    )
    with pytest.raises(sl.StarlarkError, match="extra_target_tripels"):
        FakeBazel(tmp_path).eval_module()


def test_the_generated_text_is_what_render_returns() -> None:
    for generated in bazel_sync.render():
        assert (WORKSPACE / generated.path).read_text() == generated.text
        assert generated.text.count("Generated by `factory bazel sync`") == 1


def test_sync_check_defaults_to_the_workspace_of_images_toml(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--config", str(ROOT / "images.toml"), "bazel", "sync", "--check", "--json"]) == 0
    out = capsys.readouterr().out
    assert f'"workspace": "{WORKSPACE}"' in out and '"up_to_date": true' in out
