"""Compiling: the Binary record, the drivers (Cargo, Bazel) and the Bazel workspace sync."""
