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
// where B' and A' are the same arrays: libxsmm's kernels are column-major. C' is computed in
// blocks of up to 64 of its rows (64 columns of C), each block one kernel call over the whole of
// m and k; a kernel computes each element as one running sum in k order, so a block's elements
// come out the same whatever the block's width (what tg::Parallel's panels rely on).
template <class T>
bool jit_gemm_impl(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, const T* a, std::size_t lda,
                   const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc) {
  // libxsmm 1.17 JIT-compiles beta 0 and 1, and a transposed second factor only (here: A).
  if (tb || (beta != T(0) && beta != T(1)) || m == 0 || n == 0 || k == 0) return false;
  constexpr std::size_t block = 64;
  const std::size_t width = n < block ? n : block, tail = n % width;
  const int flags = ta ? LIBXSMM_GEMM_FLAG_TRANS_B : LIBXSMM_GEMM_FLAG_NONE;
  const int prefetch = LIBXSMM_GEMM_PREFETCH_NONE;
  const libxsmm_blasint ld_first = libxsmm_blasint(ldb), ld_second = libxsmm_blasint(lda),
                        ld_out = libxsmm_blasint(ldc);
  const T one = T(1);
  auto kernel = [&](std::size_t rows) {
    if constexpr (std::is_same<T, double>::value)
      return libxsmm_dmmdispatch(libxsmm_blasint(rows), libxsmm_blasint(m), libxsmm_blasint(k), &ld_first,
                                 &ld_second, &ld_out, &one, &beta, &flags, &prefetch);
    else
      return libxsmm_smmdispatch(libxsmm_blasint(rows), libxsmm_blasint(m), libxsmm_blasint(k), &ld_first,
                                 &ld_second, &ld_out, &one, &beta, &flags, &prefetch);
  };
  const auto whole = kernel(width);
  const auto last = tail ? kernel(tail) : whole;
  if (!whole || !last) return false;   // no JIT for this CPU or shape
  std::size_t j = 0;
  for (; j + width <= n; j += width) whole(b + j, a, c + j);
  if (tail) last(b + j, a, c + j);
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
