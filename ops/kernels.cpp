#include "kernels.hpp"

#include <cblas.h>

#include <algorithm>

#include "../core/parallel.hpp"

namespace tapegrad {
namespace detail {

std::size_t element_count(const Shape& shape) {
  std::size_t n = 1;
  for (std::size_t d : shape) n *= d;
  return n;
}

std::size_t checked_count(const std::string& op, const Shape& shape) {
  std::size_t nonzero = 1;
  bool empty = false;
  for (std::size_t d : shape) {
    if (d == 0) {
      empty = true;
      continue;
    }
    if (d > max_elements || nonzero > max_elements / d)
      throw_shape_error(op, "shape " + shape_str(shape) + " is too large (more than 2^48 elements)");
    nonzero *= d;
  }
  return empty ? 0 : nonzero;
}

Strides row_major_strides(const Shape& shape) {
  Strides strides(shape.size());
  std::ptrdiff_t s = 1;
  for (std::size_t k = shape.size(); k-- > 0;) {
    strides[k] = s;
    s *= static_cast<std::ptrdiff_t>(shape[k]);
  }
  return strides;
}

Shape broadcast_shapes(const std::string& op, const Shape& a, const Shape& b) {
  const std::size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (std::size_t k = 0; k < rank; ++k) {
    // Aligned from the right, as NumPy does.
    const std::size_t da = k < rank - a.size() ? 1 : a[k - (rank - a.size())];
    const std::size_t db = k < rank - b.size() ? 1 : b[k - (rank - b.size())];
    if (da != db && da != 1 && db != 1)
      throw_shape_error(op, "shapes " + shape_str(a) + " and " + shape_str(b) +
                                " do not broadcast (dimension " + std::to_string(k) + " of the " +
                                "result: " + std::to_string(da) + " vs " + std::to_string(db) + ")");
    out[k] = da == 1 ? db : da;
  }
  return out;
}

bool broadcasts_to(const Shape& from, const Shape& to) {
  if (from.size() > to.size()) return false;
  const std::size_t lead = to.size() - from.size();
  for (std::size_t k = 0; k < from.size(); ++k)
    if (from[k] != 1 && from[k] != to[lead + k]) return false;
  return true;
}

std::size_t normalize_axis(const std::string& op, std::ptrdiff_t axis, std::size_t rank) {
  const auto r = static_cast<std::ptrdiff_t>(rank);
  if (axis < -r || axis >= r)
    throw_value_error(op, "axis " + std::to_string(axis) + " is out of range for a tensor of rank " +
                              std::to_string(rank) + " (valid: " + std::to_string(-r) + " to " +
                              std::to_string(r - 1) + ")");
  return static_cast<std::size_t>(axis < 0 ? axis + r : axis);
}

Strides broadcast_strides(const Shape& from, const Shape& to) {
  const Strides own = row_major_strides(from);
  Strides strides(to.size(), 0);
  const std::size_t lead = to.size() - from.size();
  for (std::size_t k = 0; k < from.size(); ++k)
    strides[lead + k] = from[k] == 1 ? 0 : own[k];
  return strides;
}

// OpenBLAS packs both factors into cache-sized panels before multiplying; libxsmm's kernels read
// them in place, and libxsmm generates them for the CPU it runs on, whereas OpenBLAS runs the
// kernels OPENBLAS_CORETYPE names where it is set (some hosts pin its AVX2 ones on AVX-512 CPUs).
// Measured one product at a time (bench/gemm_kernels; bench/RESULTS.md, "GEMM kernels"), the JIT
// kernels ran every product of the benchmarks' models (the convolutions' per-image products, the
// Linear layers' of 16 columns or more) at 0.2-0.6 of OpenBLAS's time on its AVX2 kernels, and at
// 0.5-1.0 on its AVX-512 ones. They do no cache blocking of their own, so they take only products
// whose first factor, and a 64-column block of the second, fit in half of a 1 MB L2 cache; under
// 16 columns OpenBLAS won on one host. A kernel runs on one thread: with OpenBLAS on several (as
// tg::set_num_threads asks), OpenBLAS keeps the products it would split, those of more than 2^18
// multiply-adds (OpenBLAS 0.3's GEMM runs smaller ones on one thread), except under tg::Parallel,
// whose choices depend on the shape alone (OpenBLAS's thread count is process-wide).
bool prefers_jit_gemm(bool tb, std::size_t m, std::size_t n, std::size_t k, std::size_t element_size) {
  constexpr std::size_t half_l2 = std::size_t(512) << 10, one_blas_thread = std::size_t(1) << 18;
  return jit_gemm_built() && !tb && n >= 16 && m * k * element_size <= half_l2 && 64 * k * element_size <= half_l2 &&
         (m * n * k <= one_blas_thread || parallel_guarded() || openblas_get_num_threads() == 1);
}

namespace {

template <class T, class Blas>
void gemm_or_scale(Blas blas, bool jit, bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, const T* a,
                   std::size_t lda, const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {   // BLAS may skip the scaling when there is nothing to multiply
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t j = 0; j < n; ++j) c[i * ldc + j] = beta == T(0) ? T(0) : beta * c[i * ldc + j];
    return;
  }
  if (jit && jit_gemm(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc)) return;
  blas(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, int(m), int(n), int(k), T(1), a,
       int(lda), b, int(ldb), beta, c, int(ldc));
}

}  // namespace

void gemm(bool jit, bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, const float* a, std::size_t lda,
          const float* b, std::size_t ldb, float beta, float* c, std::size_t ldc) {
  gemm_or_scale(cblas_sgemm, jit, ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc);
}

void gemm(bool jit, bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, const double* a, std::size_t lda,
          const double* b, std::size_t ldb, double beta, double* c, std::size_t ldc) {
  gemm_or_scale(cblas_dgemm, jit, ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc);
}

namespace {

// A single product of at least split_work multiply-adds is computed in pieces along the longer
// of its rows and columns, one GEMM call per piece. The pieces depend on the shape alone: one
// thread computes them in sequence, tg::Parallel's threads side by side, so every thread count
// gives the same bits whatever kernels OpenBLAS or libxsmm choose (some of OpenBLAS's kernels
// round a row panel differently from the whole product). On libxsmm's kernels a piece is 64 rows
// or columns, the size of their blocks, and costs nothing; OpenBLAS packs the other factor again
// for each piece, so its pieces are 256 wide, or a quarter of the extent beyond 1024 (measured at
// one thread: 2-10 % above one call, against 10-45 % for pieces of 64; bench/RESULTS.md).
constexpr std::size_t jit_piece = 64, blas_piece = 256, split_work = std::size_t(1) << 21;

std::size_t piece_width(bool jit, std::size_t extent) {
  if (jit) return jit_piece;
  const std::size_t quarter = (extent / 4 + jit_piece - 1) / jit_piece * jit_piece;
  return std::max(blas_piece, quarter);
}

}  // namespace

template <class T>
void batched_gemm(bool ta, bool tb, const Shape& batch_a, const Shape& batch_b, const Shape& out_shape,
                  std::size_t k, const T* a, const T* b, T* c) {
  const std::size_t rank = out_shape.size(), m = out_shape[rank - 2], n = out_shape[rank - 1];
  if (m == 0 || n == 0 || k == 0) return;
  const Shape batch(out_shape.begin(), out_shape.end() - 2);
  const std::size_t lda = ta ? m : k, ldb = tb ? k : n;
  const bool by_rows = m >= n, jit = prefers_jit_gemm(tb, m, n, k, sizeof(T));
  const std::size_t extent = by_rows ? m : n, piece = piece_width(jit, extent);
  if (element_count(batch) == 1 && extent >= 2 * piece && m * n * k >= split_work) {
    parallel_for((extent + piece - 1) / piece, [&](std::size_t first, std::size_t last) {
      for (std::size_t i = first * piece; i < std::min(extent, last * piece); i += piece) {
        const std::size_t width = std::min(piece, extent - i);
        if (by_rows)
          gemm(jit, ta, tb, width, n, k, a + (ta ? i : i * lda), lda, b, ldb, T(0), c + i * n, n);
        else
          gemm(jit, ta, tb, m, width, k, a, lda, b + (tb ? i * ldb : i), ldb, T(0), c + i, n);
      }
    });
    return;
  }
  // One GEMM per batch entry, at offsets with stride 0 along broadcast batch dimensions; the
  // entries split over the tg::Parallel threads if any.
  const auto mat_a = static_cast<std::ptrdiff_t>(m * k), mat_b = static_cast<std::ptrdiff_t>(k * n);
  std::vector<std::ptrdiff_t> off_a, off_b;
  strided_loop(batch, broadcast_strides(batch_a, batch), 0, broadcast_strides(batch_b, batch), 0,
               [&](std::ptrdiff_t ia, std::ptrdiff_t ib) {
                 off_a.push_back(ia * mat_a);
                 off_b.push_back(ib * mat_b);
               });
  parallel_for(off_a.size(), [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i)
      gemm(jit, ta, tb, m, n, k, a + off_a[i], lda, b + off_b[i], ldb, T(0), c + i * m * n, n);
  });
}

template void batched_gemm(bool, bool, const Shape&, const Shape&, const Shape&, std::size_t, const float*,
                           const float*, float*);
template void batched_gemm(bool, bool, const Shape&, const Shape&, const Shape&, std::size_t, const double*,
                           const double*, double*);

}  // namespace detail
}  // namespace tapegrad
