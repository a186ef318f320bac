"""static_binary: a rust_binary built for one target of factory's table.

The transition sets, for the binary and every crate it depends on (as RUSTFLAGS do for Cargo):
the target's platform (musl, CPU level), the table's rustc flags for the target, the flags of
the compilation mode (-c opt: LTO, codegen-units 1, panic=abort, stripped, -O3) and -march for
C code compiled by build scripts. Build scripts and proc macros stay on the builder's platform.
"""

load("//:settings.bzl", "MODE_LTO", "MODE_RUSTC_FLAGS", "MUSL_RUSTC_FLAGS", "TARGETS")

_COPT = "//command_line_option:copt"
_EXTRA_RUSTC_FLAGS = "@rules_rust//rust/settings:extra_rustc_flags"
_LTO = "@rules_rust//rust/settings:lto"
_MODE = "//command_line_option:compilation_mode"
_PLATFORMS = "//command_line_option:platforms"

def _target_transition_impl(settings, attr):
    target = TARGETS[attr.target]
    mode = settings[_MODE]
    return {
        _COPT: settings[_COPT] + target["copts"],
        _EXTRA_RUSTC_FLAGS: (
            settings[_EXTRA_RUSTC_FLAGS] +
            MODE_RUSTC_FLAGS[mode] +
            MUSL_RUSTC_FLAGS +
            target["rustc_flags"]
        ),
        _LTO: MODE_LTO[mode],
        _PLATFORMS: [str(Label(target["platform"]))],
    }

_target_transition = transition(
    implementation = _target_transition_impl,
    inputs = [_COPT, _EXTRA_RUSTC_FLAGS, _MODE],
    outputs = [_COPT, _EXTRA_RUSTC_FLAGS, _LTO, _PLATFORMS],
)

def _static_binary_impl(ctx):
    binary = ctx.executable.binary
    output = ctx.actions.declare_file(ctx.label.name)
    ctx.actions.symlink(
        output = output,
        target_file = binary,
        is_executable = True,
    )
    return [DefaultInfo(
        executable = output,
        files = depset([output]),
        runfiles = ctx.runfiles(files = [output, binary]),
    )]

static_binary = rule(
    doc = "The `binary` built for `target` (a name from factory's target table).",
    implementation = _static_binary_impl,
    attrs = {
        "binary": attr.label(
            doc = "The rust_binary to build.",
            cfg = _target_transition,
            executable = True,
            mandatory = True,
        ),
        "target": attr.string(
            doc = "The target's name: amd64, amd64_v3, arm64_v8_2a, ...",
            mandatory = True,
            values = list(TARGETS.keys()),
        ),
    },
    executable = True,
)
