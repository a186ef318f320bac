#!/bin/bash
# Lays out one musl sysroot per architecture under /opt/factory/sysroot/<arch>-linux-musl (musl,
# the kernel headers, LLVM's libc++/libc++abi/libunwind built for musl), the compiler wrappers under
# /opt/factory/bin, a CMake toolchain file per target under /opt/factory/cmake and cargo's linker
# configuration, then proves each sysroot: a static C program and a static C++ program that throws
# link with the plain wrappers (as autotools' and CMake's test programs do) and run, natively or
# under qemu-user.
# Inputs: musl-dev for both architectures, /opt/factory/runtimes/<arch>-linux-musl/{include,lib}
# (the runtimes image), compiler-rt builtins and crtbegin/crtend for both architectures in clang's
# resource directory.
set -euo pipefail

src=$(cd "$(dirname "$0")" && pwd)
resource=$(clang-21 -print-resource-dir)
native=$(dpkg --print-architecture)
mkdir -p /opt/factory/bin /opt/factory/cmake "$CARGO_HOME"
: > "$CARGO_HOME/config.toml"

wrapper() { # name, comment, command...
    local name=$1 comment=$2
    shift 2
    printf '#!/bin/sh\n# %s\n%s\n' "$comment" "$*" > "/opt/factory/bin/$name"
    chmod 0755 "/opt/factory/bin/$name"
}

for arch in x86_64 aarch64; do
    case "$arch" in
        x86_64) debarch=amd64 ;;
        aarch64) debarch=arm64 ;;
    esac
    triple="$arch-linux-musl"
    root="/opt/factory/sysroot/$triple"
    runtimes="/opt/factory/runtimes/$triple"
    mkdir -p "$root/usr/lib" "$root/usr/include"

    # libc: musl headers plus the kernel's userspace headers, crt objects and static libraries.
    cp -a "/usr/include/$triple/." "$root/usr/include/"
    cp -RL /usr/include/linux /usr/include/asm-generic "$root/usr/include/"
    cp -RL "/usr/include/$arch-linux-gnu/asm" "$root/usr/include/asm"
    cp "/usr/lib/$triple"/*.o "/usr/lib/$triple"/*.a "$root/usr/lib/"

    # The C++ runtime and the unwinder (std links libunwind.a too), compiled against musl.
    for f in include/c++/v1/__config_site lib/libc++.a lib/libc++abi.a lib/libunwind.a; do
        test -f "$runtimes/$f" || { echo "setup-sysroots: missing $runtimes/$f" >&2; exit 1; }
    done
    cp -a "$runtimes/include/c++" "$root/usr/include/"
    cp "$runtimes"/lib/libc++.a "$runtimes"/lib/libc++abi.a "$runtimes"/lib/libunwind.a "$root/usr/lib/"
    # Crates that name GNU's C++ library (`#[link(name = "stdc++")]`, cargo:rustc-link-lib=stdc++)
    # get libc++ (with libc++abi merged in) through a linker script under GNU's name.
    printf '/* libstdc++ for factory: LLVM libc++ */\nINPUT(-lc++)\n' > "$root/usr/lib/libstdc++.a"

    # Debian's kernel headers are relative symlinks: the copies above follow them, and none dangles.
    dangling=$(find "$root" -xtype l)
    [ -z "$dangling" ] || { echo "setup-sysroots: dangling links in $root: $dangling" >&2; exit 1; }

    # compiler-rt (builtins, crtbegin/crtend) stays in clang's resource directory.
    for f in "lib/linux/libclang_rt.builtins-$arch.a" "lib/linux/clang_rt.crtbegin-$arch.o" \
             "lib/linux/clang_rt.crtend-$arch.o"; do
        test -f "$resource/$f" || { echo "setup-sysroots: missing $resource/$f" >&2; exit 1; }
    done

    # C and C++ compilers that compile and link: lld, compiler-rt, LLVM's unwinder, libc++, and a
    # static link unless the caller asks for a shared object.
    common="--target=$triple --sysroot=$root -fuse-ld=lld --rtlib=compiler-rt --unwindlib=libunwind -Wno-unused-command-line-argument"
    static='static=-static; for a in "$@"; do case "$a" in -shared|-c|-E|-S|-M|-MM) static= ;; esac; done'
    # sccache runs the compiler without SOURCE_DATE_EPOCH (it keeps other variables), so the
    # Cargo driver also passes it as FACTORY_SOURCE_DATE_EPOCH: __DATE__ and __TIME__ stay fixed.
    epoch='[ -n "${SOURCE_DATE_EPOCH+set}" ] || [ -z "${FACTORY_SOURCE_DATE_EPOCH:-}" ] || export SOURCE_DATE_EPOCH="$FACTORY_SOURCE_DATE_EPOCH"'
    wrapper "$triple-cc" "C compiler for $triple (factory's musl sysroot): compiles and links." \
        "$epoch"$'\n'"$static"$'\n'"exec clang-21 $common \$static \"\$@\""
    wrapper "$triple-c++" "C++ compiler for $triple with LLVM's libc++ (static): compiles and links." \
        "$epoch"$'\n'"$static"$'\n'"exec clang++-21 $common -stdlib=libc++ \$static \"\$@\""
    # The names crates and configure scripts probe for.
    ln -sf "$triple-cc" "/opt/factory/bin/$triple-gcc"
    ln -sf "$triple-c++" "/opt/factory/bin/$triple-g++"
    for tool in ar ranlib nm strip objcopy objdump readelf; do
        ln -sf "/usr/bin/llvm-$tool-21" "/opt/factory/bin/$triple-$tool"
    done
    ln -sf /usr/bin/ld.lld-21 "/opt/factory/bin/$triple-ld"
    # rustc passes -nodefaultlibs, so compiler-rt's builtins are named explicitly, last: they
    # only fill what Rust's compiler_builtins lacks (C code from build scripts may call them).
    wrapper "$triple-link" "Linker driver for rustc (-Clink-self-contained=no): clang + lld + compiler-rt, musl sysroot." \
        "exec clang-21 --target=$triple --sysroot=$root -fuse-ld=lld --rtlib=compiler-rt --unwindlib=none -Wno-unused-command-line-argument \"\$@\" $resource/lib/linux/libclang_rt.builtins-$arch.a"

    cat > "/opt/factory/cmake/$triple.cmake" <<CMAKE
# CMake toolchain file for $triple: factory's wrappers and musl sysroot (a static C/C++ world).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR $arch)
set(CMAKE_SYSROOT $root)
set(CMAKE_C_COMPILER /opt/factory/bin/$triple-cc)
set(CMAKE_CXX_COMPILER /opt/factory/bin/$triple-c++)
set(CMAKE_ASM_COMPILER /opt/factory/bin/$triple-cc)
set(CMAKE_AR /usr/bin/llvm-ar-21 CACHE FILEPATH "")
set(CMAKE_RANLIB /usr/bin/llvm-ranlib-21 CACHE FILEPATH "")
set(CMAKE_FIND_ROOT_PATH $root)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
set(CMAKE_POSITION_INDEPENDENT_CODE ON)
set(BUILD_SHARED_LIBS OFF CACHE BOOL "")
CMAKE

    cat >> "$CARGO_HOME/config.toml" <<TOML
[target.$arch-unknown-linux-musl]
linker = "/opt/factory/bin/$triple-link"
rustflags = ["-Clink-self-contained=no", "-Ctarget-feature=+crt-static"]

TOML

    # Prove it: the plain wrappers link static C and C++ programs that run, and CMake configures.
    run() { if [ "$debarch" = "$native" ]; then "$@"; else "qemu-$arch" "$@"; fi; }
    "/opt/factory/bin/$triple-gcc" -O2 "$src/hello.c" -o "/tmp/hello-$arch"
    "/opt/factory/bin/$triple-g++" -O2 -std=c++17 "$src/hello.cpp" -o "/tmp/hello-cpp-$arch"
    "/opt/factory/bin/$triple-g++" -O2 -std=c++17 "$src/hello.cpp" -nostdlib++ -lstdc++ \
        -o "/tmp/hello-stdcpp-$arch"
    for exe in "/tmp/hello-$arch" "/tmp/hello-cpp-$arch" "/tmp/hello-stdcpp-$arch"; do
        file "$exe" | grep -q "statically linked" \
            || { echo "setup-sysroots: $exe is not static: $(file "$exe")" >&2; exit 1; }
    done
    out=$(run "/tmp/hello-$arch")
    [ "$out" = "sysroot ok" ] || { echo "setup-sysroots: $arch C smoke run printed '$out'" >&2; exit 1; }
    for exe in "/tmp/hello-cpp-$arch" "/tmp/hello-stdcpp-$arch"; do
        out=$(run "$exe")
        [ "$out" = "c++ ok: caught 42" ] || { echo "setup-sysroots: $exe printed '$out'" >&2; exit 1; }
    done
    mkdir -p "/tmp/cmake-$arch"
    cmake -S "$src/cmake-probe" -B "/tmp/cmake-$arch" -G Ninja \
        -DCMAKE_TOOLCHAIN_FILE="/opt/factory/cmake/$triple.cmake" >/dev/null \
        && cmake --build "/tmp/cmake-$arch" >/dev/null \
        || { echo "setup-sysroots: CMake cannot build for $triple" >&2; exit 1; }
    out=$(run "/tmp/cmake-$arch/probe")
    [ "$out" = "cmake ok" ] || { echo "setup-sysroots: $arch CMake probe printed '$out'" >&2; exit 1; }
    rm -rf "/tmp/hello-$arch" "/tmp/hello-cpp-$arch" "/tmp/hello-stdcpp-$arch" "/tmp/cmake-$arch"
done
