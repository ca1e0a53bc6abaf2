#include "shape.hpp"

#include <algorithm>

#include "elementwise.hpp"
#include "kernels.hpp"
#include "../core/forward.hpp"
#include "reduce.hpp"

namespace tapegrad {

namespace {

using detail::shape_of;
using detail::Strides;

template <class T>
using Grads = Gradients<T>;

// Python's slice rules: negative indices count from the end; out-of-range bounds are clamped.
struct SliceRange {
  std::size_t start, count;
};
SliceRange slice_range(std::ptrdiff_t start, std::ptrdiff_t stop, std::ptrdiff_t step, std::size_t n) {
  const auto len = static_cast<std::ptrdiff_t>(n);
  auto clamp = [len](std::ptrdiff_t i) {
    if (i < 0) i += len;
    return std::min(std::max<std::ptrdiff_t>(i, 0), len);
  };
  const std::ptrdiff_t b = clamp(start), e = clamp(stop);
  const std::size_t count = e > b ? static_cast<std::size_t>((e - b - 1) / step + 1) : 0;
  return {static_cast<std::size_t>(b), count};
}

// The inverse of slice: `x` placed at start, start+step, ... along `axis` of zeros(shape).
//   y = embed(x);  dx = slice(grad);  ty = embed(t)
template <class T>
Tensor<T> unslice(const Tensor<T>& x, const Shape& shape, std::size_t axis, std::size_t start,
                  std::size_t step) {
  xt::xarray<T> out = xt::zeros<T>(shape);
  Strides dst = detail::row_major_strides(shape);
  const std::ptrdiff_t offset = static_cast<std::ptrdiff_t>(start) * dst[axis];
  dst[axis] *= static_cast<std::ptrdiff_t>(step);
  const Shape xs = x.shape();
  detail::copy_strided(xs, x.value().data(), detail::row_major_strides(xs), 0, out.data(), dst, offset);
  const auto first = static_cast<std::ptrdiff_t>(start);
  const auto stride = static_cast<std::ptrdiff_t>(step);
  const auto stop = first + static_cast<std::ptrdiff_t>(xs[axis]) * stride;
  return record<T>("slice_backward", {x}, std::move(out),
                   [axis, first, stop, stride](const VjpArgs<T>& g) {
                     return Grads<T>{slice(g.grad, static_cast<std::ptrdiff_t>(axis), first, stop, stride)};
                   }, Saved::nothing, takes_batch([shape, axis, start, step](const JvpArgs<T>& j) {
                     return unslice(j.tangents[0], detail::with_batch(shape, j.batch), axis + (j.batch > 0), start, step);
                   }));
}

}  // namespace

// y = x with a new shape;  dx = reshape(grad, x.shape);  ty = reshape(t, y.shape)
template <class T>
Tensor<T> reshape(const Tensor<T>& x, const Shape& shape) {
  constexpr char op[] = "reshape";
  check_defined<T>(op, {&x});
  const Shape from = x.shape();
  if (detail::checked_count(op, shape) != x.size())
    throw_shape_error(op, "cannot reshape " + shape_str(from) + " (" + std::to_string(x.size()) +
                                     " elements) to " + shape_str(shape) + " (" +
                                     std::to_string(detail::element_count(shape)) + " elements)");
  xt::xarray<T> out = detail::empty_array<T>(shape);
  std::copy(x.value().data(), x.value().data() + x.size(), out.data());
  return record<T>(op, {x}, std::move(out),
                   [](const VjpArgs<T>& g) { return Grads<T>{reshape(g.grad, g.input_shape(0))}; },
                   Saved::nothing,
                   takes_batch([](const JvpArgs<T>& j) { return reshape(j.tangents[0], detail::with_batch(j.output.shape(), j.batch)); }));
}

// y[i...] = x[perm applied];  dx = transpose(grad, inverse(perm));  ty = transpose(t, perm)
template <class T>
Tensor<T> transpose(const Tensor<T>& x, const std::vector<std::size_t>& perm) {
  constexpr char op[] = "transpose";
  check_defined<T>(op, {&x});
  const Shape from = x.shape();
  std::vector<bool> seen(from.size(), false);
  bool valid = perm.size() == from.size();
  for (std::size_t p : perm) {
    if (!valid || p >= from.size() || seen[p]) {
      valid = false;
      break;
    }
    seen[p] = true;
  }
  if (!valid) {
    std::string list;
    for (std::size_t i = 0; i < perm.size(); ++i) list += (i ? ", " : "") + std::to_string(perm[i]);
    throw_value_error(op, "perm [" + list + "] is not a permutation of the " +
                                       std::to_string(from.size()) + " axes of shape " + shape_str(from));
  }
  Shape shape(from.size());
  const Strides own = detail::row_major_strides(from);
  Strides src(from.size());
  std::vector<std::size_t> inverse(from.size());
  for (std::size_t i = 0; i < perm.size(); ++i) {
    shape[i] = from[perm[i]];
    src[i] = own[perm[i]];
    inverse[perm[i]] = i;
  }
  xt::xarray<T> out = detail::empty_array<T>(shape);
  detail::copy_strided(shape, x.value().data(), src, 0, out.data(), detail::row_major_strides(shape), 0);
  return record<T>(op, {x}, std::move(out), [inverse](const VjpArgs<T>& g) {
    return Grads<T>{transpose(g.grad, inverse)};
  }, Saved::nothing, takes_batch([perm](const JvpArgs<T>& j) {
    if (j.batch == 0) return transpose(j.tangents[0], perm);
    std::vector<std::size_t> after_batch{0};   // the batch axis stays first
    for (const std::size_t p : perm) after_batch.push_back(p + 1);
    return transpose(j.tangents[0], after_batch);
  }));
}

template <class T>
Tensor<T> transpose(const Tensor<T>& x) {
  constexpr char op[] = "transpose";
  check_defined<T>(op, {&x});
  std::vector<std::size_t> perm(x.dim());
  for (std::size_t i = 0; i < perm.size(); ++i) perm[i] = perm.size() - 1 - i;
  return transpose(x, perm);
}

// y = x repeated along broadcast dimensions;  dx = sum_to(grad, x.shape);  ty = broadcast_to(t, y.shape)
template <class T>
Tensor<T> broadcast_to(const Tensor<T>& x, const Shape& shape) {
  constexpr char op[] = "broadcast_to";
  check_defined<T>(op, {&x});
  const Shape from = x.shape();
  if (!detail::broadcasts_to(from, shape))
    throw_shape_error(op, "cannot broadcast shape " + shape_str(from) + " to " + shape_str(shape));
  detail::checked_count(op, shape);
  if (from == shape) return x;
  xt::xarray<T> out = detail::empty_array<T>(shape);
  detail::copy_strided(shape, x.value().data(), detail::broadcast_strides(from, shape), 0, out.data(),
                       detail::row_major_strides(shape), 0);
  return record<T>(op, {x}, std::move(out),
                   [](const VjpArgs<T>& g) { return Grads<T>{sum_to(g.grad, g.input_shape(0))}; },
                   Saved::nothing, takes_batch([](const JvpArgs<T>& j) {
                     const Tensor<T> t = j.batch > 0 ? detail::lift_batch(j.tangents[0], j.output.dim()) : j.tangents[0];
                     return broadcast_to(t, detail::with_batch(j.output.shape(), j.batch));
                   }));
}

// y = x[start:stop:step] along axis;  dx = grad placed back into zeros of x's shape;  ty = t[start:stop:step]
template <class T>
Tensor<T> slice(const Tensor<T>& x, std::ptrdiff_t axis, std::ptrdiff_t start, std::ptrdiff_t stop,
                std::ptrdiff_t step) {
  constexpr char op[] = "slice";
  check_defined<T>(op, {&x});
  const Shape from = x.shape();
  if (from.empty()) throw_shape_error(op, "cannot slice a scalar (shape ())");
  const std::size_t k = detail::normalize_axis(op, axis, from.size());
  if (step < 1) throw_value_error(op, "step must be >= 1, got " + std::to_string(step));
  const SliceRange r = slice_range(start, stop, step, from[k]);
  // With one element taken, the step never moves; capping it keeps the stride arithmetic in range.
  if (r.count <= 1) step = 1;
  Shape shape = from;
  shape[k] = r.count;
  Strides src = detail::row_major_strides(from);
  const std::ptrdiff_t offset = static_cast<std::ptrdiff_t>(r.start) * src[k];
  src[k] *= step;
  xt::xarray<T> out = detail::empty_array<T>(shape);
  detail::copy_strided(shape, x.value().data(), src, offset, out.data(), detail::row_major_strides(shape), 0);
  return record<T>(op, {x}, std::move(out),
                   [from, k, first = r.start, step = static_cast<std::size_t>(step)](const VjpArgs<T>& g) {
                     return Grads<T>{unslice(g.grad, from, k, first, step)};
                   }, Saved::nothing,
                   takes_batch([k, first = static_cast<std::ptrdiff_t>(r.start),
                                count = static_cast<std::ptrdiff_t>(r.count), step](const JvpArgs<T>& j) {
                     // The same elements, from the normalised range (the step may have been capped).
                     const std::ptrdiff_t stop = count == 0 ? first : first + (count - 1) * step + 1;
                     return slice(j.tangents[0], static_cast<std::ptrdiff_t>(k + (j.batch > 0)), first, stop, step);
                   }));
}

// y = [x0, x1, ...] along axis;  dx_i = slice of grad where x_i sits;  ty = [t0, t1, ...]
template <class T>
Tensor<T> concat(const std::vector<Tensor<T>>& xs, std::ptrdiff_t axis) {
  constexpr char op[] = "concat";
  if (xs.empty()) throw_value_error(op, "needs at least one tensor");
  check_defined(op, xs);
  const Shape first = xs[0].shape();
  if (first.empty()) throw_shape_error(op, "cannot concatenate scalars (shape ())");
  const std::size_t k = detail::normalize_axis(op, axis, first.size());
  Shape shape = first;
  shape[k] = 0;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const Shape s = xs[i].shape();
    bool fits = s.size() == first.size();
    for (std::size_t d = 0; fits && d < s.size(); ++d) fits = d == k || s[d] == first[d];
    if (!fits)
      throw_shape_error(op, "input " + std::to_string(i) + " of shape " + shape_str(s) +
                                      " does not match input 0 of shape " + shape_str(first) +
                                      " outside axis " + std::to_string(k));
    shape[k] += s[k];
  }
  xt::xarray<T> out = detail::empty_array<T>(shape);
  const Strides dst = detail::row_major_strides(shape);
  std::vector<std::ptrdiff_t> offsets;
  std::ptrdiff_t at = 0;
  for (const auto& x : xs) {
    const Shape s = x.shape();
    detail::copy_strided(s, x.value().data(), detail::row_major_strides(s), 0, out.data(), dst, at * dst[k]);
    offsets.push_back(at);
    at += static_cast<std::ptrdiff_t>(s[k]);
  }
  offsets.push_back(at);
  return record<T>(op, xs, std::move(out), [k, offsets](const VjpArgs<T>& g) {
    Grads<T> grads(offsets.size() - 1);
    for (std::size_t i = 0; i + 1 < offsets.size(); ++i)
      if (g.needs_grad(i)) grads[i] = slice(g.grad, static_cast<std::ptrdiff_t>(k), offsets[i], offsets[i + 1]);
    return grads;
  }, Saved::nothing, takes_batch([k](const JvpArgs<T>& j) {
    std::vector<Tensor<T>> ts;
    for (std::size_t i = 0; i < j.inputs.size(); ++i)
      ts.push_back(j.has_tangent(i) ? j.tangents[i]
                                    : Tensor<T>(xt::xarray<T>(xt::zeros<T>(detail::with_batch(j.inputs[i].shape(), j.batch)))));
    return concat(ts, static_cast<std::ptrdiff_t>(k + (j.batch > 0)));
  }));
}

// y = x surrounded by `value`;  dx = grad with the padding sliced off, axis by axis;  ty = t padded with 0
template <class T>
Tensor<T> pad(const Tensor<T>& x, const std::vector<std::pair<std::size_t, std::size_t>>& pads,
              scalar_t<T> value) {
  constexpr char op[] = "pad";
  check_defined<T>(op, {&x});
  const Shape from = x.shape();
  if (pads.size() != from.size())
    throw_shape_error(op, "got " + std::to_string(pads.size()) + " (before, after) pairs for a tensor of shape " +
                                 shape_str(from) + "; give one per axis");
  Shape shape = from;
  std::ptrdiff_t offset = 0;
  for (std::size_t k = 0; k < from.size(); ++k) {
    // A negative pad converted to size_t lands here too: it is far above the limit.
    if (pads[k].first > detail::max_elements || pads[k].second > detail::max_elements)
      throw_value_error(op, "padding (" + std::to_string(pads[k].first) + ", " + std::to_string(pads[k].second) +
                                   ") of axis " + std::to_string(k) + " is out of range (negative or above 2^48)");
    shape[k] += pads[k].first + pads[k].second;
  }
  detail::checked_count(op, shape);
  const Strides dst = detail::row_major_strides(shape);
  for (std::size_t k = 0; k < from.size(); ++k) offset += static_cast<std::ptrdiff_t>(pads[k].first) * dst[k];
  xt::xarray<T> out = detail::empty_array<T>(shape);
  std::fill(out.data(), out.data() + out.size(), value);
  detail::copy_strided(from, x.value().data(), detail::row_major_strides(from), 0, out.data(), dst, offset);
  return record<T>(op, {x}, std::move(out), [from, pads](const VjpArgs<T>& g) {
    Tensor<T> grad = g.grad;
    for (std::size_t k = 0; k < from.size(); ++k)
      if (pads[k].first || pads[k].second) {
        const auto b = static_cast<std::ptrdiff_t>(pads[k].first);
        grad = slice(grad, static_cast<std::ptrdiff_t>(k), b, b + static_cast<std::ptrdiff_t>(from[k]));
      }
    return Grads<T>{grad};
  }, Saved::nothing, takes_batch([pads](const JvpArgs<T>& j) {
    if (j.batch == 0) return pad(j.tangents[0], pads, T(0));
    std::vector<std::pair<std::size_t, std::size_t>> after_batch{{0, 0}};
    after_batch.insert(after_batch.end(), pads.begin(), pads.end());
    return pad(j.tangents[0], after_batch, T(0));
  }));
}

template Tensor<float> reshape(const Tensor<float>&, const Shape&);
template Tensor<float> transpose(const Tensor<float>&, const std::vector<std::size_t>&);
template Tensor<float> transpose(const Tensor<float>&);
template Tensor<float> broadcast_to(const Tensor<float>&, const Shape&);
template Tensor<float> slice(const Tensor<float>&, std::ptrdiff_t, std::ptrdiff_t, std::ptrdiff_t, std::ptrdiff_t);
template Tensor<float> concat(const std::vector<Tensor<float>>&, std::ptrdiff_t);
template Tensor<float> pad(const Tensor<float>&, const std::vector<std::pair<std::size_t, std::size_t>>&, float);
template Tensor<double> reshape(const Tensor<double>&, const Shape&);
template Tensor<double> transpose(const Tensor<double>&, const std::vector<std::size_t>&);
template Tensor<double> transpose(const Tensor<double>&);
template Tensor<double> broadcast_to(const Tensor<double>&, const Shape&);
template Tensor<double> slice(const Tensor<double>&, std::ptrdiff_t, std::ptrdiff_t, std::ptrdiff_t, std::ptrdiff_t);
template Tensor<double> concat(const std::vector<Tensor<double>>&, std::ptrdiff_t);
template Tensor<double> pad(const Tensor<double>&, const std::vector<std::pair<std::size_t, std::size_t>>&, double);

namespace detail {

template <class T>
Tensor<T> lift_batch(const Tensor<T>& t, std::size_t rank) {
  const Shape s = t.shape();
  if (s.size() >= rank + 1) return t;
  Shape lifted{s[0]};
  lifted.insert(lifted.end(), rank + 1 - s.size(), 1);
  lifted.insert(lifted.end(), s.begin() + 1, s.end());
  return reshape(t, lifted);
}

template <class T>
Tensor<T> merge_batch(const Tensor<T>& t) {
  Shape s = t.shape();
  s[1] *= s[0];
  s.erase(s.begin());
  return reshape(t, s);
}

template <class T>
Tensor<T> split_batch(const Tensor<T>& t, std::size_t batch) {
  Shape s = t.shape();
  s[0] /= batch;
  s.insert(s.begin(), batch);
  return reshape(t, s);
}

template Tensor<float> lift_batch(const Tensor<float>&, std::size_t);
template Tensor<double> lift_batch(const Tensor<double>&, std::size_t);
template Tensor<float> merge_batch(const Tensor<float>&);
template Tensor<double> merge_batch(const Tensor<double>&);
template Tensor<float> split_batch(const Tensor<float>&, std::size_t);
template Tensor<double> split_batch(const Tensor<double>&, std::size_t);

}  // namespace detail

}  // namespace tapegrad
