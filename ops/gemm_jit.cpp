// detail::jit_gemm through libxsmm's JIT kernels (the build's choice when libxsmm is found).
#include <immintrin.h>
#include <libxsmm.h>

#include <type_traits>

#include "kernels.hpp"

namespace tapegrad {
namespace detail {

namespace {

// libxsmm's AVX and AVX-512 kernels return with the upper halves of the vector registers in use
// (no vzeroupper). The SSE code after them then ran 3x slower: the SGD update of a 784 x 256
// weight took 600 us instead of 205. So the registers are cleared after each product whose
// kernels libxsmm generated for AVX or later.
__attribute__((target("avx"))) void clear_upper_registers() { _mm256_zeroupper(); }

// Row-major C (m x n) = op(A) op(B) + beta C is column-major C' (n x m) = op(B') op(A') + beta C',
// where B' and A' are the same arrays: libxsmm's kernels are column-major. C is computed in blocks
// of up to 64 rows by 64 columns, one kernel call each over the whole of k. libxsmm's AVX-512
// double kernels round some elements differently depending on how many rows a call covers (up to
// 167 ulp for blocks 33-40 columns wide), so the blocks start at row 0 and column 0 of each call:
// a panel of a larger product starting on a multiple of 64 then runs the same kernels on the same
// elements as the whole product, and gives its bits (matmul's pieces need not rely on it: one
// thread runs the same pieces as several).
template <class T>
bool jit_gemm_impl(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, const T* a, std::size_t lda,
                   const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc) {
  // libxsmm 1.17 JIT-compiles beta 0 and 1, and a transposed second factor only (here: A).
  if (tb || (beta != T(0) && beta != T(1)) || m == 0 || n == 0 || k == 0) return false;
  constexpr std::size_t block = 64;
  const std::size_t width = n < block ? n : block, right = n % width;
  const std::size_t height = m < block ? m : block, bottom = m % height;
  const int flags = ta ? LIBXSMM_GEMM_FLAG_TRANS_B : LIBXSMM_GEMM_FLAG_NONE;
  const int prefetch = LIBXSMM_GEMM_PREFETCH_NONE;
  const libxsmm_blasint ld_first = libxsmm_blasint(ldb), ld_second = libxsmm_blasint(lda),
                        ld_out = libxsmm_blasint(ldc);
  const T one = T(1);
  auto kernel = [&](std::size_t columns, std::size_t rows) {
    if constexpr (std::is_same<T, double>::value)
      return libxsmm_dmmdispatch(libxsmm_blasint(columns), libxsmm_blasint(rows), libxsmm_blasint(k), &ld_first,
                                 &ld_second, &ld_out, &one, &beta, &flags, &prefetch);
    else
      return libxsmm_smmdispatch(libxsmm_blasint(columns), libxsmm_blasint(rows), libxsmm_blasint(k), &ld_first,
                                 &ld_second, &ld_out, &one, &beta, &flags, &prefetch);
  };
  // Every kernel before any block runs: a missing one leaves C untouched.
  const auto whole = kernel(width, height);
  const auto right_edge = right ? kernel(right, height) : whole;
  const auto bottom_edge = bottom ? kernel(width, bottom) : whole;
  const auto corner = right && bottom ? kernel(right, bottom) : whole;
  if (!whole || !right_edge || !bottom_edge || !corner) return false;   // no JIT for this CPU or shape
  for (std::size_t i = 0; i < m; i += height) {
    const bool last_rows = m - i < height;
    const T* a_rows = a + (ta ? i : i * lda);
    T* c_rows = c + i * ldc;
    std::size_t j = 0;
    for (; j + width <= n; j += width) (last_rows ? bottom_edge : whole)(b + j, a_rows, c_rows + j);
    if (right) (last_rows ? corner : right_edge)(b + j, a_rows, c_rows + j);
  }
  if (libxsmm_get_target_archid() >= LIBXSMM_X86_AVX) clear_upper_registers();
  return true;
}

}  // namespace

bool jit_gemm(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, const float* a, std::size_t lda,
              const float* b, std::size_t ldb, float beta, float* c, std::size_t ldc) {
  return jit_gemm_impl(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc);
}

bool jit_gemm(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, const double* a, std::size_t lda,
              const double* b, std::size_t ldb, double beta, double* c, std::size_t ldc) {
  return jit_gemm_impl(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace detail
}  // namespace tapegrad
