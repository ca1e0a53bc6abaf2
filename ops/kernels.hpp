// Internal helpers shared by the ops' .cpp files: shape arithmetic and strided loops.
// Not part of the public API (namespace detail); never included by tapegrad.hpp.
#ifndef TAPEGRAD_OPS_KERNELS_HPP
#define TAPEGRAD_OPS_KERNELS_HPP

#include <algorithm>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include <xtensor/xarray.hpp>

#include "../core/errors.hpp"
#include "../core/tape.hpp"

namespace tapegrad {
namespace detail {

using Strides = std::vector<std::ptrdiff_t>;

std::size_t element_count(const Shape& shape);
// The element count of a shape an op is about to create: a ShapeError naming `op` when a dimension
// or the count (zero dimensions aside) exceeds 2^48, before any size arithmetic can wrap.
std::size_t checked_count(const std::string& op, const Shape& shape);
constexpr std::size_t max_elements = std::size_t(1) << 48;
Strides row_major_strides(const Shape& shape);
// NumPy broadcasting of two shapes; a ShapeError naming `op` if they do not broadcast.
Shape broadcast_shapes(const std::string& op, const Shape& a, const Shape& b);
// True when `from` broadcasts to exactly `to` (NumPy broadcast_to).
bool broadcasts_to(const Shape& from, const Shape& to);
// An axis in [-rank, rank) to [0, rank); a ValueError naming `op` otherwise.
std::size_t normalize_axis(const std::string& op, std::ptrdiff_t axis, std::size_t rank);
// Strides of `from` read as if broadcast to `to` (0 along broadcast dimensions).
Strides broadcast_strides(const Shape& from, const Shape& to);

// C = op(A) op(B) + beta C, row-major (dimensions checked to fit an int by the caller). Zero
// dimensions are allowed: k = 0 leaves beta C. Through libxsmm's JIT kernels when `jit` (and there
// is a kernel for the product), else through BLAS. Callers decide `jit` with prefers_jit_gemm
// once per op, on the thread that runs it, so that every piece of the op takes the same path.
void gemm(bool jit, bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, const float* a,
          std::size_t lda, const float* b, std::size_t ldb, float beta, float* c, std::size_t ldc);
void gemm(bool jit, bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, const double* a,
          std::size_t lda, const double* b, std::size_t ldb, double beta, double* c, std::size_t ldc);
// C[i] = op(A[i]) op(B[i]) (beta 0) for every entry i of the batch out_shape[:-2], A's and B's
// batch dimensions broadcast to it; out_shape ends in (m, n), k is the shared dimension. One GEMM
// per entry, the entries split over the tg::Parallel threads; a single large product in pieces
// fixed by its shape (kernels.cpp), so that every thread count gives the same bits.
template <class T>
void batched_gemm(bool ta, bool tb, const Shape& batch_a, const Shape& batch_b, const Shape& out_shape,
                  std::size_t k, const T* a, const T* b, T* c);
// Whether libxsmm's kernels were measured faster than BLAS for a product of this shape; false in
// a build without them, and for a product OpenBLAS would split over its threads while it has
// several (a kernel runs on one), except under a tg::Parallel guard of this thread, where the
// choice depends on the shape alone.
bool prefers_jit_gemm(bool tb, std::size_t m, std::size_t n, std::size_t k, std::size_t element_size);
// Whether this build has libxsmm's kernels (ops/gemm_jit.cpp) or not (ops/gemm_jit_none.cpp).
bool jit_gemm_built();
// The same product through libxsmm's JIT kernels; false, C untouched, where there is no kernel
// (a transposed B, beta other than 0 or 1, a CPU libxsmm cannot compile for, a build without it).
bool jit_gemm(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, const float* a, std::size_t lda,
              const float* b, std::size_t ldb, float beta, float* c, std::size_t ldc);
bool jit_gemm(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, const double* a, std::size_t lda,
              const double* b, std::size_t ldb, double beta, double* c, std::size_t ldc);

// Calls f(src_offset, dst_offset) for every multi-index of `shape`, in row-major order.
template <class F>
void strided_loop(const Shape& shape, const Strides& src_strides, std::ptrdiff_t src_offset,
                  const Strides& dst_strides, std::ptrdiff_t dst_offset, F&& f) {
  const std::size_t rank = shape.size();
  if (element_count(shape) == 0) return;
  if (rank == 0) {
    f(src_offset, dst_offset);
    return;
  }
  std::vector<std::size_t> index(rank, 0);
  const std::size_t inner = shape[rank - 1];
  const std::ptrdiff_t s_in = src_strides[rank - 1], d_in = dst_strides[rank - 1];
  while (true) {
    std::ptrdiff_t s = src_offset, d = dst_offset;
    for (std::size_t k = 0; k + 1 < rank; ++k) {
      s += static_cast<std::ptrdiff_t>(index[k]) * src_strides[k];
      d += static_cast<std::ptrdiff_t>(index[k]) * dst_strides[k];
    }
    for (std::size_t i = 0; i < inner; ++i) f(s + s_in * std::ptrdiff_t(i), d + d_in * std::ptrdiff_t(i));
    std::size_t k = rank - 1;
    while (k-- > 0) {
      if (++index[k] < shape[k]) break;
      index[k] = 0;
    }
    if (k == std::size_t(-1)) return;
  }
}

// dst[dst_offset + index·dst_strides] = src[src_offset + index·src_strides] over `shape`.
template <class T>
void copy_strided(const Shape& shape, const T* src, const Strides& src_strides,
                  std::ptrdiff_t src_offset, T* dst, const Strides& dst_strides,
                  std::ptrdiff_t dst_offset) {
  const std::size_t rank = shape.size();
  if (rank > 0 && src_strides[rank - 1] == 1 && dst_strides[rank - 1] == 1) {
    // Rows contiguous on both sides (slices of whole rows, concat, pad): a block copy per row.
    const std::size_t inner = shape[rank - 1];
    Shape rows(shape.begin(), shape.end() - 1);
    strided_loop(rows, Strides(src_strides.begin(), src_strides.end() - 1), src_offset,
                 Strides(dst_strides.begin(), dst_strides.end() - 1), dst_offset,
                 [&](std::ptrdiff_t s, std::ptrdiff_t d) { std::copy_n(src + s, inner, dst + d); });
    return;
  }
  strided_loop(shape, src_strides, src_offset, dst_strides, dst_offset,
               [&](std::ptrdiff_t s, std::ptrdiff_t d) { dst[d] = src[s]; });
}

// A shape with the batch axis of a batch of tangents (JvpArgs::batch) in front, or as it is
// (batch 0: no batch).
inline Shape with_batch(Shape shape, std::size_t batch) {
  if (batch > 0) shape.insert(shape.begin(), batch);
  return shape;
}

// Batches of tangents (JvpArgs::batch; defined in shape.cpp). lift_batch: (batch, shape...) with
// axes of 1 inserted after the batch axis up to `rank` axes after it, ready to broadcast against
// arrays of up to `rank` axes. merge_batch: the batch merged into the next axis,
// (batch * shape[0], shape[1:]...), for ops that treat their first axis as images; split_batch
// its inverse.
template <class T>
Tensor<T> lift_batch(const Tensor<T>& t, std::size_t rank);
template <class T>
Tensor<T> merge_batch(const Tensor<T>& t);
template <class T>
Tensor<T> split_batch(const Tensor<T>& t, std::size_t batch);

// Gathers by flat position, and its adjoint (defined in index.cpp): gather_flat records `names.gather`,
// y.flat[i] = x.flat[positions[i]], y of `shape`; scatter_add_flat records `names.scatter`, zeros
// of `input_shape` with grad.flat[i] added at positions[i]. Each is the other's VJP and, being
// linear, its own JVP. With batch > 0, x (grad) has a leading axis of that many seeds, each
// gathered (scattered) alike. Ops that pick elements by index (index_select, take_along_axis,
// gather, max_pool2d) compute the positions, then record through these.
struct FlatIndexNames {
  const char* gather;
  const char* scatter;
};
using Positions = std::shared_ptr<const std::vector<std::size_t>>;
template <class T>
Tensor<T> gather_flat(FlatIndexNames names, const Tensor<T>& x, Positions positions, const Shape& shape,
                      std::size_t batch = 0);
template <class T>
Tensor<T> scatter_add_flat(FlatIndexNames names, const Tensor<T>& grad, Positions positions, const Shape& input_shape,
                           std::size_t batch = 0);

// The sum of a row in double, in eight running sums: independent additions the compiler can keep
// in one vector register (sum, logsumexp).
template <class T>
double row_sum(const T* row, std::size_t n) {
  double lanes[8] = {};
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (std::size_t j = 0; j < 8; ++j) lanes[j] += double(row[i + j]);
  for (; i < n; ++i) lanes[0] += double(row[i]);
  return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
}

// An array of `shape` with uninitialised elements.
template <class T>
xt::xarray<T> empty_array(const Shape& shape) {
  return xt::xarray<T>::from_shape(shape);
}

}  // namespace detail
}  // namespace tapegrad

#endif
