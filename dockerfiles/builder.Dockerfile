# factory builder image: LLVM 21 + musl 1.2.5 sysroots for x86_64 and aarch64, Rust 1.96 with
# std sources (compiled per target with -Zbuild-std), qemu-user for smoke runs.
# Legacy-builder compatible: no syntax directive, no RUN --mount.
ARG BASE=debian:trixie-slim
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

# Native toolchain (whatever the host architecture is).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates file \
 && apt-get install -y --no-install-recommends -t trixie-backports \
      clang-21 lld-21 llvm-21 libclang-rt-21-dev libunwind-21-dev \
      rustc-web cargo-web rust-web-src qemu-user \
 && apt-get install -y --no-install-recommends musl-dev \
 && rm -rf /var/lib/apt/lists/*

# The foreign architecture: arm64 on an amd64 host, amd64 on an arm64 host. musl-dev is
# co-installable (multiarch); libclang-rt-21-dev and libunwind-21-dev are not (the foreign one
# would replace the native one), so their foreign files are taken with apt-get download.
RUN native="$(dpkg --print-architecture)"; \
    case "$native" in amd64) foreign=arm64 ;; arm64) foreign=amd64 ;; \
      *) echo "builder: unsupported host architecture $native" >&2; exit 1 ;; esac; \
    arch_of() { case "$1" in amd64) echo x86_64 ;; arm64) echo aarch64 ;; esac; }; \
    farch="$(arch_of "$foreign")"; narch="$(arch_of "$native")"; \
    dpkg --add-architecture "$foreign" \
 && apt-get update \
 && apt-get install -y --no-install-recommends "musl-dev:$foreign" \
 && mkdir -p /tmp/foreign "/opt/factory/unwind/$narch" "/opt/factory/unwind/$farch" && cd /tmp/foreign \
 && apt-get download -t trixie-backports "libclang-rt-21-dev:$foreign" "libunwind-21-dev:$foreign" \
 && for deb in ./*.deb; do dpkg-deb -x "$deb" /tmp/foreign/root; done \
 && resource="$(clang-21 -print-resource-dir)" \
 && cp "/tmp/foreign/root$resource/lib/linux/libclang_rt.builtins-$farch.a" \
       "/tmp/foreign/root$resource/lib/linux/clang_rt.crtbegin-$farch.o" \
       "/tmp/foreign/root$resource/lib/linux/clang_rt.crtend-$farch.o" "$resource/lib/linux/" \
 && cp /tmp/foreign/root/usr/lib/llvm-21/lib/libunwind.a "/opt/factory/unwind/$farch/" \
 && cp /usr/lib/llvm-21/lib/libunwind.a "/opt/factory/unwind/$narch/" \
 && cd / && rm -rf /tmp/foreign /var/lib/apt/lists/*

# What the labels claim is checked against what was installed (in the RUN below).
ARG LLVM_VERSION=21.1.8 MUSL_VERSION=1.2.5 RUST_VERSION=1.96.0 STD=source

# C code of build scripts (cc-rs) uses the same clang and sysroot; factory adds -march per level.
ENV CARGO_HOME=/usr/local/cargo \
    PATH=/opt/factory/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    CC_x86_64_unknown_linux_musl=/opt/factory/bin/x86_64-linux-musl-cc \
    AR_x86_64_unknown_linux_musl=llvm-ar-21 \
    CC_aarch64_unknown_linux_musl=/opt/factory/bin/aarch64-linux-musl-cc \
    AR_aarch64_unknown_linux_musl=llvm-ar-21
COPY builder/ /opt/factory/src/

# Sysroots, wrappers and cargo config (setup-sysroots.sh), then the version checks. std: Debian
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
