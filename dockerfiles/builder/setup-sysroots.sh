#!/bin/bash
# Lays out one musl sysroot per architecture under /opt/factory/sysroot/<arch>-linux-musl, the
# clang wrappers under /opt/factory/bin and cargo's linker configuration, then proves each
# sysroot links a static C program that runs (natively or under qemu-user).
# Inputs: musl-dev for both architectures, /opt/factory/unwind/<arch>/libunwind.a, compiler-rt
# builtins and crtbegin/crtend for both architectures in clang's resource directory.
set -euo pipefail

src=$(cd "$(dirname "$0")" && pwd)
resource=$(clang-21 -print-resource-dir)
native=$(dpkg --print-architecture)
mkdir -p /opt/factory/bin "$CARGO_HOME"
: > "$CARGO_HOME/config.toml"

for arch in x86_64 aarch64; do
    case "$arch" in
        x86_64) debarch=amd64 ;;
        aarch64) debarch=arm64 ;;
    esac
    triple="$arch-linux-musl"
    root="/opt/factory/sysroot/$triple"
    mkdir -p "$root/usr/lib" "$root/usr/include"

    # libc: musl headers plus the kernel's userspace headers, crt objects and static libraries.
    cp -a "/usr/include/$triple/." "$root/usr/include/"
    cp -a /usr/include/linux /usr/include/asm-generic "$root/usr/include/"
    cp -a "/usr/include/$arch-linux-gnu/asm" "$root/usr/include/asm"
    cp "/usr/lib/$triple"/*.o "/usr/lib/$triple"/*.a "$root/usr/lib/"

    # compiler-rt (builtins, crtbegin/crtend) stays in clang's resource directory.
    for f in "lib/linux/libclang_rt.builtins-$arch.a" "lib/linux/clang_rt.crtbegin-$arch.o" \
             "lib/linux/clang_rt.crtend-$arch.o"; do
        test -f "$resource/$f" || { echo "setup-sysroots: missing $resource/$f" >&2; exit 1; }
    done

    cat > "/opt/factory/bin/$triple-cc" <<WRAP
#!/bin/sh
# C compiler for $triple against factory's musl sysroot.
exec clang-21 --target=$triple --sysroot=$root "\$@"
WRAP
    # rustc passes -nodefaultlibs, so compiler-rt's builtins are named explicitly, last: they
    # only fill what Rust's compiler_builtins lacks (C code from build scripts may call them).
    cat > "/opt/factory/bin/$triple-link" <<WRAP
#!/bin/sh
# Linker driver for rustc (-Clink-self-contained=no): clang + lld + compiler-rt, musl sysroot.
exec clang-21 --target=$triple --sysroot=$root -fuse-ld=lld --rtlib=compiler-rt \
    --unwindlib=none -Wno-unused-command-line-argument "\$@" \
    $resource/lib/linux/libclang_rt.builtins-$arch.a
WRAP
    chmod 0755 "/opt/factory/bin/$triple-cc" "/opt/factory/bin/$triple-link"

    # The unwinder std links statically, with the fortify shim appended.
    cp "/opt/factory/unwind/$arch/libunwind.a" "$root/usr/lib/libunwind.a"
    "/opt/factory/bin/$triple-cc" -O2 -fPIC -c "$src/fortify-shim.c" -o "/tmp/fortify-shim-$arch.o"
    llvm-ar-21 qs "$root/usr/lib/libunwind.a" "/tmp/fortify-shim-$arch.o"

    cat >> "$CARGO_HOME/config.toml" <<TOML
[target.$arch-unknown-linux-musl]
linker = "/opt/factory/bin/$triple-link"
rustflags = ["-Clink-self-contained=no", "-Ctarget-feature=+crt-static"]

TOML

    # Prove it: a static C program links and runs.
    "/opt/factory/bin/$triple-link" -static -O2 "$src/hello.c" -o "/tmp/hello-$arch"
    file "/tmp/hello-$arch" | grep -q "statically linked" \
        || { echo "setup-sysroots: /tmp/hello-$arch is not static" >&2; exit 1; }
    if [ "$debarch" = "$native" ]; then
        out=$("/tmp/hello-$arch")
    else
        out=$("qemu-$arch" "/tmp/hello-$arch")
    fi
    [ "$out" = "sysroot ok" ] || { echo "setup-sysroots: $arch smoke run printed '$out'" >&2; exit 1; }
    rm -f "/tmp/hello-$arch" "/tmp/fortify-shim-$arch.o"
done
