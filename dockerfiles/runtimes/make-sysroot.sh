#!/bin/bash
# make-sysroot.sh ARCH DIR: a musl sysroot for `clang --target=ARCH-linux-musl --sysroot=DIR`,
# laid out as the builder's setup-sysroots.sh lays its own: musl's headers plus the kernel's
# userspace headers under DIR/usr/include, musl's crt objects and static libraries under
# DIR/usr/lib. Inputs: musl-dev for ARCH's Debian architecture and linux-libc-dev.
set -euo pipefail

arch=$1
root=$2
triple="$arch-linux-musl"
for dir in "/usr/include/$triple" "/usr/lib/$triple" "/usr/include/$arch-linux-gnu/asm"; do
    test -d "$dir" || { echo "make-sysroot: $dir is missing (musl-dev, linux-libc-dev)" >&2; exit 1; }
done
test ! -e "$root" || { echo "make-sysroot: $root exists already" >&2; exit 1; }
mkdir -p "$root/usr/lib" "$root/usr/include"
cp -a "/usr/include/$triple/." "$root/usr/include/"
cp -a /usr/include/linux /usr/include/asm-generic "$root/usr/include/"
# Debian's linux-libc-dev makes <arch>-linux-gnu/asm a folder of relative symlinks into
# /usr/lib/linux/uapi, which would dangle in the copy: take the files they point to.
cp -RL --preserve=mode,timestamps "/usr/include/$arch-linux-gnu/asm" "$root/usr/include/asm"
cp "/usr/lib/$triple"/*.o "/usr/lib/$triple"/*.a "$root/usr/lib/"
