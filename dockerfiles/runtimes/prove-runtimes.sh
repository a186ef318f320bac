#!/bin/bash
# Proves the installed runtimes: for each architecture, proof.cpp is compiled with clang++-21
# against /opt/factory/runtimes/<arch>-linux-musl and a musl sysroot, linked fully static (once
# -static, once -static-pie as Rust's x86_64 musl binaries are) with lld, compiler-rt and LLVM's
# libunwind, and run: natively, or under qemu-<arch> for the foreign architecture, on the
# oldest CPU model of the baseline (qemu64, cortex-a53). Nothing is left behind.
# Inputs: clang-21, lld-21, llvm-21, musl-dev for both architectures, compiler-rt builtins and
# crtbegin/crtend for both in clang's resource directory, qemu-<foreign arch> on PATH.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
prefix=/opt/factory/runtimes
work=/tmp/runtimes-proof
native=$(dpkg --print-architecture)
expected="runtimes ok: libc++ libc++abi libunwind; caught 1, rethrown 2, destructors 8"

say() { echo "prove-runtimes: $*" >&2; }
die() { say "$*"; exit 1; }

for arch in x86_64 aarch64; do
    case "$arch" in
        x86_64) debarch=amd64 cpu=qemu64 ;;
        aarch64) debarch=arm64 cpu=cortex-a53 ;;
    esac
    triple="$arch-linux-musl"
    runtimes="$prefix/$triple"
    sysroot="$work/sysroot/$triple"
    "$here/make-sysroot.sh" "$arch" "$sysroot"
    for link in -static -static-pie; do
        exe="$work/proof-$arch$link"
        clang++-21 --target="$triple" --sysroot="$sysroot" \
            -nostdinc++ -isystem "$runtimes/include/c++/v1" -stdlib=libc++ \
            "$link" -fuse-ld=lld --rtlib=compiler-rt --unwindlib=libunwind -L"$runtimes/lib" \
            -std=c++17 -O2 -pthread "$here/proof.cpp" -o "$exe"
        headers=$(llvm-readelf-21 -h -l -d "$exe")
        ! grep -qE 'INTERP|\(NEEDED\)' <<<"$headers" || die "$exe is not fully static"
        kind=$(awk '$1 == "Type:" { print $2; exit }' <<<"$headers")
        if [ "$debarch" = "$native" ]; then
            how=natively
            out=$("$exe")
        else
            how="under qemu-$arch -cpu $cpu"
            out=$("qemu-$arch" -cpu "$cpu" "$exe")
        fi
        [ "$out" = "$expected" ] || die "$triple $link printed '$out', not '$expected'"
        say "$triple $link ($kind, $(stat -c %s "$exe") bytes), ran $how: $out"
    done
done
rm -rf "$work"
