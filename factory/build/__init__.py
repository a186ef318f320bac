"""Compiling: the Binary record, what drivers share (job: Request, Job, caches, delivery), the
Driver protocol and its table (driver), the drivers (cargo, bazel + its stage) and the Bazel
workspace sync."""
