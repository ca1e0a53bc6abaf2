# Sourced by the bench/*/run scripts: installs what the benchmarks need and builds TARGETS (Release)
# into $ROOT/build-bench; BUILD names that directory. Build output goes to standard error, so that
# what a benchmark prints on standard output (a table, or one JSON document with --json) is all
# that is there.
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/setup.sh"
ensure_packages libtorch-dev "${BENCH_PACKAGES[@]}"
BUILD="$ROOT/build-bench"
cmake -S "$ROOT/bench" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j "$JOBS" --target "${TARGETS[@]}" >&2
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
