# The tools no one here wrote that the tests run: OCI layout readers (skopeo, umoci,
# oci-image-tool), C compilers for the ELF fixtures (gcc with glibc, musl-gcc), openssl for test
# certificates, redis-server for the compile cache's tests. Built by tests/testtools.py on the
# bootstrapped Debian base, like the builder; legacy-builder compatible: no syntax directive, no
# RUN --mount.
ARG BASE=debian:trixie-slim
FROM ${BASE}

SHELL ["/bin/sh", "-eu", "-c"]
ENV DEBIAN_FRONTEND=noninteractive

RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      skopeo umoci oci-image-tool gcc libc6-dev musl-tools openssl ca-certificates \
      redis-server redis-tools \
 && rm -rf /var/lib/apt/lists/*

# The tests run as the invoking user's uid, which has no home in the image.
ENV HOME=/tmp
