# factory's Bazel stage: the builder image plus bazelisk, which runs the Bazel version of the
# workspace's .bazelversion. Built by factory (factory/drivers/bazel_image.py) only when the
# Bazel driver is used; BUILDER is the builder image's tag.
# Legacy-builder compatible: no syntax directive, no RUN --mount.
ARG BUILDER=factory-builder:latest

# bazelisk from its Go module (Debian's Go; the module checksum database verifies the source).
FROM ${BUILDER} AS bazelisk
SHELL ["/bin/bash", "-euo", "pipefail", "-c"]
ARG BAZELISK_VERSION=v1.28.1
ARG GOPROXY=
RUN apt-get update \
 && apt-get install -y --no-install-recommends golang-go ca-certificates \
 && rm -rf /var/lib/apt/lists/*
RUN export GOTOOLCHAIN=local GOPATH=/tmp/go GOCACHE=/tmp/go-cache GOFLAGS=-trimpath; \
    if [ -n "$GOPROXY" ]; then export GOPROXY; fi; \
    go install "github.com/bazelbuild/bazelisk@${BAZELISK_VERSION}" \
      || { echo "bazel stage: bazelisk ${BAZELISK_VERSION} could not be built with go install" \
                "(it needs the Go module proxy, or --build-arg GOPROXY=...)" >&2; exit 1; }; \
    install -m 0755 /tmp/go/bin/bazelisk /usr/local/bin/bazelisk

FROM ${BUILDER}
SHELL ["/bin/bash", "-euo", "pipefail", "-c"]
COPY --from=bazelisk /usr/local/bin/bazelisk /usr/local/bin/bazelisk
RUN ln -s bazelisk /usr/local/bin/bazel

# Download Bazel now, so that every build container has it: bazelisk keeps it in BAZELISK_HOME
# and runs it whenever a workspace's .bazelversion names this version.
ENV BAZELISK_HOME=/opt/bazelisk
ARG USE_BAZEL_VERSION=9.0.0
ARG BAZELISK_BASE_URL=
RUN if [ -n "$BAZELISK_BASE_URL" ]; then export BAZELISK_BASE_URL; fi; \
    cd /tmp; \
    out="$(USE_BAZEL_VERSION="$USE_BAZEL_VERSION" bazel --version 2>&1)" \
      || { echo "bazel stage: bazelisk could not download Bazel ${USE_BAZEL_VERSION}:" \
                "${out: -1500}" >&2; exit 1; }; \
    echo "$out" | grep -qxF "bazel ${USE_BAZEL_VERSION}" \
      || { echo "bazel stage: expected bazel ${USE_BAZEL_VERSION}, got: $out" >&2; exit 1; }

LABEL org.factory.managed="true" \
      org.factory.role="builder-bazel" \
      org.factory.bazel="${USE_BAZEL_VERSION}"
WORKDIR /src
