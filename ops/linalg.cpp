#include "linalg.hpp"

#include <limits>

#include "kernels.hpp"
#include "../core/forward.hpp"
#include "elementwise.hpp"
#include "reduce.hpp"
#include "shape.hpp"

namespace tapegrad {

namespace {

template <class T>
using Grads = Gradients<T>;

// "matmul: lhs shape (2, 3) and rhs shape (4, 5)" followed by what is wrong with them.
[[noreturn]] void shapes_error(const Shape& sa, const Shape& sb, const std::string& what) {
  throw_shape_error("matmul", "lhs shape " + shape_str(sa) + " and rhs shape " + shape_str(sb) + what);
}

// " are incompatible (lhs.shape[1]=3 != rhs.shape[0]=4)"
std::string incompatible(std::size_t lhs_axis, std::size_t lhs, std::size_t rhs_axis, std::size_t rhs) {
  return " are incompatible (lhs.shape[" + std::to_string(lhs_axis) + "]=" + std::to_string(lhs) + " != rhs.shape[" +
         std::to_string(rhs_axis) + "]=" + std::to_string(rhs) + ")";
}

// op(a) @ op(b) as the kernel takes it: the operands' batch dimensions, the output's shape
// (batch..., m, n) and the length k of the sums.
struct Product {
  Shape batch_a, batch_b, shape;
  std::size_t k;
};

// The product of operands of these shapes, checked.
Product product_of(const Shape& sa, const Shape& sb, bool ta, bool tb) {
  if (sa.size() < 2 || sb.size() < 2) shapes_error(sa, sb, ": transposed operands must be at least 2-D");
  const std::size_t ra = sa.size(), rb = sb.size();
  const std::size_t m = ta ? sa[ra - 1] : sa[ra - 2], k = ta ? sa[ra - 2] : sa[ra - 1];
  const std::size_t kb = tb ? sb[rb - 1] : sb[rb - 2], n = tb ? sb[rb - 2] : sb[rb - 1];
  if (k != kb) shapes_error(sa, sb, incompatible(ta ? ra - 2 : ra - 1, k, tb ? rb - 1 : rb - 2, kb));
  const Shape batch_a(sa.begin(), sa.end() - 2), batch_b(sb.begin(), sb.end() - 2);
  Shape shape;
  try {
    shape = detail::broadcast_shapes("matmul", batch_a, batch_b);
  } catch (const ShapeError&) {
    shapes_error(sa, sb, " have batch dimensions " + shape_str(batch_a) + " and " + shape_str(batch_b) +
                             " that do not broadcast");
  }
  for (std::size_t d : {m, n, k})   // cblas takes int dimensions
    if (d > std::size_t(std::numeric_limits<int>::max()))
      shapes_error(sa, sb, ": a matrix dimension exceeds 2^31 - 1, the BLAS limit");
  shape.push_back(m);
  shape.push_back(n);
  detail::checked_count("matmul", shape);
  return {batch_a, batch_b, shape, k};
}

}  // namespace

template <class T>
Tensor<T> matmul(const Tensor<T>& a, const Tensor<T>& b, bool ta, bool tb) {
  constexpr char op[] = "matmul";
  check_defined<T>(op, {&a, &b});
  const Product p = product_of(a.shape(), b.shape(), ta, tb);
  // GEMM with beta = 0 writes every element; only k = 0 leaves zeros to fill.
  xt::xarray<T> out = p.k == 0 ? xt::xarray<T>(xt::zeros<T>(p.shape)) : detail::empty_array<T>(p.shape);
  detail::batched_gemm(ta, tb, p.batch_a, p.batch_b, p.shape, p.k, a.value().data(), b.value().data(), out.data());
  // C = op(A) op(B), batched;
  //   dA = sum_to(ta ? op(B) grad^T : grad op(B)^T, A.shape),  dB = sum_to(tb ? grad^T op(A) : op(A)^T grad, B.shape);
  //   tC = op(tA) op(B) + op(A) op(tB)
  return record<T>(op, {a, b}, std::move(out), [ta, tb](const VjpArgs<T>& g) {
    const Tensor<T>& a = g.input(0);
    const Tensor<T>& b = g.input(1);
    Tensor<T> da, db;
    if (g.needs_grad(0))
      da = sum_to(ta ? matmul(b, g.grad, tb, true) : matmul(g.grad, b, false, !tb), a.shape());
    if (g.needs_grad(1))
      db = sum_to(tb ? matmul(g.grad, a, true, ta) : matmul(a, g.grad, !ta, false), b.shape());
    return Grads<T>{da, db};
  }, Saved::inputs, takes_batch([ta, tb](const JvpArgs<T>& j) {
    Tensor<T> t;
    auto add = [&t](const Tensor<T>& term) { t = t.defined() ? t + term : term; };
    const Tensor<T>& a = j.inputs[0];
    const Tensor<T>& b = j.inputs[1];
    const std::size_t B = j.batch;
    if (B == 0) {
      if (j.has_tangent(0)) add(matmul(j.tangents[0], b, ta, tb));
      if (j.has_tangent(1)) add(matmul(a, j.tangents[1], ta, tb));
      return t;
    }
    // A batch of tangents of 2-D operands: one product for the whole batch (the seeds stacked as
    // rows of op(tA), or as columns of op(tB)) rather than one small product per seed.
    const Shape y = j.output.shape();
    if (j.has_tangent(0)) {
      if (a.dim() == 2 && b.dim() == 2 && !ta) {
        const Shape s = a.shape();
        add(reshape(matmul(reshape(j.tangents[0], {B * s[0], s[1]}), b, false, tb), {B, y[0], y[1]}));
      } else {
        add(matmul(detail::lift_batch(j.tangents[0], y.size()), b, ta, tb));   // the batch: one more batch axis
      }
    }
    if (j.has_tangent(1)) {
      if (a.dim() == 2 && b.dim() == 2 && y[1] == 1) {
        // Columns: the seeds' op(tB) as rows, times op(A) transposed, is (B, m) = (B, m, 1).
        add(reshape(matmul(reshape(j.tangents[1], {B, b.size()}), a, false, !ta), {B, y[0], 1}));
      } else if (a.dim() == 2 && b.dim() == 2 && y[0] * y[1] < 1024) {
        // Small products: one GEMM for the batch beats one per seed, despite the two transposes.
        // Larger ones (ht's skinning: 51,200 x 12 per seed) take the per-seed products below,
        // written in place, rather than copy the whole batch twice.
        const Shape s = b.shape();
        // op(tB) for every seed side by side: (k, B n), from tB (B, k, n), or from tB (B, n, k) transposed.
        const Tensor<T> side_by_side = tb ? reshape(j.tangents[1], {B * s[0], s[1]})
                                          : reshape(transpose(j.tangents[1], {1, 0, 2}), {s[0], B * s[1]});
        const Tensor<T> product = matmul(a, side_by_side, ta, tb);   // (m, B n)
        add(transpose(reshape(product, {y[0], B, y[1]}), {1, 0, 2}));
      } else {
        add(matmul(a, detail::lift_batch(j.tangents[1], y.size()), ta, tb));
      }
    }
    return t;
  }));
}

// NumPy's matmul of 1-D operands: reshaped to a row (lhs) or a column (rhs), the axis dropped after.
template <class T>
Tensor<T> matmul(const Tensor<T>& a, const Tensor<T>& b) {
  constexpr char op[] = "matmul";
  check_defined<T>(op, {&a, &b});
  const Shape sa = a.shape(), sb = b.shape();
  if (sa.empty() || sb.empty()) shapes_error(sa, sb, ": scalars cannot be multiplied as matrices (use *)");
  if (sa.size() == 1 && sb.size() == 1) {
    if (sa[0] != sb[0]) shapes_error(sa, sb, incompatible(0, sa[0], 0, sb[0]));
    return reshape(matmul(reshape(a, {1, sa[0]}), reshape(b, {sb[0], 1}), false, false), {});
  }
  if (sa.size() == 1) {
    if (sa[0] != sb[sb.size() - 2]) shapes_error(sa, sb, incompatible(0, sa[0], sb.size() - 2, sb[sb.size() - 2]));
    Tensor<T> r = matmul(reshape(a, {1, sa[0]}), b, false, false);
    Shape s = r.shape();
    s.erase(s.end() - 2);
    return reshape(r, s);
  }
  if (sb.size() == 1) {
    if (sb[0] != sa.back()) shapes_error(sa, sb, incompatible(sa.size() - 1, sa.back(), 0, sb[0]));
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
