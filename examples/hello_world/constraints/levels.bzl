"""level_constraints: the CPU-level constraint of one architecture's package."""

def level_constraints(levels):
    """Declares the setting `level`, its default `baseline` and one value per level.

    Args:
      levels: the levels above the baseline (from the package's generated defs.bzl).
    """
    native.constraint_setting(
        name = "level",
        default_constraint_value = ":baseline",
    )
    for name in ["baseline"] + levels:
        native.constraint_value(
            name = name,
            constraint_setting = ":level",
        )
