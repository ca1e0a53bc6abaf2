#include "index.hpp"

#include <cmath>

#include "../core/forward.hpp"
#include "kernels.hpp"
#include "reduce.hpp"
#include "shape.hpp"

namespace tapegrad {

namespace {

using detail::Positions;
using detail::Strides;

template <class T>
using Grads = Gradients<T>;

// The batch of a batch of tangents of an op that already runs on a batch: one merged axis (0: none).
std::size_t merged(std::size_t batch, std::size_t outer) {
  return batch == 0 ? outer : outer == 0 ? batch : batch * outer;
}

// A result over a merged batch (outer * batch, ...) as forward mode expects it, (outer, batch, ...).
template <class T>
Tensor<T> nested(const Tensor<T>& t, std::size_t batch, std::size_t outer) {
  if (batch == 0 || outer == 0) return t;
  Shape s = t.shape();
  s[0] = batch;
  s.insert(s.begin(), outer);
  return reshape(t, s);
}

// Sizes of the axes before `k`, of axis k, and after it.
struct AxisSplit {
  std::size_t outer, n, inner;
};
AxisSplit split_at(const Shape& s, std::size_t k) {
  AxisSplit a{1, s[k], 1};
  for (std::size_t d = 0; d < k; ++d) a.outer *= s[d];
  for (std::size_t d = k + 1; d < s.size(); ++d) a.inner *= s[d];
  return a;
}

// An index in [-n, n) made non-negative; a ValueError naming the op, the index, where it sits and
// the axis otherwise.
std::size_t checked_index(const char* op, std::int64_t i, const std::string& where, std::size_t axis,
                          const Shape& shape) {
  const auto n = static_cast<std::int64_t>(shape[axis]);
  if (i < -n || i >= n)
    throw_value_error(op, "index " + std::to_string(i) + " at " + where + " is out of range for axis " +
                              std::to_string(axis) + " of size " + std::to_string(n) + " (x shape " +
                              shape_str(shape) + ")");
  return static_cast<std::size_t>(i < 0 ? i + n : i);
}

// The flat positions in x (of shape xs) of y = x[..., index[...], ...] along axis k, y of shape
// `out`: x is read with `x_strides` (0 along k and along broadcast axes), index with `i_strides`.
Positions positions_along_axis(const char* op, const Shape& xs, std::size_t k, const Index& index, const Shape& out,
                               const Strides& x_strides, const Strides& i_strides) {
  auto positions = std::make_shared<std::vector<std::size_t>>();
  positions->reserve(detail::element_count(out));
  const std::ptrdiff_t step = detail::row_major_strides(xs)[k];
  const Shape is = detail::shape_of(index);
  detail::strided_loop(out, x_strides, 0, i_strides, 0, [&](std::ptrdiff_t at, std::ptrdiff_t i) {
    const std::int64_t v = index.data()[i];
    const auto n = static_cast<std::int64_t>(xs[k]);
    const std::size_t j = v >= -n && v < n ? static_cast<std::size_t>(v < 0 ? v + n : v)
                                            : checked_index(op, v, shape_str(unravel_index(std::size_t(i), is)), k, xs);
    positions->push_back(static_cast<std::size_t>(at + static_cast<std::ptrdiff_t>(j) * step));
  });
  return positions;
}

// Index's rank must be x's.
void check_rank(const char* op, const Shape& xs, const Shape& is) {
  if (is.size() != xs.size())
    throw_shape_error(op, "index shape " + shape_str(is) + " and x shape " + shape_str(xs) +
                              " differ in rank (" + std::to_string(is.size()) + " != " + std::to_string(xs.size()) + ")");
}

// y = x[first or last ... i] summed along axis k (reverse: from the end);  dx = the other scan of
// grad;  ty = the same scan of t
template <class T>
Tensor<T> scan_sum(const Tensor<T>& x, std::size_t k, bool reverse) {
  const Shape s = x.shape();
  const AxisSplit a = split_at(s, k);
  xt::xarray<T> y = detail::empty_array<T>(s);
  const T* src = x.value().data();
  T* dst = y.data();
  for (std::size_t o = 0; o < a.outer; ++o)
    for (std::size_t step = 0; step < a.n; ++step) {
      const std::size_t j = reverse ? a.n - 1 - step : step;
      const std::size_t row = (o * a.n + j) * a.inner;
      if (step == 0) {
        std::copy(src + row, src + row + a.inner, dst + row);
        continue;
      }
      const std::size_t previous = reverse ? row + a.inner : row - a.inner;
      for (std::size_t i = 0; i < a.inner; ++i) dst[row + i] = dst[previous + i] + src[row + i];
    }
  return record<T>(reverse ? "cumsum_backward" : "cumsum", {x}, std::move(y),
                   [k, reverse](const VjpArgs<T>& g) { return Grads<T>{scan_sum(g.grad, k, !reverse)}; },
                   Saved::nothing,
                   takes_batch([k, reverse](const JvpArgs<T>& j) { return scan_sum(j.tangents[0], k + (j.batch > 0), reverse); }));
}

// The first extreme along an axis (NaN counts as the extreme): its position in [0, n).
template <class T>
std::int64_t first_extreme(const T* p, std::size_t n, std::size_t stride, bool maximum) {
  std::size_t best = 0;
  for (std::size_t j = 0; j < n; ++j) {
    const T v = p[j * stride], b = p[best * stride];
    if (std::isnan(v)) return static_cast<std::int64_t>(j);
    if (maximum ? v > b : v < b) best = j;
  }
  return static_cast<std::int64_t>(best);
}

template <class T>
Index arg_extreme(const char* op, const Tensor<T>& x, std::ptrdiff_t axis, bool keepdims, bool maximum) {
  check_defined<T>(op, {&x});
  const Shape s = x.shape();
  if (s.empty()) throw_shape_error(op, "a scalar (shape ()) has no axis " + std::to_string(axis));
  const std::size_t k = detail::normalize_axis(op, axis, s.size());
  if (s[k] == 0)
    throw_value_error(op, "axis " + std::to_string(k) + " of shape " + shape_str(s) + " is empty: it has no " +
                              (maximum ? "maximum" : "minimum"));
  const AxisSplit a = split_at(s, k);
  Shape out = s;
  if (keepdims) out[k] = 1;
  else out.erase(out.begin() + static_cast<std::ptrdiff_t>(k));
  Index result = Index::from_shape(out);
  const T* src = x.value().data();
  for (std::size_t o = 0; o < a.outer; ++o)
    for (std::size_t i = 0; i < a.inner; ++i)
      result.data()[o * a.inner + i] = first_extreme(src + o * a.n * a.inner + i, a.n, a.inner, maximum);
  return result;
}

template <class T>
std::int64_t arg_extreme(const char* op, const Tensor<T>& x, bool maximum) {
  check_defined<T>(op, {&x});
  if (x.size() == 0) throw_value_error(op, "x of shape " + shape_str(x.shape()) + " is empty: it has no " +
                                               (maximum ? "maximum" : "minimum"));
  return first_extreme(x.value().data(), x.size(), 1, maximum);
}

}  // namespace

namespace detail {

// y.flat[i] = x.flat[positions[i]] (per seed of a batch);  dx = scatter_add_flat(grad);  ty = gather_flat(t)
template <class T>
Tensor<T> gather_flat(FlatIndexNames names, const Tensor<T>& x, Positions positions, const Shape& shape,
                      std::size_t batch) {
  const std::size_t seeds = std::max<std::size_t>(batch, 1), in_count = x.size() / seeds, out_count = positions->size();
  xt::xarray<T> y = empty_array<T>(with_batch(shape, batch));
  for (std::size_t b = 0; b < seeds; ++b) {
    const T* src = x.value().data() + b * in_count;
    T* dst = y.data() + b * out_count;
    for (std::size_t i = 0; i < out_count; ++i) dst[i] = src[(*positions)[i]];
  }
  Shape input_shape = x.shape();
  if (batch > 0) input_shape.erase(input_shape.begin());
  return record<T>(names.gather, {x}, std::move(y), [names, positions, input_shape, batch](const VjpArgs<T>& a) {
    return Grads<T>{scatter_add_flat(names, a.grad, positions, input_shape, batch)};
  }, Saved::nothing, takes_batch([names, positions, shape, batch](const JvpArgs<T>& j) {
    return nested(gather_flat(names, j.tangents[0], positions, shape, merged(batch, j.batch)), batch, j.batch);
  }));
}

// x = zeros(input_shape), x.flat[positions[i]] += grad.flat[i] (per seed of a batch);
//   dgrad = gather_flat(dx);  tx = scatter_add_flat(tgrad)
template <class T>
Tensor<T> scatter_add_flat(FlatIndexNames names, const Tensor<T>& grad, Positions positions, const Shape& input_shape,
                           std::size_t batch) {
  const std::size_t seeds = std::max<std::size_t>(batch, 1), in_count = element_count(input_shape),
                    out_count = positions->size();
  xt::xarray<T> x = xt::zeros<T>(with_batch(input_shape, batch));
  for (std::size_t b = 0; b < seeds; ++b) {
    const T* src = grad.value().data() + b * out_count;
    T* dst = x.data() + b * in_count;
    for (std::size_t i = 0; i < out_count; ++i) dst[(*positions)[i]] += src[i];
  }
  Shape shape = grad.shape();
  if (batch > 0) shape.erase(shape.begin());
  return record<T>(names.scatter, {grad}, std::move(x), [names, positions, shape, batch](const VjpArgs<T>& a) {
    return Grads<T>{gather_flat(names, a.grad, positions, shape, batch)};
  }, Saved::nothing, takes_batch([names, positions, input_shape, batch](const JvpArgs<T>& j) {
    return nested(scatter_add_flat(names, j.tangents[0], positions, input_shape, merged(batch, j.batch)), batch, j.batch);
  }));
}

template Tensor<float> gather_flat(FlatIndexNames, const Tensor<float>&, Positions, const Shape&, std::size_t);
template Tensor<double> gather_flat(FlatIndexNames, const Tensor<double>&, Positions, const Shape&, std::size_t);
template Tensor<float> scatter_add_flat(FlatIndexNames, const Tensor<float>&, Positions, const Shape&, std::size_t);
template Tensor<double> scatter_add_flat(FlatIndexNames, const Tensor<double>&, Positions, const Shape&, std::size_t);

}  // namespace detail

// y = x's slices at index along axis;  dx = grad's slices added back at index;  ty = t's slices at index
template <class T>
Tensor<T> index_select(const Tensor<T>& x, std::ptrdiff_t axis, const std::vector<std::int64_t>& index) {
  constexpr char op[] = "index_select";
  check_defined<T>(op, {&x});
  const Shape s = x.shape();
  if (s.empty()) throw_shape_error(op, "cannot select from a scalar (shape ())");
  const std::size_t k = detail::normalize_axis(op, axis, s.size());
  Shape out = s;
  out[k] = index.size();
  detail::checked_count(op, out);
  std::vector<std::size_t> rows(index.size());
  const auto n = static_cast<std::int64_t>(s[k]);
  for (std::size_t j = 0; j < index.size(); ++j) {
    const std::int64_t v = index[j];
    // The message is built only for an index out of range (not once per element).
    rows[j] = v >= -n && v < n ? static_cast<std::size_t>(v < 0 ? v + n : v)
                               : checked_index(op, v, "position " + std::to_string(j), k, s);
  }
  const AxisSplit a = split_at(s, k);
  auto positions = std::make_shared<std::vector<std::size_t>>();
  positions->reserve(detail::element_count(out));
  for (std::size_t o = 0; o < a.outer; ++o)
    for (const std::size_t r : rows)
      for (std::size_t i = 0; i < a.inner; ++i) positions->push_back((o * a.n + r) * a.inner + i);
  return detail::gather_flat<T>({"index_select", "index_select_backward"}, x, std::move(positions), out);
}

// y = x[..., index[...], ...] along axis, broadcast;  dx = grad added back at the same places;  ty = the same of t
template <class T>
Tensor<T> take_along_axis(const Tensor<T>& x, const Index& index, std::ptrdiff_t axis) {
  constexpr char op[] = "take_along_axis";
  check_defined<T>(op, {&x});
  const Shape xs = x.shape(), is = detail::shape_of(index);
  check_rank(op, xs, is);
  if (xs.empty()) throw_shape_error(op, "cannot take from a scalar (shape ())");
  const std::size_t k = detail::normalize_axis(op, axis, xs.size());
  Shape out = is;
  Strides x_strides = detail::row_major_strides(xs), i_strides = detail::row_major_strides(is);
  x_strides[k] = 0;
  for (std::size_t d = 0; d < xs.size(); ++d) {
    if (d == k || xs[d] == is[d]) continue;
    if (xs[d] != 1 && is[d] != 1)
      throw_shape_error(op, "index shape " + shape_str(is) + " does not broadcast against x shape " + shape_str(xs) +
                                " outside axis " + std::to_string(k) + " (axis " + std::to_string(d) + ": " +
                                std::to_string(is[d]) + " != " + std::to_string(xs[d]) + ")");
    if (xs[d] == 1) x_strides[d] = 0;
    else i_strides[d] = 0;
    out[d] = xs[d] == 1 ? is[d] : xs[d];   // 1 broadcasts, to 0 too
  }
  detail::checked_count(op, out);
  return detail::gather_flat<T>({"take_along_axis", "take_along_axis_backward"}, x,
                                positions_along_axis(op, xs, k, index, out, x_strides, i_strides), out);
}

// y = x[..., index[...], ...] along axis, y of index's shape;  dx = grad added back at the same places;  ty = the same of t
template <class T>
Tensor<T> gather(const Tensor<T>& x, std::ptrdiff_t axis, const Index& index) {
  constexpr char op[] = "gather";
  check_defined<T>(op, {&x});
  const Shape xs = x.shape(), is = detail::shape_of(index);
  check_rank(op, xs, is);
  if (xs.empty()) throw_shape_error(op, "cannot gather from a scalar (shape ())");
  const std::size_t k = detail::normalize_axis(op, axis, xs.size());
  for (std::size_t d = 0; d < xs.size(); ++d)
    if (d != k && is[d] > xs[d])
      throw_shape_error(op, "index shape " + shape_str(is) + " is larger than x shape " + shape_str(xs) +
                                " outside axis " + std::to_string(k) + " (axis " + std::to_string(d) + ": " +
                                std::to_string(is[d]) + " > " + std::to_string(xs[d]) + ")");
  Strides x_strides = detail::row_major_strides(xs);
  x_strides[k] = 0;
  return detail::gather_flat<T>({"gather", "gather_backward"}, x,
                                positions_along_axis(op, xs, k, index, is, x_strides, detail::row_major_strides(is)), is);
}

// y = cond ? a : b (broadcast);  da = sum_to(cond ? grad : 0);  db = sum_to(cond ? 0 : grad);  ty = cond ? ta : tb
template <class T>
Tensor<T> where(const xt::xarray<bool>& cond, const Tensor<T>& a, const Tensor<T>& b) {
  constexpr char op[] = "where";
  check_defined<T>(op, {&a, &b});
  const Shape sc = detail::shape_of(cond), sa = a.shape(), sb = b.shape();
  Shape shape(std::max({sc.size(), sa.size(), sb.size()}), 1);
  for (const Shape* s : {&sc, &sa, &sb})
    for (std::size_t d = 0; d < s->size(); ++d) {
      std::size_t& to = shape[shape.size() - s->size() + d];
      const std::size_t n = (*s)[d];
      if (n == to || n == 1) continue;
      if (to != 1)
        throw_shape_error(op, "cond shape " + shape_str(sc) + ", a shape " + shape_str(sa) + " and b shape " +
                                  shape_str(sb) + " do not broadcast");
      to = n;
    }
  detail::checked_count(op, shape);
  xt::xarray<T> y = xt::where(xt::broadcast(cond, shape), xt::broadcast(a.value(), shape), xt::broadcast(b.value(), shape));
  return record<T>(op, {a, b}, std::move(y), [cond](const VjpArgs<T>& g) {
    const Tensor<T> zero(xt::xarray<T>(T(0)));
    Grads<T> grads(2);
    if (g.needs_grad(0)) grads[0] = sum_to(tapegrad::where<T>(cond, g.grad, zero), g.input_shape(0));
    if (g.needs_grad(1)) grads[1] = sum_to(tapegrad::where<T>(cond, zero, g.grad), g.input_shape(1));
    return grads;
  }, Saved::nothing, takes_batch([cond](const JvpArgs<T>& j) {
    const Tensor<T> zero(xt::xarray<T>(T(0)));
    const auto tangent = [&j, &zero](std::size_t i) {
      return !j.has_tangent(i) ? zero : j.batch > 0 ? detail::lift_batch(j.tangents[i], j.output.dim()) : j.tangents[i];
    };
    const Tensor<T> t = tapegrad::where<T>(cond, tangent(0), tangent(1));
    const Shape shape = detail::with_batch(j.output.shape(), j.batch);
    return t.shape() == shape ? t : broadcast_to(t, shape);
  }));
}

template <class T>
Index argmax(const Tensor<T>& x, std::ptrdiff_t axis, bool keepdims) {
  return arg_extreme("argmax", x, axis, keepdims, true);
}
template <class T>
Index argmin(const Tensor<T>& x, std::ptrdiff_t axis, bool keepdims) {
  return arg_extreme("argmin", x, axis, keepdims, false);
}
template <class T>
std::int64_t argmax(const Tensor<T>& x) {
  return arg_extreme("argmax", x, true);
}
template <class T>
std::int64_t argmin(const Tensor<T>& x) {
  return arg_extreme("argmin", x, false);
}

// y_i = x_0 + ... + x_i along axis;  dx_i = grad_i + ... + grad_last;  ty = cumsum(t)
template <class T>
Tensor<T> cumsum(const Tensor<T>& x, std::ptrdiff_t axis) {
  constexpr char op[] = "cumsum";
  check_defined<T>(op, {&x});
  if (x.dim() == 0) throw_shape_error(op, "a scalar (shape ()) has no axis " + std::to_string(axis));
  return scan_sum(x, detail::normalize_axis(op, axis, x.dim()), false);
}

// reshape each to have a 1 at axis, then concat (their own VJPs and rules)
template <class T>
Tensor<T> stack(const std::vector<Tensor<T>>& xs, std::ptrdiff_t axis) {
  constexpr char op[] = "stack";
  if (xs.empty()) throw_value_error(op, "needs at least one tensor");
  check_defined(op, xs);
  const Shape first = xs[0].shape();
  for (std::size_t i = 1; i < xs.size(); ++i)
    if (xs[i].shape() != first)
      throw_shape_error(op, "input " + std::to_string(i) + " of shape " + shape_str(xs[i].shape()) +
                                " does not match input 0 of shape " + shape_str(first));
  const std::size_t k = detail::normalize_axis(op, axis, first.size() + 1);
  Shape with_axis = first;
  with_axis.insert(with_axis.begin() + static_cast<std::ptrdiff_t>(k), 1);
  std::vector<Tensor<T>> pieces;
  pieces.reserve(xs.size());
  for (const Tensor<T>& x : xs) pieces.push_back(reshape(x, with_axis));
  return concat(pieces, static_cast<std::ptrdiff_t>(k));
}

// slices of x (their own VJPs and rules)
template <class T>
std::vector<Tensor<T>> split(const Tensor<T>& x, const std::vector<std::size_t>& sizes, std::ptrdiff_t axis) {
  constexpr char op[] = "split";
  check_defined<T>(op, {&x});
  const Shape s = x.shape();
  if (s.empty()) throw_shape_error(op, "cannot split a scalar (shape ())");
  const std::size_t k = detail::normalize_axis(op, axis, s.size());
  std::size_t total = 0;
  std::string list;
  for (const std::size_t n : sizes) {
    total += std::min(n, detail::max_elements);
    list += (list.empty() ? "" : ", ") + std::to_string(n);
  }
  if (total != s[k])
    throw_value_error(op, "sizes [" + list + "] do not add up to axis " + std::to_string(k) + " of shape " +
                              shape_str(s) + " (" + std::to_string(s[k]) + ")");
  std::vector<Tensor<T>> pieces;
  std::ptrdiff_t at = 0;
  for (const std::size_t n : sizes) {
    pieces.push_back(slice(x, static_cast<std::ptrdiff_t>(k), at, at + static_cast<std::ptrdiff_t>(n)));
    at += static_cast<std::ptrdiff_t>(n);
  }
  return pieces;
}

template <class T>
std::vector<Tensor<T>> chunk(const Tensor<T>& x, std::size_t chunks, std::ptrdiff_t axis) {
  constexpr char op[] = "chunk";
  check_defined<T>(op, {&x});
  if (chunks == 0) throw_value_error(op, "chunks must be >= 1, got 0");
  const Shape s = x.shape();
  if (s.empty()) throw_shape_error(op, "cannot split a scalar (shape ())");
  const std::size_t n = s[detail::normalize_axis(op, axis, s.size())];
  const std::size_t size = std::max<std::size_t>((n + chunks - 1) / chunks, 1);
  std::vector<std::size_t> sizes;
  for (std::size_t at = 0; at < n; at += size) sizes.push_back(std::min(size, n - at));
  if (sizes.empty()) sizes.push_back(0);   // an empty axis: one empty piece
  return split(x, sizes, axis);
}

template Tensor<float> index_select(const Tensor<float>&, std::ptrdiff_t, const std::vector<std::int64_t>&);
template Tensor<float> take_along_axis(const Tensor<float>&, const Index&, std::ptrdiff_t);
template Tensor<float> gather(const Tensor<float>&, std::ptrdiff_t, const Index&);
template Tensor<float> where(const xt::xarray<bool>&, const Tensor<float>&, const Tensor<float>&);
template Index argmax(const Tensor<float>&, std::ptrdiff_t, bool);
template Index argmin(const Tensor<float>&, std::ptrdiff_t, bool);
template std::int64_t argmax(const Tensor<float>&);
template std::int64_t argmin(const Tensor<float>&);
template Tensor<float> cumsum(const Tensor<float>&, std::ptrdiff_t);
template Tensor<float> stack(const std::vector<Tensor<float>>&, std::ptrdiff_t);
template std::vector<Tensor<float>> split(const Tensor<float>&, const std::vector<std::size_t>&, std::ptrdiff_t);
template std::vector<Tensor<float>> chunk(const Tensor<float>&, std::size_t, std::ptrdiff_t);
template Tensor<double> index_select(const Tensor<double>&, std::ptrdiff_t, const std::vector<std::int64_t>&);
template Tensor<double> take_along_axis(const Tensor<double>&, const Index&, std::ptrdiff_t);
template Tensor<double> gather(const Tensor<double>&, std::ptrdiff_t, const Index&);
template Tensor<double> where(const xt::xarray<bool>&, const Tensor<double>&, const Tensor<double>&);
template Index argmax(const Tensor<double>&, std::ptrdiff_t, bool);
template Index argmin(const Tensor<double>&, std::ptrdiff_t, bool);
template std::int64_t argmax(const Tensor<double>&);
template std::int64_t argmin(const Tensor<double>&);
template Tensor<double> cumsum(const Tensor<double>&, std::ptrdiff_t);
template Tensor<double> stack(const std::vector<Tensor<double>>&, std::ptrdiff_t);
template std::vector<Tensor<double>> split(const Tensor<double>&, const std::vector<std::size_t>&, std::ptrdiff_t);
template std::vector<Tensor<double>> chunk(const Tensor<double>&, std::size_t, std::ptrdiff_t);

}  // namespace tapegrad
