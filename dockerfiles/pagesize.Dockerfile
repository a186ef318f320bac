# factory's page-size guest: qemu-system-aarch64 and Debian's 16K-page arm64 kernel, to boot a
# binary under a real 16K-page kernel (qemu-user always runs with the host's 4K pages). The /init
# of the guest (pagesize/init.c: freestanding, no C library) is compiled here for AArch64 with
# clang, which is removed again in the same step. Legacy-builder compatible: no syntax
# directive, no RUN --mount. The base's own apt sources are used as they are; every step
# removes apt's lists, caches and downloaded packages (the bootstrapped base keeps them).
ARG BASE=debian:trixie-slim
FROM ${BASE}

SHELL ["/bin/sh", "-eu", "-c"]
ENV DEBIAN_FRONTEND=noninteractive

# qemu-system-arm (the package of qemu-system-aarch64) without its recommends: no firmware
# ROMs, so the guest runs with -nic none.
RUN apt-get update \
 && apt-get install -y --no-install-recommends qemu-system-arm \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin

# The kernel: the image package the arm64 metapackage linux-image-arm64-16k depends on, taken
# with apt-get download (an amd64 host cannot install it) and unpacked; only its vmlinuz is
# kept. It is an uncompressed arm64 Image that QEMU's -kernel loads as it is.
RUN dpkg --add-architecture arm64 \
 && apt-get update \
 && pkg="$(apt-cache depends linux-image-arm64-16k:arm64 \
      | sed -n -E 's/^ *Depends: (linux-image-[^ :]*-arm64-16k)(:arm64)?$/\1/p' | head -n1)" \
 && test -n "$pkg" \
 && mkdir -p /tmp/kernel /opt/factory/pagesize && cd /tmp/kernel && chown _apt /tmp/kernel \
 && apt-get download "$pkg:arm64" \
 && dpkg-deb -x ./*.deb root \
 && set -- root/boot/vmlinuz-* && test "$#" -eq 1 \
 && cp "$1" /opt/factory/pagesize/vmlinuz-16k \
 && echo "$pkg" > /opt/factory/pagesize/kernel-16k.package \
 && cd / && apt-get clean && rm -rf /tmp/kernel /var/lib/apt/lists/* /var/cache/apt/*.bin \
 && dpkg --remove-architecture arm64

# /init: compiled for AArch64 without a C library, then the compiler goes again.
COPY pagesize/init.c /opt/factory/pagesize/
RUN apt-get update \
 && apt-get install -y --no-install-recommends clang lld \
 && clang --target=aarch64-linux-gnu -ffreestanding -nostdlib -static -fno-pic \
      -fno-stack-protector -O2 -Wall -Wextra -Werror -fuse-ld=lld -Wl,--build-id=none \
      -Wl,-z,noexecstack -o /opt/factory/pagesize/init /opt/factory/pagesize/init.c \
 && apt-get purge -y --autoremove clang lld \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
 && test -x /opt/factory/pagesize/init

# The run is started with `timeout` (coreutils) around qemu-system-aarch64.
ENV HOME=/tmp
