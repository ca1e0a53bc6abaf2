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
// of up to 64 rows by 64 columns, and k in slices of 256, one kernel call per block and slice, the
// slices outermost: the kernels do no cache blocking of their own, and the slices keep the panels
// they read in the L2 cache (the MLP's 64 x 256 x 784 float64 product took 0.6 of the time it took
// over the whole of k at once, on an Ice Lake host). libxsmm's AVX-512 double kernels round some
// elements differently depending on how many rows a call covers (up to 167 ulp for blocks 33-40
// columns wide), so the blocks start at row 0 and column 0 of each call: a panel of a larger
// product starting on a multiple of 64 then runs the same kernels on the same elements as the
// whole product, and gives its bits (matmul's pieces need not rely on it: one thread runs the
// same pieces as several).
template <class T>
bool jit_gemm_impl(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, const T* a, std::size_t lda,
                   const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc) {
  // libxsmm 1.17 JIT-compiles beta 0 and 1, and a transposed second factor only (here: A).
  if (tb || (beta != T(0) && beta != T(1)) || m == 0 || n == 0 || k == 0) return false;
  constexpr std::size_t block = 64, slice = 256;
  const std::size_t width = n < block ? n : block, right = n % width;
  const std::size_t height = m < block ? m : block, bottom = m % height;
  const int flags = ta ? LIBXSMM_GEMM_FLAG_TRANS_B : LIBXSMM_GEMM_FLAG_NONE;
  const int prefetch = LIBXSMM_GEMM_PREFETCH_NONE;
  const libxsmm_blasint ld_first = libxsmm_blasint(ldb), ld_second = libxsmm_blasint(lda),
                        ld_out = libxsmm_blasint(ldc);
  const T one = T(1);
  using Function = std::conditional_t<std::is_same<T, double>::value, libxsmm_dmmfunction, libxsmm_smmfunction>;
  // The four kernels of a slice of the given depth (whole blocks, right edge, bottom edge, corner).
  struct Slice {
    Function whole, right_edge, bottom_edge, corner;
    bool ok() const { return whole && right_edge && bottom_edge && corner; }
  };
  auto kernel = [&](std::size_t columns, std::size_t rows, std::size_t depth, const T* slice_beta) {
    if constexpr (std::is_same<T, double>::value)
      return libxsmm_dmmdispatch(libxsmm_blasint(columns), libxsmm_blasint(rows), libxsmm_blasint(depth), &ld_first,
                                 &ld_second, &ld_out, &one, slice_beta, &flags, &prefetch);
    else
      return libxsmm_smmdispatch(libxsmm_blasint(columns), libxsmm_blasint(rows), libxsmm_blasint(depth), &ld_first,
                                 &ld_second, &ld_out, &one, slice_beta, &flags, &prefetch);
  };
  auto kernels = [&](std::size_t depth, const T* slice_beta) {
    Slice s;
    s.whole = kernel(width, height, depth, slice_beta);
    s.right_edge = right ? kernel(right, height, depth, slice_beta) : s.whole;
    s.bottom_edge = bottom ? kernel(width, bottom, depth, slice_beta) : s.whole;
    s.corner = right && bottom ? kernel(right, bottom, depth, slice_beta) : s.whole;
    return s;
  };
  // Every kernel before any block runs: a missing one leaves C untouched. The first slice takes
  // beta, the others add to it; the last may be shorter.
  const std::size_t slices = (k + slice - 1) / slice, last_depth = k - (slices - 1) * slice;
  const Slice first = kernels(std::min(k, slice), &beta);
  const Slice middle = slices > 2 ? kernels(slice, &one) : first;
  const Slice last = slices > 1 ? kernels(last_depth, &one) : first;
  if (!first.ok() || !middle.ok() || !last.ok()) return false;   // no JIT for this CPU or shape
  for (std::size_t s = 0; s < slices; ++s) {
    const Slice& run = s == 0 ? first : (s + 1 == slices ? last : middle);
    const std::size_t p = s * slice;
    const T* b_slice = b + p * ldb;
    for (std::size_t i = 0; i < m; i += height) {
      const bool last_rows = m - i < height;
      const T* a_block = a + (ta ? p * lda + i : i * lda + p);
      T* c_rows = c + i * ldc;
      std::size_t j = 0;
      for (; j + width <= n; j += width) (last_rows ? run.bottom_edge : run.whole)(b_slice + j, a_block, c_rows + j);
      if (right) (last_rows ? run.corner : run.right_edge)(b_slice + j, a_block, c_rows + j);
    }
  }
  if (libxsmm_get_target_archid() >= LIBXSMM_X86_AVX) clear_upper_registers();
  return true;
}

}  // namespace

bool jit_gemm_built() { return true; }

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
