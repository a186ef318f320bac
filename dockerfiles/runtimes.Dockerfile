# factory runtimes image: LLVM's C++ runtime (libunwind, libc++abi, libc++; static only,
# position-independent) compiled against musl for x86_64 and aarch64 from the upstream sources in
# Debian's llvm-toolchain-21 source package (trixie-backports), installed as
#   /opt/factory/runtimes/<arch>-linux-musl/include/c++/v1/...   (headers, with __config_site)
#   /opt/factory/runtimes/<arch>-linux-musl/lib/{libc++.a,libc++abi.a,libunwind.a}
# which the builder copies (COPY --from). libc++abi is merged into libc++.a; libunwind is not
# (Rust's std links libunwind.a itself). Built once per base: factory tags it with a content hash
# and passes that tag to the builder. Two stages: the toolchain stays in this first one, and the
# image is the base plus /opt/factory/runtimes.
# Legacy-builder compatible: no syntax directive, no RUN --mount.
ARG BASE=debian:trixie-slim
FROM ${BASE} AS build

SHELL ["/bin/bash", "-euo", "pipefail", "-c"]
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8

# trixie-backports, binaries and sources: one entry derived from the base's own trixie entry
# (deb822 debian.sources or a one-line sources.list), so no mirror is named here.
RUN if [ -f /etc/apt/sources.list.d/debian.sources ]; then \
      awk -v RS= '/(^|\n)Suites:[^\n]*[[:space:]]trixie([[:space:]]|$)/ { print; exit }' \
          /etc/apt/sources.list.d/debian.sources \
        | sed -E -e 's/^Types:.*/Types: deb deb-src/' -e 's/^Suites:.*/Suites: trixie-backports/' \
                 -e 's/^Components:.*/Components: main/' \
        > /etc/apt/sources.list.d/factory-backports.sources; \
      [ -s /etc/apt/sources.list.d/factory-backports.sources ] \
        || rm -f /etc/apt/sources.list.d/factory-backports.sources; \
    fi; \
    main='^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?[^[:space:]]+[[:space:]]+trixie[[:space:]]'; \
    if [ ! -f /etc/apt/sources.list.d/factory-backports.sources ] && [ -f /etc/apt/sources.list ] \
       && grep -qE "$main" /etc/apt/sources.list; then \
      entry="$(grep -m1 -E "$main" /etc/apt/sources.list \
        | sed -E 's/^deb([[:space:]]+(\[[^]]*\][[:space:]]+)?[^[:space:]]+[[:space:]]+)trixie[[:space:]].*/\1trixie-backports main/')"; \
      printf 'deb%s\ndeb-src%s\n' "$entry" "$entry" > /etc/apt/sources.list.d/factory-backports.list; \
    fi; \
    grep -rqsE '(deb-src.*trixie-backports|Types: deb deb-src)' /etc/apt/sources.list.d/ \
      || { echo "runtimes: could not add trixie-backports (deb, deb-src) to the base image's apt sources" >&2; exit 1; }; \
    cat /etc/apt/sources.list.d/factory-backports.*

# The toolchain (host architecture: amd64 or arm64) and musl for both architectures. For the
# proof, the foreign architecture's compiler-rt (builtins, crtbegin/crtend) and qemu-user's one
# emulator of it (a static binary) are taken out of their packages with apt-get download:
# libclang-rt-21-dev is not co-installable across architectures, and all of qemu-user is ~470 MB.
RUN native="$(dpkg --print-architecture)"; \
    case "$native" in amd64) foreign=arm64 ;; arm64) foreign=amd64 ;; \
      *) echo "runtimes: unsupported host architecture $native" >&2; exit 1 ;; esac; \
    arch_of() { case "$1" in amd64) echo x86_64 ;; arm64) echo aarch64 ;; esac; }; \
    farch="$(arch_of "$foreign")"; \
    dpkg --add-architecture "$foreign" \
 && apt-get update \
 && apt-get install -y --no-install-recommends xz-utils cmake ninja-build python3 \
      musl-dev "musl-dev:$foreign" \
 && apt-get install -y --no-install-recommends -t trixie-backports \
      clang-21 lld-21 llvm-21 libclang-rt-21-dev \
 && mkdir -p /tmp/foreign && cd /tmp/foreign \
 && apt-get download -t trixie-backports "libclang-rt-21-dev:$foreign" qemu-user \
 && resource="$(clang-21 -print-resource-dir)" \
 && dpkg-deb --fsys-tarfile ./libclang-rt-21-dev_*.deb | tar -x -C / \
      ".$resource/lib/linux/libclang_rt.builtins-$farch.a" \
      ".$resource/lib/linux/clang_rt.crtbegin-$farch.o" ".$resource/lib/linux/clang_rt.crtend-$farch.o" \
 && dpkg-deb --fsys-tarfile ./qemu-user_*.deb | tar -x -C /usr/local/bin --strip-components=3 \
      "./usr/bin/qemu-$farch" \
 && "qemu-$farch" --version >/dev/null \
 && cd / && rm -rf /tmp/foreign /var/lib/apt/lists/* && apt-get clean

# What the labels claim is checked against what was fetched and installed (in the RUN below).
ARG LLVM_VERSION=21.1.8 MUSL_VERSION=1.2.5
COPY runtimes/ /opt/factory/src/runtimes/

# Fetch (the orig tarball only), extract what the runtimes build reads, compile both
# architectures, install, check the archives' symbols; sources, build trees and apt lists go in
# this same step.
RUN bad="$(dpkg-query -W -f '${Package}:${Architecture} ${Version}\n' 'musl-dev:*' \
      | grep -vF " $MUSL_VERSION-" || true)"; \
    [ -z "$bad" ] || { echo "runtimes: musl-dev is not $MUSL_VERSION: $bad" >&2; exit 1; }; \
    /opt/factory/src/runtimes/build-runtimes.sh; \
    rm -rf /var/lib/apt/lists/*; apt-get clean

# The proof: a static C++17 program (exceptions, threads, iostream) links and runs, per arch.
RUN /opt/factory/src/runtimes/prove-runtimes.sh

# This stage's image stays in the engine as build cache: labelled, `factory clean` removes it.
LABEL org.factory.managed="true" \
      org.factory.role="runtimes-build"

FROM ${BASE}
ARG LLVM_VERSION=21.1.8 MUSL_VERSION=1.2.5
COPY --from=build /opt/factory/runtimes /opt/factory/runtimes
LABEL org.factory.managed="true" \
      org.factory.role="runtimes" \
      org.factory.llvm="${LLVM_VERSION}" \
      org.factory.musl="${MUSL_VERSION}"
