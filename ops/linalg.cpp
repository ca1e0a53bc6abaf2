#include "linalg.hpp"

#include <limits>

#include "kernels.hpp"
#include "../core/parallel.hpp"
#include "reduce.hpp"
#include "shape.hpp"

namespace tapegrad {

namespace {

template <class T>
using Grads = Gradients<T>;

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

std::string dims(const char* name, std::size_t axis) {
  return std::string(name) + ".shape[" + std::to_string(axis) + "]";
}

}  // namespace

// C = op(A) op(B), batched;
//   dA = sum_to(ta ? op(B) grad^T : grad op(B)^T, A.shape),  dB = sum_to(tb ? grad^T op(A) : op(A)^T grad, B.shape)
template <class T>
Tensor<T> matmul(const Tensor<T>& a, const Tensor<T>& b, bool ta, bool tb) {
  check_defined<T>("matmul", {&a, &b});
  const Shape sa = a.shape(), sb = b.shape();
  if (sa.size() < 2 || sb.size() < 2)
    throw_shape_error("matmul", "lhs shape " + shape_str(sa) + " and rhs shape " + shape_str(sb) +
                                    ": transposed operands must be at least 2-D");
  const std::size_t ra = sa.size(), rb = sb.size();
  const std::size_t m = ta ? sa[ra - 1] : sa[ra - 2], k = ta ? sa[ra - 2] : sa[ra - 1];
  const std::size_t kb = tb ? sb[rb - 1] : sb[rb - 2], n = tb ? sb[rb - 2] : sb[rb - 1];
  if (k != kb) {
    const std::size_t ak = ta ? ra - 2 : ra - 1, bk = tb ? rb - 1 : rb - 2;
    throw_shape_error("matmul", "lhs shape " + shape_str(sa) + " and rhs shape " + shape_str(sb) +
                                    " are incompatible (" + dims("lhs", ak) + "=" + std::to_string(k) +
                                    " != " + dims("rhs", bk) + "=" + std::to_string(kb) + ")");
  }
  const Shape batch_a(sa.begin(), sa.end() - 2), batch_b(sb.begin(), sb.end() - 2);
  Shape batch;
  try {
    batch = detail::broadcast_shapes("matmul", batch_a, batch_b);
  } catch (const ShapeError&) {
    throw_shape_error("matmul", "lhs shape " + shape_str(sa) + " and rhs shape " + shape_str(sb) +
                                    " have batch dimensions " + shape_str(batch_a) + " and " +
                                    shape_str(batch_b) + " that do not broadcast");
  }
  // cblas takes int dimensions.
  for (std::size_t d : {m, n, k})
    if (d > std::size_t(std::numeric_limits<int>::max()))
      throw_shape_error("matmul", "lhs shape " + shape_str(sa) + " and rhs shape " + shape_str(sb) +
                                      ": a matrix dimension exceeds 2^31 - 1, the BLAS limit");
  Shape shape = batch;
  shape.push_back(m);
  shape.push_back(n);
  detail::checked_count("matmul", shape);
  // GEMM with beta = 0 writes every element; only k = 0 leaves zeros to fill.
  xt::xarray<T> out = k == 0 ? xt::xarray<T>(xt::zeros<T>(shape)) : detail::empty_array<T>(shape);
  if (m > 0 && n > 0 && k > 0) {
    // Offsets of each batch's matrices, with stride 0 along broadcast batch dimensions.
    const detail::Strides stride_a = detail::broadcast_strides(batch_a, batch);
    const detail::Strides stride_b = detail::broadcast_strides(batch_b, batch);
    const auto mat_a = static_cast<std::ptrdiff_t>(m * k), mat_b = static_cast<std::ptrdiff_t>(k * n);
    std::vector<std::ptrdiff_t> off_a, off_b;
    detail::strided_loop(batch, stride_a, 0, stride_b, 0, [&](std::ptrdiff_t ia, std::ptrdiff_t ib) {
      off_a.push_back(ia * mat_a);
      off_b.push_back(ib * mat_b);
    });
    const std::size_t lda = ta ? m : k, ldb = tb ? k : n;
    const T* pa = a.value().data();
    const T* pb = b.value().data();
    T* po = out.data();
    const bool by_rows = m >= n, jit = detail::prefers_jit_gemm(tb, m, n, k, sizeof(T));
    const std::size_t extent = by_rows ? m : n, piece = piece_width(jit, extent);
    if (off_a.size() == 1 && extent >= 2 * piece && m * n * k >= split_work) {
      detail::parallel_for((extent + piece - 1) / piece, [&](std::size_t first, std::size_t last) {
        for (std::size_t i = first * piece; i < std::min(extent, last * piece); i += piece) {
          const std::size_t width = std::min(piece, extent - i);
          if (by_rows)
            detail::gemm(jit, ta, tb, width, n, k, pa + (ta ? i : i * lda), lda, pb, ldb, T(0), po + i * n, n);
          else
            detail::gemm(jit, ta, tb, m, width, k, pa, lda, pb + (tb ? i * ldb : i), ldb, T(0), po + i, n);
        }
      });
    } else {
      // One GEMM per batch entry, the entries split over the tg::Parallel threads if any.
      detail::parallel_for(off_a.size(), [&](std::size_t begin, std::size_t end) {
        for (std::size_t i = begin; i < end; ++i)
          detail::gemm(ta, tb, m, n, k, pa + off_a[i], lda, pb + off_b[i], ldb, T(0), po + i * m * n, n);
      });
    }
  }
  return record<T>("matmul", {a, b}, std::move(out), [ta, tb](const VjpArgs<T>& g) {
    const Tensor<T>& a = g.input(0);
    const Tensor<T>& b = g.input(1);
    Tensor<T> da, db;
    if (g.needs_grad(0))
      da = sum_to(ta ? matmul(b, g.grad, tb, true) : matmul(g.grad, b, false, !tb), a.shape());
    if (g.needs_grad(1))
      db = sum_to(tb ? matmul(g.grad, a, true, ta) : matmul(a, g.grad, !ta, false), b.shape());
    return Grads<T>{da, db};
  });
}

template <class T>
Tensor<T> matmul(const Tensor<T>& a, const Tensor<T>& b) {
  check_defined<T>("matmul", {&a, &b});
  const Shape sa = a.shape(), sb = b.shape();
  if (sa.empty() || sb.empty())
    throw_shape_error("matmul", "lhs shape " + shape_str(sa) + " and rhs shape " + shape_str(sb) +
                                    ": scalars cannot be multiplied as matrices (use *)");
  if (sa.size() == 1 && sb.size() == 1) {
    if (sa[0] != sb[0])
      throw_shape_error("matmul", "lhs shape " + shape_str(sa) + " and rhs shape " + shape_str(sb) +
                                      " are incompatible (lhs.shape[0]=" + std::to_string(sa[0]) +
                                      " != rhs.shape[0]=" + std::to_string(sb[0]) + ")");
    return reshape(matmul(reshape(a, {1, sa[0]}), reshape(b, {sb[0], 1}), false, false), {});
  }
  if (sa.size() == 1) {
    if (sa[0] != sb[sb.size() - 2])
      throw_shape_error("matmul", "lhs shape " + shape_str(sa) + " and rhs shape " + shape_str(sb) +
                                      " are incompatible (lhs.shape[0]=" + std::to_string(sa[0]) + " != " +
                                      dims("rhs", sb.size() - 2) + "=" + std::to_string(sb[sb.size() - 2]) + ")");
    Tensor<T> r = matmul(reshape(a, {1, sa[0]}), b, false, false);
    Shape s = r.shape();
    s.erase(s.end() - 2);
    return reshape(r, s);
  }
  if (sb.size() == 1) {
    if (sb[0] != sa.back())
      throw_shape_error("matmul", "lhs shape " + shape_str(sa) + " and rhs shape " + shape_str(sb) +
                                      " are incompatible (" + dims("lhs", sa.size() - 1) + "=" +
                                      std::to_string(sa.back()) + " != rhs.shape[0]=" + std::to_string(sb[0]) + ")");
    Tensor<T> r = matmul(a, reshape(b, {sb[0], 1}), false, false);
    Shape s = r.shape();
    s.pop_back();
    return reshape(r, s);
  }
  return matmul(a, b, false, false);
}

template Tensor<float> matmul(const Tensor<float>&, const Tensor<float>&);
template Tensor<float> matmul(const Tensor<float>&, const Tensor<float>&, bool, bool);
template Tensor<double> matmul(const Tensor<double>&, const Tensor<double>&);
template Tensor<double> matmul(const Tensor<double>&, const Tensor<double>&, bool, bool);

}  // namespace tapegrad
