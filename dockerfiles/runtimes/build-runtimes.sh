#!/bin/bash
# Builds LLVM's C++ runtime (libunwind, libc++abi, libc++: static, position-independent) for
# x86_64 and aarch64 musl from the upstream sources in Debian's llvm-toolchain-21 source package,
# and installs each under /opt/factory/runtimes/<arch>-linux-musl/{include/c++/v1,lib}.
# Then checks that every symbol the archives leave undefined is one musl's libc.a, compiler-rt's
# builtins or the archives themselves define (no glibc-only symbol, no __*_chk), and that
# libc++abi is merged into libc++.a but libunwind is merged into neither.
# Inputs: LLVM_VERSION (the upstream version the source package must have), clang-21, lld-21,
# llvm-21, cmake, ninja, python3, musl-dev for both architectures, compiler-rt builtins for both
# in clang's resource directory, and a deb-src entry for trixie-backports.
set -euo pipefail

: "${LLVM_VERSION:?build-runtimes: LLVM_VERSION is not set}"
here=$(cd "$(dirname "$0")" && pwd)
prefix=/opt/factory/runtimes
work=/tmp/runtimes-build          # fixed paths: nothing in the objects depends on where this ran
src="$work/llvm-project"
package=llvm-toolchain-21
resource=$(clang-21 -print-resource-dir)

say() { echo "build-runtimes: $*" >&2; }
die() { say "$*"; exit 1; }
now() { date +%s; }

clang=$(clang-21 --version)
clang=${clang%%$'\n'*}
[[ "$clang" == *" $LLVM_VERSION "* ]] || die "clang-21 is not $LLVM_VERSION: $clang"

mkdir -p "$work/download" "$src"
t0=$(now)

# The source: only the upstream (orig) tarball is needed, so it alone is fetched, at the address
# and with the SHA256 that apt's (signed) Sources index gives, through apt's own downloader
# (apt's proxy settings apply). `apt-get source --download-only` would also fetch the .dsc and
# Debian's packaging (unused here: upstream sources, no Debian patches), and fails as a whole
# when the mirror lacks one of those.
apt-get update -qq
uris=$(apt-get source --print-uris -qq -t trixie-backports "$package")
orig=$(grep -E "^'[^']+/${package}_[^' ]+\.orig\.tar\.[a-z0-9]+' " <<<"$uris" | head -n1) \
    || die "apt knows no orig tarball of $package in trixie-backports (is its deb-src entry there?)"
read -r uri file _size hash <<<"$orig"
uri=${uri//\'/}
version=${file#"${package}_"}
version=${version%.orig.tar.*}
[ "$version" = "$LLVM_VERSION" ] \
    || die "trixie-backports has $package $version, not $LLVM_VERSION: update ARG LLVM_VERSION"
chown _apt "$work/download" 2>/dev/null || true
/usr/lib/apt/apt-helper download-file "$uri" "$work/download/$file" "$hash"
t1=$(now)

# Only what LLVM's runtimes build reads: runtimes/, cmake/, llvm/cmake/, the three runtimes and
# libc/ (libc++'s from_chars uses LLVM libc's shared float parsing); no test or docs folders.
tar -xf "$work/download/$file" -C "$src" --strip-components=1 \
    --wildcards --no-wildcards-match-slash \
    --exclude='*/*/test' --exclude='*/*/docs' --exclude='*/*/benchmarks' \
    '*/runtimes' '*/cmake' '*/llvm/cmake' '*/libunwind' '*/libcxxabi' '*/libcxx' \
    '*/libc/shared' '*/libc/src/__support' '*/libc/hdr' '*/libc/include/llvm-libc-macros' \
    '*/libc/include/llvm-libc-types'
rm -rf "$work/download"
IFS=. read -r major minor patch <<<"$LLVM_VERSION"
for part in "MAJOR $major" "MINOR $minor" "PATCH $patch"; do
    grep -qF "set(LLVM_VERSION_${part% *} ${part#* })" "$src/cmake/Modules/LLVMVersion.cmake" \
        || die "the extracted sources are not LLVM $LLVM_VERSION (LLVM_VERSION_${part% *})"
done
t2=$(now)
say "source $file: download $((t1 - t0)) s, extract $((t2 - t1)) s ($(du -sh "$src" | cut -f1))"

for arch in x86_64 aarch64; do
    t3=$(now)
    triple="$arch-linux-musl"
    sysroot="$work/sysroot/$triple"
    build="$work/build/$triple"
    "$here/make-sysroot.sh" "$arch" "$sysroot"
    # -ffunction-sections/-fdata-sections: a static link with --gc-sections (rustc passes it)
    # keeps only what is used. The prefix maps keep build paths out of the objects.
    flags="-ffunction-sections -fdata-sections -ffile-prefix-map=$src=/usr/src/llvm-$LLVM_VERSION"
    flags+=" -ffile-prefix-map=$build=/usr/src/llvm-$LLVM_VERSION/build"
    # CMAKE_TRY_COMPILE_TARGET_TYPE=STATIC_LIBRARY: the configure checks compile but never link
    # (no C++ runtime exists yet), so CMake's library probes (check_library_exists) would all
    # pass: their answers for musl are given instead (the *_HAS_*_LIB=OFF below). musl has
    # pthread, dl and rt inside libc.a (no `#pragma comment(lib, ...)` is needed) and no
    # __cxa_thread_atexit_impl (glibc's; libc++abi then uses its own pthread-key fallback), and
    # compiler-rt's builtins provide the __atomic_* calls (no libatomic).
    cmake -G Ninja -S "$src/runtimes" -B "$build" -Wno-dev \
        -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_INSTALL_PREFIX="$prefix/$triple" \
        -DCMAKE_SYSTEM_NAME=Linux \
        -DCMAKE_SYSTEM_PROCESSOR="$arch" \
        -DCMAKE_SYSROOT="$sysroot" \
        -DCMAKE_C_COMPILER=clang-21 \
        -DCMAKE_CXX_COMPILER=clang++-21 \
        -DCMAKE_ASM_COMPILER=clang-21 \
        -DCMAKE_C_COMPILER_TARGET="$triple" \
        -DCMAKE_CXX_COMPILER_TARGET="$triple" \
        -DCMAKE_ASM_COMPILER_TARGET="$triple" \
        -DCMAKE_AR="$(command -v llvm-ar-21)" \
        -DCMAKE_RANLIB="$(command -v llvm-ranlib-21)" \
        -DCMAKE_NM="$(command -v llvm-nm-21)" \
        -DCMAKE_TRY_COMPILE_TARGET_TYPE=STATIC_LIBRARY \
        -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
        -DCMAKE_C_FLAGS="$flags" \
        -DCMAKE_CXX_FLAGS="$flags" \
        -DCMAKE_ASM_FLAGS="$flags" \
        -DCMAKE_C_FLAGS_RELEASE="-O2 -DNDEBUG" \
        -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" \
        -DCMAKE_ASM_FLAGS_RELEASE="-DNDEBUG" \
        -DLLVM_ENABLE_RUNTIMES="libunwind;libcxxabi;libcxx" \
        -DLLVM_DEFAULT_TARGET_TRIPLE="$triple" \
        -DLLVM_ENABLE_PER_TARGET_RUNTIME_DIR=OFF \
        -DLLVM_INCLUDE_TESTS=OFF \
        -DLLVM_INCLUDE_DOCS=OFF \
        -DLIBUNWIND_ENABLE_SHARED=OFF \
        -DLIBUNWIND_ENABLE_STATIC=ON \
        -DLIBUNWIND_USE_COMPILER_RT=ON \
        -DLIBUNWIND_INCLUDE_TESTS=OFF \
        -DLIBUNWIND_INCLUDE_DOCS=OFF \
        -DLIBCXXABI_ENABLE_SHARED=OFF \
        -DLIBCXXABI_ENABLE_STATIC=ON \
        -DLIBCXXABI_USE_COMPILER_RT=ON \
        -DLIBCXXABI_USE_LLVM_UNWINDER=ON \
        -DLIBCXXABI_STATICALLY_LINK_UNWINDER_IN_STATIC_LIBRARY=OFF \
        -DLIBCXXABI_INCLUDE_TESTS=OFF \
        -DLIBCXX_ENABLE_SHARED=OFF \
        -DLIBCXX_ENABLE_STATIC=ON \
        -DLIBCXX_HAS_MUSL_LIBC=ON \
        -DLIBCXX_USE_COMPILER_RT=ON \
        -DLIBCXX_CXX_ABI=libcxxabi \
        -DLIBCXX_ENABLE_STATIC_ABI_LIBRARY=ON \
        -DLIBCXX_STATICALLY_LINK_ABI_IN_STATIC_LIBRARY=ON \
        -DLIBCXX_INCLUDE_TESTS=OFF \
        -DLIBCXX_INCLUDE_BENCHMARKS=OFF \
        -DLIBCXX_INCLUDE_DOCS=OFF \
        -DLIBCXX_INSTALL_MODULES=OFF \
        -DLIBUNWIND_HAS_DL_LIB=OFF \
        -DLIBUNWIND_HAS_PTHREAD_LIB=OFF \
        -DLIBCXXABI_HAS_DL_LIB=OFF \
        -DLIBCXXABI_HAS_PTHREAD_LIB=OFF \
        -DLIBCXXABI_HAS_CXA_THREAD_ATEXIT_IMPL=OFF \
        -DLIBCXX_HAS_PTHREAD_LIB=OFF \
        -DLIBCXX_HAS_RT_LIB=OFF \
        -DLIBCXX_HAS_ATOMIC_LIB=OFF \
        > "$work/cmake-$arch.log" \
        || { cat "$work/cmake-$arch.log" >&2; die "cmake failed for $triple"; }
    t4=$(now)
    # Ninja's and the install's ~3,500 lines per architecture go to a file, shown if it fails.
    ninja -C "$build" install-unwind install-cxxabi install-cxx > "$work/ninja-$arch.log" \
        || { tail -n 80 "$work/ninja-$arch.log" >&2; die "the build failed for $triple"; }
    t5=$(now)
    say "$triple: configure $((t4 - t3)) s, compile $((t5 - t4)) s"
done

# The check: every symbol an archive leaves undefined (strongly) is defined by musl's libc.a or
# crt objects, compiler-rt's builtins or crtbegin, or the runtimes themselves; none is glibc's
# fortify (__*_chk); no object asks the linker for another library (.deplibs). (llvm-nm's
# "no symbols" notes about empty members are dropped; its exit status still counts.)
syms() { llvm-nm-21 -P "$@" 2>/dev/null | awk 'NF >= 2 && $1 !~ /:$/ { print $1, $2 }'; }
defines() { syms --defined-only "$1" | awk -v s="$2" '$1 == s { found = 1 } END { exit !found }'; }
for arch in x86_64 aarch64; do
    triple="$arch-linux-musl"
    lib="$prefix/$triple/lib"
    musl="/usr/lib/$triple"
    for f in include/c++/v1/__config_site lib/libc++.a lib/libc++abi.a lib/libunwind.a; do
        test -f "$prefix/$triple/$f" || die "$prefix/$triple/$f was not installed"
    done
    syms --defined-only "$musl/libc.a" "$musl/crt1.o" "$musl/crti.o" \
        "$resource/lib/linux/libclang_rt.builtins-$arch.a" \
        "$resource/lib/linux/clang_rt.crtbegin-$arch.o" "$lib"/*.a \
        | cut -d' ' -f1 | sort -u > "$work/defined-$arch"
    for archive in "$lib"/*.a; do
        name=$(basename "$archive")
        syms --undefined-only "$archive" | sort -u > "$work/undefined"
        missing=$(awk '$2 == "U" { print $1 }' "$work/undefined" | comm -23 - "$work/defined-$arch")
        chk=$(cut -d' ' -f1 "$work/undefined" | grep -E '^__[A-Za-z0-9_]+_chk$' || true)
        deplibs=$(llvm-readelf-21 -S --wide "$archive" | grep -c '\.deplibs' || true)
        weak=$(awk '$2 != "U" { print $1 }' "$work/undefined" | tr '\n' ' ')
        say "$triple $name: $(wc -l < "$work/undefined") undefined symbols, weak: ${weak:-none};" \
            "unresolved by musl: ${missing:-none}; __*_chk: ${chk:-none}; .deplibs: $deplibs"
        [ -z "$missing$chk" ] && [ "$deplibs" = 0 ] || die "$triple $name is not a musl-only archive"
    done
    defines "$lib/libc++.a" __cxa_throw || die "$triple: libc++abi is not merged into libc++.a"
    for name in libc++.a libc++abi.a; do
        ! defines "$lib/$name" _Unwind_RaiseException \
            || die "$triple: libunwind is merged into $name (Rust's std links libunwind.a itself)"
    done
done
say "installed: $(du -sh "$prefix" | cut -f1) in $prefix"
rm -rf "$work"
