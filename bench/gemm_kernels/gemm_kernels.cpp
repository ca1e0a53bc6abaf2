// The matrix products of the benchmarks' models, one at a time, hot in cache: OpenBLAS (whatever
// kernels OPENBLAS_CORETYPE or the CPU give it) against libxsmm's JIT kernels, on one thread,
// the two alternating call by call; and which one detail::prefers_jit_gemm picks. What the rule
// in ops/kernels.cpp was chosen from (bench/RESULTS.md, "GEMM kernels").
//   gemm_kernels [--reps R]
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include <tapegrad/ops/kernels.hpp>

namespace {

namespace detail = tapegrad::detail;
using Clock = std::chrono::steady_clock;

struct Product {
  const char* name;
  bool ta, tb;
  std::size_t m, n, k;
};

// Row-major m x n x k, op(A) op(B); the names say where each comes from.
const Product products[] = {
    {"LeNet conv1 forward, per image", false, false, 6, 784, 25},
    {"LeNet conv1 weight grad, per image (cols^T)", false, false, 6, 25, 784},
    {"LeNet conv1 weight grad, per image (B^T)", false, true, 6, 25, 784},
    {"LeNet conv2 forward, per image", false, false, 16, 100, 150},
    {"LeNet conv2 input grad, per image (A^T)", true, false, 150, 100, 16},
    {"LeNet conv2 weight grad, per image (cols^T)", false, false, 16, 150, 100},
    {"LeNet conv2 weight grad, per image (B^T)", false, true, 16, 150, 100},
    {"LeNet fc1 forward", false, false, 64, 120, 400},
    {"LeNet fc1 input grad (B^T)", false, true, 64, 400, 120},
    {"LeNet fc1 weight grad (A^T)", true, false, 400, 120, 64},
    {"LeNet fc2 forward", false, false, 64, 84, 120},
    {"LeNet fc2 input grad (B^T)", false, true, 64, 120, 84},
    {"LeNet fc2 weight grad (A^T)", true, false, 120, 84, 64},
    {"LeNet fc3 forward", false, false, 64, 10, 84},
    {"LeNet fc3 weight grad (A^T)", true, false, 84, 10, 64},
    {"MLP forward", false, false, 64, 256, 784},
    {"MLP weight grad (A^T)", true, false, 784, 256, 64},
    {"MLP output layer", false, false, 64, 10, 256},
    {"gmm, 1000 x 64 x 64", false, false, 1000, 64, 64},
    {"gmm's mean, per component, 1 x 64 x 64", false, false, 1, 64, 64},
    {"its gradient (A^T), 64 x 64 x 1", true, false, 64, 64, 1},
    {"a row times a small matrix, 1 x 16 x 16", false, false, 1, 16, 16},
    {"small square 16", false, false, 16, 16, 16},
    {"gmm, 1000 x 32 x 32", false, false, 1000, 32, 32},
    {"square 256", false, false, 256, 256, 256},
    {"square 1024", false, false, 1024, 1024, 1024},
};

double median_us(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

template <class T>
void measure(const Product& p, int reps) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<double> u(-1, 1);
  std::vector<T> a(p.m * p.k), b(p.k * p.n), c(p.m * p.n);
  for (auto& v : a) v = T(u(rng));
  for (auto& v : b) v = T(u(rng));
  const std::size_t lda = p.ta ? p.m : p.k, ldb = p.tb ? p.k : p.n;
  auto blas = [&] { detail::gemm(false, p.ta, p.tb, p.m, p.n, p.k, a.data(), lda, b.data(), ldb, T(0), c.data(), p.n); };
  auto jit = [&] { return detail::jit_gemm(p.ta, p.tb, p.m, p.n, p.k, a.data(), lda, b.data(), ldb, T(0), c.data(), p.n); };
  const bool has_kernel = jit();
  // Fewer repetitions for the large products: about the same time for each row.
  const double work = double(p.m) * double(p.n) * double(p.k);
  const int n = std::max(5, int(std::min(double(reps), reps * 2e6 / work)));
  std::vector<double> tb, tj;
  for (int i = 0; i < n + 3; ++i) {
    auto start = Clock::now();
    blas();
    const double blas_us = std::chrono::duration<double, std::micro>(Clock::now() - start).count();
    double jit_us = 0;
    if (has_kernel) {
      start = Clock::now();
      jit();
      jit_us = std::chrono::duration<double, std::micro>(Clock::now() - start).count();
    }
    if (i < 3) continue;   // warm-up
    tb.push_back(blas_us);
    tj.push_back(jit_us);
  }
  const double mb = median_us(tb), mj = median_us(tj);
  const bool rule = detail::prefers_jit_gemm(p.tb, p.m, p.n, p.k, sizeof(T));
  char jit_text[64] = "no kernel";
  if (has_kernel) std::snprintf(jit_text, sizeof jit_text, "%10.2f  %5.2f", mj, mj / mb);
  std::printf("%-46s %-8s %4zu x %4zu x %4zu %10.2f %17s  %s\n", p.name, sizeof(T) == 4 ? "float32" : "float64", p.m,
              p.n, p.k, mb, jit_text, rule ? "libxsmm" : "OpenBLAS");
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 2000;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--reps" && i + 1 < argc) reps = std::max(5, std::atoi(argv[++i]));
    else {
      std::fprintf(stderr, "usage: gemm_kernels [--reps R]\n");
      return 2;
    }
  }
  openblas_set_num_threads(1);
  const char* core = std::getenv("OPENBLAS_CORETYPE");
  std::printf("OpenBLAS core: %s (OPENBLAS_CORETYPE=%s); one thread; medians in us, hot cache\n",
              openblas_get_corename(), core ? core : "unset");
  std::printf("%-46s %-8s %18s %10s %10s %6s  %s\n", "product", "dtype", "m x n x k", "OpenBLAS", "libxsmm", "ratio",
              "rule");
  for (const Product& p : products) {
    measure<float>(p, reps);
    measure<double>(p, reps);
  }
}
