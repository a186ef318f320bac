"""A stand-in for Bazel's loading phase, for the workspace's Starlark (no Bazel runs here).

It parses every file with a Bazel-like dialect (no `def` in BUILD or MODULE files, no top-level
`if`/`for`, no f-strings) and evaluates BUILD, .bzl and MODULE files with recording stubs for
Bazel's builtins and for the rules and module extensions the workspace uses. A stub accepts only
the attributes the real rule or tag has in the pinned versions (rules_rust 0.68.1,
toolchains_llvm 1.6.0), so a misspelt attribute fails here as it would under Bazel.

What this cannot see: whether Bazel resolves the toolchains, fetches and compiles; that needs a
real Bazel (tests/integration/test_bazel_e2e.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import starlark as sl

# Attributes of the module extension tags used, as the pinned releases define them.
_LLVM_COMMON = {
    "name",
    "targets",
}
EXTENSION_TAGS: dict[str, dict[str, set[str]]] = {
    "@toolchains_llvm//toolchain/extensions:llvm.bzl%llvm": {
        "toolchain": {
            "name",
            "llvm_version",
            "llvm_versions",
            "extra_llvm_distributions",
            "stdlib",
            "cxx_standard",
            "compile_flags",
            "link_flags",
            "extra_compile_flags",
            "extra_link_flags",
            "extra_opt_compile_flags",
            "extra_opt_link_flags",
            "extra_dbg_compile_flags",
            "absolute_paths",
            "urls",
            "strip_prefix",
            "sha256",
            "distribution",
        },
        "toolchain_root": {*_LLVM_COMMON, "label", "path"},
        "sysroot": {*_LLVM_COMMON, "label", "path"},
        "extra_target_compatible_with": {*_LLVM_COMMON, "constraints"},
        "extra_exec_compatible_with": {*_LLVM_COMMON, "constraints"},
    },
    "@rules_rust//rust:extensions.bzl%rust": {
        "toolchain": {
            "aliases",
            "allocator_library",
            "dev_components",
            "edition",
            "extra_exec_rustc_flags",
            "extra_rustc_flags",
            "extra_rustc_flags_triples",
            "extra_target_triples",
            "rust_analyzer_version",
            "rustfmt_version",
            "sha256s",
            "target_settings",
            "urls",
            "versions",
        },
        "repository_set": {
            "allocator_library",
            "dev_components",
            "edition",
            "exec_triple",
            "name",
            "opt_level",
            "rustfmt_version",
            "sha256s",
            "target_compatible_with",
            "target_settings",
            "target_triple",
            "urls",
            "versions",
        },
    },
    "@rules_rust//crate_universe:extensions.bzl%crate": {
        "from_cargo": {
            "name",
            "cargo_config",
            "cargo_lockfile",
            "generate_binaries",
            "generate_build_scripts",
            "host_tools",
            "isolated",
            "lockfile",
            "manifests",
            "skip_cargo_lockfile_overwrite",
            "strip_internal_dependencies_from_cargo_lockfile",
            "supported_platform_triples",
        },
    },
}

RUST_BINARY_ATTRS = {
    "name",
    "srcs",
    "deps",
    "edition",
    "version",
    "rustc_flags",
    "crate_features",
    "platform",
    "visibility",
    "tags",
    "data",
    "proc_macro_deps",
    "crate_root",
}

# Builtins for .bzl files: rule(), transition(), attr.*, providers. `rule` returns a macro that
# records the target; called with name = None it returns the rule's attrs (for tests).
_BZL_PRELUDE = """
def transition(implementation, inputs, outputs):
    return struct(implementation = implementation, inputs = inputs, outputs = outputs)

def _attr_label(**kwargs):
    return struct(kind = "label", **kwargs)

def _attr_string(**kwargs):
    return struct(kind = "string", **kwargs)

def _attr_string_list(**kwargs):
    return struct(kind = "string_list", **kwargs)

attr = struct(label = _attr_label, string = _attr_string, string_list = _attr_string_list)

def rule(implementation, attrs = {}, doc = "", executable = False, test = False):
    def instantiate(name, **values):
        if name == None:
            return attrs
        _check_rule_attrs(name, sorted(values.keys()), sorted(attrs.keys()))
        for key, value in values.items():
            spec = attrs[key]
            if hasattr(spec, "values") and value not in spec.values:
                fail("%s: %r is not one of the values of attribute %s" % (name, value, key))
        _record_target("rule", name, values)
    return instantiate

native = struct(
    constraint_setting = constraint_setting,
    constraint_value = constraint_value,
    config_setting = config_setting,
    platform = platform,
    exports_files = exports_files,
    filegroup = filegroup,
)

def DefaultInfo(**kwargs):
    return struct(**kwargs)

def depset(direct = [], transitive = []):
    return direct

def Label(value):
    return value
"""

# Builtins for MODULE files: use_extension() returns a proxy whose tags record their calls.
_MODULE_PRELUDE = """
def _tag(extension, tag):
    def call(**kwargs):
        _record_tag(extension, tag, kwargs)
    return call

def use_extension(bzl, name, dev_dependency = False):
    extension = bzl + "%" + name
    tags = {tag: _tag(extension, tag) for tag in _extension_tags(extension)}
    return struct(extension_id = extension, **tags)

def use_repo(proxy, *names):
    _record_use_repo(proxy.extension_id, list(names))
"""


@dataclass(kw_only=True)
class Recorded:
    """Everything the evaluated files declared."""

    targets: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    """`//pkg:name` -> (kind, attributes)."""
    module_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    tags: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    """(extension, tag, attributes) per tag call in MODULE files."""
    use_repo: dict[str, list[str]] = field(default_factory=dict)
    """extension -> the repositories the MODULE files take from it."""


def dialect(*, allow_def: bool) -> sl.Dialect:
    """Bazel's Starlark: load, lambda, keyword-only arguments; no top-level if/for, f-strings."""
    result = sl.Dialect.extended()
    result.enable_load = True
    result.enable_def = allow_def
    result.enable_top_level_stmt = False
    result.enable_f_strings = False
    return result


def kind_of(path: Path) -> str:
    """`bzl`, `build` or `module`."""
    if path.suffix == ".bzl":
        return "bzl"
    if path.name == "MODULE.bazel" or path.name.endswith(".MODULE.bazel"):
        return "module"
    return "build"


def parse(path: Path, text: str | None = None) -> sl.AstModule:
    """Parse one file as Bazel would; raises starlark.StarlarkError on a syntax error."""
    source = path.read_text(encoding="utf-8") if text is None else text
    return sl.parse(str(path), source, dialect(allow_def=kind_of(path) == "bzl"))


def starlark_files(root: Path) -> list[Path]:
    names = {"BUILD", "BUILD.bazel", "MODULE.bazel", "WORKSPACE", "WORKSPACE.bazel"}
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and "target" not in p.relative_to(root).parts
        and (p.name in names or p.suffix == ".bzl" or p.name.endswith(".MODULE.bazel"))
    )


class FakeBazel:
    """Evaluates a workspace's files the way Bazel's loading phase would, recording targets."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.recorded = Recorded()
        self._frozen: dict[str, sl.FrozenModule] = {}
        self._globals = sl.Globals.extended_by([sl.LibraryExtension.StructType])

    # --- labels ---------------------------------------------------------------------------

    def _file_of(self, label: str, package: str) -> Path:
        if label.startswith("@"):
            raise KeyError(label)
        if label.startswith(":"):
            pkg, name = package, label[1:]
        else:
            pkg, _, name = label.removeprefix("//").partition(":")
        return self.root / pkg / name

    # --- evaluation -----------------------------------------------------------------------

    def _module(self, package: str, kind: str) -> sl.Module:
        module = sl.Module()
        recorded = self.recorded

        def record_target(rule: str, name: str, attrs: dict[str, Any] | None = None) -> None:
            # A macro or rule defined in a .bzl declares its target in the package being loaded.
            label = f"//{self._current_package}:{name}"
            if label in recorded.targets:
                raise ValueError(f"{label} is declared twice")
            recorded.targets[label] = (rule, attrs or {})

        def native(rule: str) -> Any:
            def call(*args: Any, **kwargs: Any) -> None:
                if "name" in kwargs:
                    record_target(rule, kwargs["name"], kwargs)

            return call

        def check_rule_attrs(name: str, given: list[str], allowed: list[str]) -> None:
            unknown = sorted(set(given) - set(allowed))
            if unknown:
                raise ValueError(f"{name}: unknown attributes {unknown}")

        module.add_callable("_record_target", record_target)
        module.add_callable("_check_rule_attrs", check_rule_attrs)
        for rule in (
            "platform",
            "constraint_setting",
            "constraint_value",
            "config_setting",
            "package",
            "exports_files",
            "filegroup",
        ):
            module.add_callable(rule, native(rule))
        if kind == "module":

            def record_module(call: str) -> Any:
                def record(*args: Any, **kwargs: Any) -> None:
                    recorded.module_calls.append((call, {"args": list(args), **kwargs}))

                return record

            for call in ("module", "bazel_dep", "register_toolchains", "include"):
                module.add_callable(call, record_module(call))

            def extension_tags(extension: str) -> list[str]:
                if extension not in EXTENSION_TAGS:
                    raise ValueError(f"unknown module extension {extension}")
                return sorted(EXTENSION_TAGS[extension])

            def record_tag(extension: str, tag: str, attrs: dict[str, Any]) -> None:
                unknown = sorted(set(attrs) - EXTENSION_TAGS[extension][tag])
                if unknown:
                    raise ValueError(f"{extension} tag {tag}: unknown attributes {unknown}")
                recorded.tags.append((extension, tag, attrs))

            def record_use_repo(extension: str, names: list[str]) -> None:
                recorded.use_repo.setdefault(extension, []).extend(names)

            module.add_callable("_record_use_repo", record_use_repo)
            module.add_callable("_extension_tags", extension_tags)
            module.add_callable("_record_tag", record_tag)
        return module

    def _external(self, label: str) -> sl.FrozenModule:
        if label == "@rules_rust//rust:defs.bzl":
            module = sl.Module()

            def rust_binary(**kwargs: Any) -> None:
                unknown = sorted(set(kwargs) - RUST_BINARY_ATTRS)
                if unknown:
                    raise ValueError(f"rust_binary {kwargs.get('name')}: unknown {unknown}")
                self._current_record("rust_binary", kwargs)

            module.add_callable("rust_binary", rust_binary)
            return module.freeze()
        raise ValueError(f"the fake Bazel has no stub for {label}")

    _current_package = ""

    def _current_record(self, rule: str, attrs: dict[str, Any]) -> None:
        label = f"//{self._current_package}:{attrs['name']}"
        self.recorded.targets[label] = (rule, attrs)

    def load_bzl(self, label: str, package: str = "") -> sl.FrozenModule:
        if label.startswith("@"):
            return self._external(label)
        path = self._file_of(label, package)
        key = str(path)
        if key not in self._frozen:
            pkg = str(path.parent.relative_to(self.root)).replace(".", "")
            text = _BZL_PRELUDE + path.read_text(encoding="utf-8")
            module = self._module(pkg, "bzl")
            ast = sl.parse(str(path), text, dialect(allow_def=True))
            sl.eval(module, ast, self._globals, self._loader(pkg))
            self._frozen[key] = module.freeze()
        return self._frozen[key]

    def _loader(self, package: str) -> sl.FileLoader:
        return sl.FileLoader(lambda label: self.load_bzl(label, package))

    def eval_build(self, relative: str) -> None:
        """Evaluate the BUILD file of a package (`""` is the root)."""
        path = self.root / relative / "BUILD"
        module = self._module(relative, "build")
        self._current_package = relative
        ast = parse(path)
        sl.eval(module, ast, self._globals, self._loader(relative))

    def eval_module(self, name: str = "MODULE.bazel") -> None:
        """Evaluate a MODULE file and, in turn, the files it include()s."""
        path = self.root / name
        before = len(self.recorded.module_calls)
        module = self._module("", "module")
        text = _MODULE_PRELUDE + path.read_text(encoding="utf-8")
        sl.eval(module, sl.parse(str(path), text, dialect(allow_def=True)), self._globals)
        for call, attrs in self.recorded.module_calls[before:]:
            if call == "include":
                (label,) = attrs["args"]
                if not label.startswith("//:") or not label.endswith(".MODULE.bazel"):
                    raise ValueError(f"{name}: include({label!r}) is not //:<name>.MODULE.bazel")
                self.eval_module(label.removeprefix("//:"))

    def run_bzl(self, source: str, package: str = "") -> Any:
        """Evaluate a snippet (which may load the workspace's .bzl files); return its value."""
        module = self._module(package, "bzl")
        self._current_package = package
        ast = sl.parse("<snippet>", _BZL_PRELUDE + source, dialect(allow_def=True))
        return sl.eval(module, ast, self._globals, self._loader(package))
