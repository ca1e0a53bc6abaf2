#!/bin/sh
# Builds tapegrad-gradbench from a tapegrad source tree into PREFIX/bin (the Dockerfile's build
# step, runnable by hand):  build.sh SOURCE_DIR PREFIX [extra cmake arguments]
# Only the tool and the library it links are built (no tests, examples or benchmarks); libxsmm is
# used where CMake finds it on x86-64, and left out elsewhere.
set -eu
source_dir=$1
prefix=$2
shift 2
build_dir=$(mktemp -d)
cmake -S "$source_dir" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DTAPEGRAD_BUILD_TESTS=OFF \
  -DTAPEGRAD_BUILD_EXAMPLES=OFF -DTAPEGRAD_BUILD_DISTRIBUTED=OFF -DTAPEGRAD_INSTALL=OFF -DTAPEGRAD_BUILD_GRADBENCH=ON "$@"
cmake --build "$build_dir" -j "$(nproc)" --target tapegrad-gradbench
mkdir -p "$prefix/bin"
cp "$build_dir/bench/gradbench/tapegrad-gradbench" "$prefix/bin/"
rm -rf "$build_dir"
