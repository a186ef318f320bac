#!/bin/sh
# Compiles the validation fixtures into $1 (run inside the test image).
set -eu
out="$1"
src="$(dirname "$0")"
musl() { musl-gcc -static -O2 -s "$@"; }
arm_musl() { aarch64-linux-musl-gcc -static -O2 -s "$@"; }
musl "$src/hello.c" -o "$out/musl-amd64"
musl-gcc -static-pie -fPIE -O2 -s "$src/hello.c" -o "$out/musl-amd64-pie"
arm_musl "$src/hello.c" -o "$out/musl-arm64"
musl-gcc -static -O2 -g "$src/hello.c" -o "$out/unstripped"
gcc -static -O2 -s "$src/hello.c" -o "$out/glibc-amd64"
aarch64-linux-gnu-gcc -static -O2 -s "$src/hello.c" -o "$out/glibc-arm64"
gcc -O2 -s "$src/hello.c" -o "$out/dynamic"
musl "$src/exit1.c" -o "$out/exit1"
arm_musl "$src/exit1.c" -o "$out/exit1-arm64"
musl "$src/hang.c" -o "$out/hang"
for level in 2 3 4; do
  musl -O3 -march="x86-64-v$level" "$src/vector.c" -o "$out/vector-v$level"
done
head -c 20000 "$out/musl-amd64" > "$out/truncated"
arm_musl "$src/pagesize4k.c" -o "$out/pagesize4k-arm64"
musl "$src/pagesize4k.c" -o "$out/pagesize4k-amd64"
arm_musl "$src/pagesize_any.c" -o "$out/pagesize-any-arm64"
