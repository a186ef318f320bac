# factory builder image: LLVM 21 + musl 1.2.5 sysroots for x86_64 and aarch64 with LLVM's C++
# runtime (libc++, libc++abi, libunwind built for musl in the runtimes image), Rust 1.96 with std
# sources (compiled per target with -Zbuild-std), qemu-user for smoke runs, and the tools that
# crates' build scripts call: make, cmake, ninja, perl, pkg-config, protoc, libclang (bindgen).
# Legacy-builder compatible: no syntax directive, no RUN --mount.
ARG BASE=debian:trixie-slim
# The runtimes image (dockerfiles/runtimes.Dockerfile) is built once, on the same base, and its
# content-hashed tag is passed here: a change to this file does not compile libc++ again.
ARG RUNTIMES=factory-runtimes
FROM ${RUNTIMES} AS runtimes
FROM ${BASE}

SHELL ["/bin/bash", "-euo", "pipefail", "-c"]
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8

# trixie-backports: extend the apt sources the base already has (deb822 or one-line format).
RUN if [ -f /etc/apt/sources.list.d/debian.sources ]; then \
      sed -i -E '/^Suites:/ s/(^|[[:space:]])trixie([[:space:]]|$)/\1trixie trixie-backports\2/' \
        /etc/apt/sources.list.d/debian.sources; \
    fi; \
    if [ -f /etc/apt/sources.list ] && grep -qE '^deb [^#]* trixie main' /etc/apt/sources.list; then \
      grep -E '^deb [^#]* trixie main' /etc/apt/sources.list | head -n1 \
        | sed -E 's/ trixie main/ trixie-backports main/' > /etc/apt/sources.list.d/backports.list; \
    fi; \
    grep -rqs trixie-backports /etc/apt/sources.list /etc/apt/sources.list.d/ \
      || { echo "builder: could not add trixie-backports to the base image's apt sources" >&2; exit 1; }

# Native toolchain (whatever the host architecture is), and what build scripts run: make, cmake
# and ninja, a full perl (OpenSSL's Configure needs FindBin and IPC::Cmd), pkg-config, protoc with
# the well-known .proto files, libclang for bindgen; sccache for [cache] (Debian's trixie build
# stores on the local disk only: docs/builder-and-build.md).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates file \
      make cmake ninja-build perl pkgconf protobuf-compiler libprotobuf-dev sccache \
 && apt-get install -y --no-install-recommends -t trixie-backports \
      clang-21 lld-21 llvm-21 libclang-rt-21-dev libclang1-21 \
      rustc-web cargo-web rust-web-src qemu-user \
 && apt-get install -y --no-install-recommends musl-dev \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin

# The foreign architecture: arm64 on an amd64 host, amd64 on an arm64 host. musl-dev is
# co-installable (multiarch); libclang-rt-21-dev is not (the foreign one would replace the native
# one), so its foreign files are taken with apt-get download.
RUN native="$(dpkg --print-architecture)"; \
    case "$native" in amd64) foreign=arm64 ;; arm64) foreign=amd64 ;; \
      *) echo "builder: unsupported host architecture $native" >&2; exit 1 ;; esac; \
    arch_of() { case "$1" in amd64) echo x86_64 ;; arm64) echo aarch64 ;; esac; }; \
    farch="$(arch_of "$foreign")"; \
    dpkg --add-architecture "$foreign" \
 && apt-get update \
 && apt-get install -y --no-install-recommends "musl-dev:$foreign" \
 && mkdir -p /tmp/foreign && cd /tmp/foreign \
 && apt-get download -t trixie-backports "libclang-rt-21-dev:$foreign" \
 && for deb in ./*.deb; do dpkg-deb -x "$deb" /tmp/foreign/root; done \
 && resource="$(clang-21 -print-resource-dir)" \
 && cp "/tmp/foreign/root$resource/lib/linux/libclang_rt.builtins-$farch.a" \
       "/tmp/foreign/root$resource/lib/linux/clang_rt.crtbegin-$farch.o" \
       "/tmp/foreign/root$resource/lib/linux/clang_rt.crtend-$farch.o" "$resource/lib/linux/" \
 && cd / && apt-get clean && rm -rf /tmp/foreign /var/lib/apt/lists/* /var/cache/apt/*.bin

# What the labels claim is checked against what was installed (in the RUN below).
ARG LLVM_VERSION=21.1.8 MUSL_VERSION=1.2.5 RUST_VERSION=1.96.0 STD=source

# C and C++ of build scripts (cc-rs, cmake, autotools) use the same clang, sysroot and C++ runtime
# through the wrappers in /opt/factory/bin; the Cargo driver names them per target (CC_<triple>,
# CXX_<triple>, CMAKE_TOOLCHAIN_FILE_<triple>, ...) and adds the level's -march.
ENV CARGO_HOME=/usr/local/cargo \
    PATH=/opt/factory/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
COPY --from=runtimes /opt/factory/runtimes /opt/factory/runtimes
COPY builder/ /opt/factory/src/

# Sysroots, wrappers, CMake toolchain files and cargo config (setup-sysroots.sh), then the version
# checks. std: Debian
# ships no prebuilt musl std, so it is compiled per target (-Zbuild-std) from rust-web-src.
RUN /opt/factory/src/setup-sysroots.sh; \
    clang-21 --version | head -n1 | grep -qF " $LLVM_VERSION " \
      || { echo "builder: clang-21 is not $LLVM_VERSION: $(clang-21 --version | head -n1)" >&2; exit 1; }; \
    dpkg-query -W -f '${Version}\n' musl-dev | grep -q "^$MUSL_VERSION" \
      || { echo "builder: musl-dev is not $MUSL_VERSION" >&2; exit 1; }; \
    rustc -V | grep -qF "rustc $RUST_VERSION " \
      || { echo "builder: rustc is not $RUST_VERSION: $(rustc -V)" >&2; exit 1; }; \
    sysroot="$(rustc --print sysroot)"; \
    test -f "$sysroot/lib/rustlib/src/rust/library/Cargo.lock" \
      || { echo "builder: std sources missing under $sysroot/lib/rustlib/src" >&2; exit 1; }; \
    found=source; \
    for t in x86_64-unknown-linux-musl aarch64-unknown-linux-musl; do \
      if ls "$sysroot/lib/rustlib/$t/lib"/libstd-*.rlib >/dev/null 2>&1; then found=prebuilt; fi; \
    done; \
    [ "$found" = "$STD" ] \
      || { echo "builder: std is $found here; build with --build-arg STD=$found" >&2; exit 1; }; \
    echo "$STD" > /opt/factory/std

LABEL org.factory.managed="true" \
      org.factory.role="builder" \
      org.factory.llvm="${LLVM_VERSION}" \
      org.factory.musl="${MUSL_VERSION}" \
      org.factory.rust="${RUST_VERSION}" \
      org.factory.std="${STD}"
