#include "reduce.hpp"

#include <algorithm>
#include <cmath>

#include "elementwise.hpp"
#include "kernels.hpp"
#include "../core/forward.hpp"
#include "shape.hpp"

namespace tapegrad {

namespace {

using detail::shape_of;

template <class T>
using Grads = Gradients<T>;

// The reduced axes as a sorted mask, checked.
std::vector<bool> axis_mask(const std::string& op, const Axes& axes, std::size_t rank) {
  std::vector<bool> mask(rank, false);
  for (std::ptrdiff_t a : axes) {
    const std::size_t k = detail::normalize_axis(op, a, rank);
    if (mask[k]) throw_value_error(op, "axis " + std::to_string(a) + " is repeated");
    mask[k] = true;
  }
  return mask;
}

Shape kept_shape(const Shape& shape, const std::vector<bool>& mask) {
  Shape out = shape;
  for (std::size_t k = 0; k < shape.size(); ++k)
    if (mask[k]) out[k] = 1;
  return out;
}

Shape dropped_shape(const Shape& shape, const std::vector<bool>& mask) {
  Shape out;
  for (std::size_t k = 0; k < shape.size(); ++k)
    if (!mask[k]) out.push_back(shape[k]);
  return out;
}

// Sum over the masked axes, accumulated in double (float sums of many terms lose digits).
template <class T>
xt::xarray<T> sum_kernel(const xt::xarray<T>& x, const std::vector<bool>& summed, const Shape& out_shape) {
  // Neighbouring axes that are both summed or both kept act as one: (N, C, H, W) summed over
  // (0, 2, 3) is (N, C, H*W) summed over (0, 2), whose rows are long.
  Shape shape;
  std::vector<bool> mask;
  const Shape full = shape_of(x);
  for (std::size_t k = 0; k < full.size(); ++k) {
    if (k > 0 && mask.back() == summed[k]) {
      shape.back() *= full[k];
    } else {
      shape.push_back(full[k]);
      mask.push_back(summed[k]);
    }
  }
  const Shape keep = kept_shape(shape, mask);
  std::vector<double> acc(detail::element_count(keep), 0.0);
  // Reduced axes forming one block: x is (outer, reduced, inner), summed with unit-stride loops.
  std::size_t first = shape.size(), last = 0;
  for (std::size_t k = 0; k < shape.size(); ++k)
    if (mask[k]) {
      first = std::min(first, k);
      last = k + 1;
    }
  bool block = first < last;
  for (std::size_t k = first; block && k < last; ++k) block = mask[k];
  if (block) {
    std::size_t outer = 1, reduced = 1, inner = 1;
    for (std::size_t k = 0; k < shape.size(); ++k) (k < first ? outer : k < last ? reduced : inner) *= shape[k];
    const T* src = x.data();
    if (inner == 1) {
      for (std::size_t o = 0; o < outer; ++o) acc[o] = detail::row_sum(src + o * reduced, reduced);
      outer = 0;
    }
    for (std::size_t o = 0; o < outer; ++o) {
      double* a = acc.data() + o * inner;
      for (std::size_t r = 0; r < reduced; ++r) {
        const T* row = src + (o * reduced + r) * inner;
        for (std::size_t i = 0; i < inner; ++i) a[i] += row[i];
      }
    }
    xt::xarray<T> out = detail::empty_array<T>(out_shape);
    std::transform(acc.begin(), acc.end(), out.data(), [](double v) { return static_cast<T>(v); });
    return out;
  }
  detail::Strides dst = detail::row_major_strides(keep);
  for (std::size_t k = 0; k < shape.size(); ++k)
    if (mask[k]) dst[k] = 0;
  const T* src = x.data();
  if (shape.empty()) {   // a scalar: nothing to reduce
    xt::xarray<T> out = detail::empty_array<T>(out_shape);
    out.data()[0] = src[0];
    return out;
  }
  // Rows of the last axis: summed into one number when that axis is reduced, added elementwise
  // when it is kept.
  const std::size_t inner = shape.back();
  const bool last_reduced = mask.back();
  const Shape rows(shape.begin(), shape.end() - 1);
  const detail::Strides all = detail::row_major_strides(shape);
  const detail::Strides src_rows(all.begin(), all.end() - 1), dst_rows(dst.begin(), dst.end() - 1);
  detail::strided_loop(rows, src_rows, 0, dst_rows, 0, [&](std::ptrdiff_t s, std::ptrdiff_t d) {
    const T* row = src + s;
    if (last_reduced) {
      acc[std::size_t(d)] += detail::row_sum(row, inner);
    } else {
      double* a = acc.data() + d;
      for (std::size_t i = 0; i < inner; ++i) a[i] += row[i];
    }
  });
  xt::xarray<T> out = detail::empty_array<T>(out_shape);
  std::transform(acc.begin(), acc.end(), out.data(), [](double v) { return static_cast<T>(v); });
  return out;
}

}  // namespace

template <class T>
Tensor<T> sum(const Tensor<T>& x) {
  constexpr char op[] = "sum";
  check_defined<T>(op, {&x});
  Axes all(x.dim());
  for (std::size_t k = 0; k < all.size(); ++k) all[k] = static_cast<std::ptrdiff_t>(k);
  return sum(x, all, false);
}

// y = sum over axes of x;  dx = broadcast_to(reshape(grad, keepdims shape), x.shape);  ty = sum(t over axes)
template <class T>
Tensor<T> sum(const Tensor<T>& x, const Axes& axes, bool keepdims) {
  constexpr char op[] = "sum";
  check_defined<T>(op, {&x});
  const Shape shape = x.shape();
  const std::vector<bool> mask = axis_mask(op, axes, shape.size());
  const Shape keep = kept_shape(shape, mask);
  return record<T>(op, {x}, sum_kernel(x.value(), mask, keepdims ? keep : dropped_shape(shape, mask)),
                   [shape, keep](const VjpArgs<T>& g) {
                     return Grads<T>{broadcast_to(reshape(g.grad, keep), shape)};
                   }, Saved::nothing, takes_batch([axes, keepdims](const JvpArgs<T>& j) {
                     if (j.batch == 0) return sum(j.tangents[0], axes, keepdims);
                     Axes after_batch = axes;   // a negative axis counts from the end: the same axis
                     for (std::ptrdiff_t& a : after_batch) a += a >= 0 ? 1 : 0;
                     return sum(j.tangents[0], after_batch, keepdims);
                   }));
}

template <class T>
Tensor<T> mean(const Tensor<T>& x) {
  constexpr char op[] = "mean";
  check_defined<T>(op, {&x});
  return sum(x) / static_cast<T>(x.size());
}

template <class T>
Tensor<T> mean(const Tensor<T>& x, const Axes& axes, bool keepdims) {
  constexpr char op[] = "mean";
  check_defined<T>(op, {&x});
  const Shape shape = x.shape();
  const std::vector<bool> mask = axis_mask(op, axes, shape.size());
  std::size_t count = 1;
  for (std::size_t k = 0; k < shape.size(); ++k)
    if (mask[k]) count *= shape[k];
  return sum(x, axes, keepdims) / static_cast<T>(count);
}

namespace {

// y = max over the middle axis of x viewed as (outer, n, inner), of shape out_shape;
// dx = broadcast(grad) * onehot(first argmax);  ty = t at the first argmax. Only the argmax
// positions are kept; the one-hot mask is built by the VJP, so that an unrecorded max costs one
// pass over x.
template <class T>
Tensor<T> max_of_middle_axis(const Tensor<T>& x, std::size_t outer, std::size_t n, std::size_t inner,
                             const Shape& out_shape, const Shape& keep) {
  xt::xarray<T> out = detail::empty_array<T>(out_shape);
  const T* src = x.value().data();
  std::vector<std::size_t> best(outer * inner, 0);   // argmax along the axis, per output element
  for (std::size_t o = 0; o < outer; ++o) {
    // Rows of the reduced axis in turn, so that the inner loop runs over contiguous elements.
    const T* slab = src + o * n * inner;
    T* top = out.data() + o * inner;
    std::size_t* arg = best.data() + o * inner;
    std::copy(slab, slab + inner, top);
    for (std::size_t j = 1; j < n; ++j) {
      const T* row = slab + j * inner;
      for (std::size_t i = 0; i < inner; ++i)
        if (row[i] > top[i] || (std::isnan(row[i]) && !std::isnan(top[i]))) {   // NaN propagates
          top[i] = row[i];
          arg[i] = j;
        }
    }
  }
  const Shape shape = x.shape();
  return record<T>("max", {x}, std::move(out),
                   [shape, keep, best = std::move(best), n, inner](const VjpArgs<T>& g) {
                     xt::xarray<T> onehot = xt::zeros<T>(shape);
                     for (std::size_t e = 0; e < best.size(); ++e) {
                       const std::size_t o = e / inner, i = e % inner;
                       onehot.data()[(o * n + best[e]) * inner + i] = T(1);
                     }
                     return Grads<T>{broadcast_to(reshape(g.grad, keep), shape) * Tensor<T>(std::move(onehot))};
                   }, Saved::nothing, takes_batch([outer, n, inner, out_shape](const JvpArgs<T>& j) {
                     // The same one-hot, found again from x and y: the first element equal to the
                     // maximum (or the first NaN where the maximum is NaN) is the first argmax.
                     const T* xs = j.inputs[0].value().data();
                     const T* ys = j.output.value().data();
                     xt::xarray<T> onehot = xt::zeros<T>({outer, n, inner});
                     for (std::size_t e = 0; e < outer * inner; ++e) {
                       const std::size_t o = e / inner, i = e % inner;
                       for (std::size_t k = 0; k < n; ++k) {
                         const T v = xs[(o * n + k) * inner + i];
                         if (v == ys[e] || (std::isnan(v) && std::isnan(ys[e]))) {
                           onehot.data()[(o * n + k) * inner + i] = T(1);
                           break;
                         }
                       }
                     }
                     if (j.batch == 0) {
                       const Tensor<T> t = reshape(j.tangents[0], {outer, n, inner}) * Tensor<T>(std::move(onehot));
                       return reshape(sum(t, {1}), out_shape);
                     }
                     const Tensor<T> t = reshape(j.tangents[0], {j.batch, outer, n, inner}) * Tensor<T>(std::move(onehot));
                     return reshape(sum(t, {2}), detail::with_batch(out_shape, j.batch));
                   }));
}

}  // namespace

template <class T>
Tensor<T> max(const Tensor<T>& x) {
  constexpr char op[] = "max";
  check_defined<T>(op, {&x});
  if (x.size() == 0) throw_value_error(op, "cannot take the maximum of an empty tensor of shape " + shape_str(x.shape()));
  return max_of_middle_axis(x, 1, x.size(), 1, {}, Shape(x.dim(), 1));
}

// y = max along axis
template <class T>
Tensor<T> max(const Tensor<T>& x, std::ptrdiff_t axis, bool keepdims) {
  constexpr char op[] = "max";
  check_defined<T>(op, {&x});
  const Shape shape = x.shape();
  const std::size_t k = detail::normalize_axis(op, axis, shape.size());
  if (shape[k] == 0)
    throw_value_error(op, "cannot reduce axis " + std::to_string(axis) + " of size 0 (shape " +
                                 shape_str(shape) + ")");
  std::vector<bool> mask(shape.size(), false);
  mask[k] = true;
  const Shape keep = kept_shape(shape, mask);
  std::size_t outer = 1, inner = 1;
  for (std::size_t d = 0; d < k; ++d) outer *= shape[d];
  for (std::size_t d = k + 1; d < shape.size(); ++d) inner *= shape[d];
  return max_of_middle_axis(x, outer, shape[k], inner, keepdims ? keep : dropped_shape(shape, mask), keep);
}

// The reduced axes moved last and merged into one, then max along it: a composition.
template <class T>
Tensor<T> max(const Tensor<T>& x, const Axes& axes, bool keepdims) {
  constexpr char op[] = "max";
  check_defined<T>(op, {&x});
  const Shape shape = x.shape();
  const std::vector<bool> mask = axis_mask(op, axes, shape.size());
  std::vector<std::size_t> perm;
  Shape merged;
  std::size_t reduced = 1;
  for (std::size_t k = 0; k < shape.size(); ++k)
    if (!mask[k]) {
      perm.push_back(k);
      merged.push_back(shape[k]);
    }
  for (std::size_t k = 0; k < shape.size(); ++k)
    if (mask[k]) {
      perm.push_back(k);
      reduced *= shape[k];
    }
  if (reduced == 0)
    throw_value_error(op, "cannot reduce axes of size 0 (shape " + shape_str(shape) + ")");
  merged.push_back(reduced);
  const Tensor<T> m = max(reshape(transpose(x, perm), merged), -1, false);
  return reshape(m, keepdims ? kept_shape(shape, mask) : dropped_shape(shape, mask));
}

template <class T>
Tensor<T> sum_to(const Tensor<T>& x, const Shape& shape) {
  constexpr char op[] = "sum_to";
  check_defined<T>(op, {&x});
  if (detail::same_shape(x.value().shape(), shape)) return x;
  const Shape from = x.shape();
  if (!detail::broadcasts_to(shape, from))
    throw_shape_error(op, "cannot sum shape " + shape_str(from) + " down to " +
                                    shape_str(shape) + " (the target must broadcast to the source)");
  const std::size_t lead = from.size() - shape.size();
  Axes axes;
  for (std::size_t k = 0; k < from.size(); ++k)
    if (k < lead || (shape[k - lead] == 1 && from[k] != 1)) axes.push_back(static_cast<std::ptrdiff_t>(k));
  return reshape(sum(x, axes, true), shape);
}

template Tensor<float> sum(const Tensor<float>&);
template Tensor<float> sum(const Tensor<float>&, const Axes&, bool);
template Tensor<float> mean(const Tensor<float>&);
template Tensor<float> mean(const Tensor<float>&, const Axes&, bool);
template Tensor<float> max(const Tensor<float>&);
template Tensor<float> max(const Tensor<float>&, std::ptrdiff_t, bool);
template Tensor<float> sum_to(const Tensor<float>&, const Shape&);
template Tensor<float> max(const Tensor<float>&, const Axes&, bool);
template Tensor<double> max(const Tensor<double>&, const Axes&, bool);
template Tensor<double> sum(const Tensor<double>&);
template Tensor<double> sum(const Tensor<double>&, const Axes&, bool);
template Tensor<double> mean(const Tensor<double>&);
template Tensor<double> mean(const Tensor<double>&, const Axes&, bool);
template Tensor<double> max(const Tensor<double>&);
template Tensor<double> max(const Tensor<double>&, std::ptrdiff_t, bool);
template Tensor<double> sum_to(const Tensor<double>&, const Shape&);

}  // namespace tapegrad
