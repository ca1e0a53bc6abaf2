#include "nn.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "elementwise.hpp"
#include "../core/forward.hpp"
#include "kernels.hpp"
#include "vector_math.hpp"
#include "reduce.hpp"
#include "shape.hpp"

namespace tapegrad {

namespace {

// x minus its maximum along axis. The maximum is a constant: shifting every element of a slice by
// the same amount changes neither softmax nor log_softmax, so no gradient flows through it.
template <class T>
Tensor<T> shifted(const std::string& op, const Tensor<T>& x, std::ptrdiff_t axis) {
  if (x.dim() == 0) throw_shape_error(op, "needs at least one axis, got shape ()");
  detail::normalize_axis(op, axis, x.dim());
  Tensor<T> m;
  {
    NoGrad constant;                   // no gradient
    detail::NoTangents constant_too;   // and no tangent
    m = max(x, axis, true);
  }
  return x - m;
}

}  // namespace

template <class T>
Tensor<T> softmax(const Tensor<T>& x, std::ptrdiff_t axis) {
  constexpr char op[] = "softmax";
  check_defined<T>(op, {&x});
  const Tensor<T> e = exp(shifted(op, x, axis));
  return e / sum(e, {axis}, true);
}

template <class T>
Tensor<T> log_softmax(const Tensor<T>& x, std::ptrdiff_t axis) {
  constexpr char op[] = "log_softmax";
  check_defined<T>(op, {&x});
  const Tensor<T> z = shifted(op, x, axis);
  return z - log(sum(exp(z), {axis}, true));
}

namespace {

// The maximum of a row, NaN if any element is NaN, -inf if empty: eight running maxima the
// compiler keeps in vector registers.
template <class T>
T row_max(const T* row, std::size_t n) {
  T lanes[8];
  std::fill(lanes, lanes + 8, -std::numeric_limits<T>::infinity());
  bool nan = false;
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (std::size_t j = 0; j < 8; ++j) {
      lanes[j] = row[i + j] > lanes[j] ? row[i + j] : lanes[j];
      nan = nan || row[i + j] != row[i + j];
    }
  for (; i < n; ++i) {
    lanes[0] = row[i] > lanes[0] ? row[i] : lanes[0];
    nan = nan || row[i] != row[i];
  }
  if (nan) return std::numeric_limits<T>::quiet_NaN();
  return std::max(std::max(std::max(lanes[0], lanes[1]), std::max(lanes[2], lanes[3])),
                  std::max(std::max(lanes[4], lanes[5]), std::max(lanes[6], lanes[7])));
}

// Along the middle axis of x viewed as (outer, n, inner): y = m + log s, s = sum_j exp(x_j - m),
// m the maximum, so that no exp overflows; y = m where m is infinite or NaN (no finite shift
// exists, and the sum is then +inf, 0 or NaN: log gives m). An empty axis gives log 0 = -inf. The
// exponentials go through the vectorised exp a block at a time, summed in double. With `exps`
// (x's size) they are kept there, and 1 / s (1 where m is not finite) in `inverse_sums` (y's
// size): the softmax is then exps * inverse_sums, in every case equal to exp(x - y).
template <class T>
void logsumexp_kernel(const T* x, T* y, std::size_t outer, std::size_t n, std::size_t inner, T* exps,
                      T* inverse_sums) {
  const std::size_t block = inner == 1 ? std::min<std::size_t>(n, 2048) : inner;
  std::vector<T> top(inner), buffer(exps ? 0 : block);
  std::vector<double> sums(inner);
  for (std::size_t o = 0; o < outer; ++o) {
    const T* slab = x + o * n * inner;
    T* kept = exps ? exps + o * n * inner : nullptr;
    std::fill(sums.begin(), sums.end(), 0.0);
    if (inner == 1) {   // one contiguous row: blocks of it
      top[0] = row_max(slab, n);
      for (std::size_t j = 0; j < n; j += block) {
        const std::size_t len = std::min(block, n - j);
        T* shifted = kept ? kept + j : buffer.data();
        for (std::size_t k = 0; k < len; ++k) shifted[k] = slab[j + k] - top[0];
        detail::vector_exp(shifted, shifted, len);
        sums[0] += detail::row_sum(shifted, len);
      }
    } else {   // row after row of inner elements
      std::fill(top.begin(), top.end(), -std::numeric_limits<T>::infinity());
      for (std::size_t j = 0; j < n; ++j)
        for (std::size_t i = 0; i < inner; ++i) {
          const T v = slab[j * inner + i];
          if (v > top[i] || std::isnan(v)) top[i] = v;   // a NaN stays
        }
      for (std::size_t j = 0; j < n; ++j) {
        const T* row = slab + j * inner;
        T* shifted = kept ? kept + j * inner : buffer.data();
        for (std::size_t i = 0; i < inner; ++i) shifted[i] = row[i] - top[i];
        detail::vector_exp(shifted, shifted, inner);
        for (std::size_t i = 0; i < inner; ++i) sums[i] += shifted[i];
      }
    }
    for (std::size_t i = 0; i < inner; ++i) {
      const bool finite = std::isfinite(top[i]);
      y[o * inner + i] = finite ? top[i] + static_cast<T>(std::log(sums[i])) : top[i];
      if (inverse_sums) inverse_sums[o * inner + i] = finite ? static_cast<T>(1.0 / sums[i]) : T(1);
    }
  }
}

// dx = grad * exps * inverse_sums, grad and inverse_sums broadcast along the middle axis: the VJP
// of logsumexp from what its forward kept, in one pass.
template <class T>
xt::xarray<T> softmax_times_grad(const xt::xarray<T>& exps, const xt::xarray<T>& inverse_sums, const T* grad,
                                 std::size_t outer, std::size_t n, std::size_t inner) {
  xt::xarray<T> dx = detail::empty_array<T>(detail::shape_of(exps));
  const T* e = exps.data();
  const T* inv = inverse_sums.data();
  T* out = dx.data();
  for (std::size_t o = 0; o < outer; ++o) {
    if (inner == 1) {   // a contiguous row, one factor
      const T factor = inv[o] * grad[o];
      for (std::size_t j = 0; j < n; ++j) out[o * n + j] = e[o * n + j] * factor;
      continue;
    }
    for (std::size_t j = 0; j < n; ++j)
      for (std::size_t i = 0; i < inner; ++i) {
        const std::size_t at = (o * n + j) * inner + i;
        out[at] = e[at] * (inv[o * inner + i] * grad[o * inner + i]);
      }
  }
  return dx;
}

}  // namespace

// y = log sum_axis exp(x);  dx = grad * exp(x - y) (the softmax; grad and y broadcast along the
// axis);  ty = sum_axis(exp(x - y) * t). One op, whose forward reads x twice. Where it is recorded
// it keeps exp(x - max) and 1 / sum: a backward that is not itself recorded (nor carries
// tangents) computes the softmax from them, without the exponentials again; one that is takes
// the differentiable path.
template <class T>
Tensor<T> logsumexp(const Tensor<T>& x, std::ptrdiff_t axis, bool keepdims) {
  constexpr char op[] = "logsumexp";
  check_defined<T>(op, {&x});
  const Shape shape = x.shape();
  if (shape.empty()) throw_shape_error(op, "needs at least one axis, got shape ()");
  const std::size_t k = detail::normalize_axis(op, axis, shape.size());
  std::size_t outer = 1, inner = 1;
  for (std::size_t d = 0; d < k; ++d) outer *= shape[d];
  for (std::size_t d = k + 1; d < shape.size(); ++d) inner *= shape[d];
  const std::size_t n = shape[k];
  Shape keep = shape, dropped = shape;
  keep[k] = 1;
  dropped.erase(dropped.begin() + static_cast<std::ptrdiff_t>(k));
  const Shape out_shape = keepdims ? keep : dropped;
  xt::xarray<T> y = detail::empty_array<T>(out_shape);
  struct Kept {
    xt::xarray<T> exps, inverse_sums;
  };
  std::shared_ptr<Kept> kept;   // null where no entry is appended
  const Tensor<T>* input = &x;
  if (detail::appends_entry<T>({&input, 1}))
    kept = std::make_shared<Kept>(Kept{detail::empty_array<T>(shape), detail::empty_array<T>(keep)});
  logsumexp_kernel(x.value().data(), y.data(), outer, n, inner, kept ? kept->exps.data() : nullptr,
                   kept ? kept->inverse_sums.data() : nullptr);
  return record<T>(op, {x}, std::move(y),
                   [keep, outer, n, inner, kept = std::shared_ptr<const Kept>(std::move(kept))](const VjpArgs<T>& g) {
                     if (kept && !is_recording() && !detail::forward_active())
                       return Gradients<T>{Tensor<T>(softmax_times_grad(kept->exps, kept->inverse_sums,
                                                                        g.grad.value().data(), outer, n, inner))};
                     return Gradients<T>{exp(g.input(0) - reshape(g.output, keep)) * reshape(g.grad, keep)};
                   }, Saved::inputs_and_output, takes_batch([keep, k, out_shape](const JvpArgs<T>& j) {
                     const Tensor<T> p = exp(j.inputs[0] - reshape(j.output, keep));   // the softmax
                     const auto batched_axis = static_cast<std::ptrdiff_t>(k + (j.batch > 0 ? 1 : 0));
                     const Tensor<T> t = sum(p * j.tangents[0], {batched_axis}, true);
                     return reshape(t, detail::with_batch(out_shape, j.batch));
                   }));
}

namespace {

// The mean, the sum, or the terms themselves.
template <class T>
Tensor<T> reduce(const Tensor<T>& terms, Reduction reduction) {
  switch (reduction) {
    case Reduction::mean: return mean(terms);
    case Reduction::sum: return sum(terms);
    case Reduction::none: return terms;
  }
  return terms;
}

template <class T>
void check_same_shape(const char* op, const char* a, const Tensor<T>& x, const char* b, const Tensor<T>& y) {
  if (x.shape() != y.shape())
    throw_shape_error(op, std::string(a) + " shape " + shape_str(x.shape()) + " and " + b + " shape " + shape_str(y.shape()) +
                              " differ");
}

// -sum_k C_ik logp_ik per row, reduced: C = (1 - eps) w_y onehot(y) + (eps / K) w (rows of
// skipped samples 0), the mean divided by the sum of w_y over the samples kept. Everything is
// checked before log_probs() records anything.
template <class T, class LogProbs>
Tensor<T> class_loss(const char* op, const char* input, const Shape& s, LogProbs log_probs,
                     const std::vector<std::int64_t>& labels, const CrossEntropyOptions& o) {
  if (s.size() != 2) throw_shape_error(op, std::string(input) + " must be 2-D (N, K), got shape " + shape_str(s));
  if (labels.size() != s[0])
    throw_shape_error(op, "got " + std::to_string(labels.size()) + " labels for " + input + " of shape " + shape_str(s) +
                              " (one label per row)");
  const std::size_t k = s[1];
  if (!o.weight.empty() && o.weight.size() != k)
    throw_value_error(op, "weight has " + std::to_string(o.weight.size()) + " values for " + std::to_string(k) + " classes");
  for (std::size_t c = 0; c < o.weight.size(); ++c)
    if (!(o.weight[c] >= 0 && std::isfinite(o.weight[c])))
      throw_value_error(op, "weight " + number_str(o.weight[c]) + " of class " + std::to_string(c) + " is not finite and >= 0");
  if (!(o.label_smoothing >= 0 && o.label_smoothing < 1))
    throw_value_error(op, "label_smoothing must be in [0, 1), got " + number_str(o.label_smoothing));
  const auto weight_of = [&o](std::size_t c) { return o.weight.empty() ? 1.0 : o.weight[c]; };
  xt::xarray<T> coefficients = xt::zeros<T>(s);
  double kept = 0;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const std::int64_t y = labels[i];
    if (y == o.ignore_index) continue;
    if (y < 0 || y >= static_cast<std::int64_t>(k))
      throw_value_error(op, "label " + std::to_string(y) + " at position " + std::to_string(i) + " is out of range for " +
                                std::to_string(k) + " classes");
    kept += weight_of(std::size_t(y));
    for (std::size_t c = 0; c < k; ++c) coefficients(i, c) = static_cast<T>(o.label_smoothing / double(k) * weight_of(c));
    coefficients(i, std::size_t(y)) += static_cast<T>((1 - o.label_smoothing) * weight_of(std::size_t(y)));
  }
  const Tensor<T> weighted = log_probs() * Tensor<T>(std::move(coefficients));
  switch (o.reduction) {
    case Reduction::none: return neg(sum(weighted, {1}));
    case Reduction::sum: return neg(sum(weighted));
    case Reduction::mean: break;
  }
  return sum(weighted) * (kept > 0 ? static_cast<T>(-1 / kept) : T(0));
}

}  // namespace

template <class T>
Tensor<T> mse_loss(const Tensor<T>& pred, const Tensor<T>& target, Reduction reduction) {
  constexpr char op[] = "mse_loss";
  check_defined<T>(op, {&pred, &target});
  check_same_shape(op, "pred", pred, "target", target);
  const Tensor<T> d = pred - target;
  return reduce(d * d, reduction);
}

// q = min(|d|, delta):  q^2 / 2 + delta (|d| - q)
template <class T>
Tensor<T> huber_loss(const Tensor<T>& pred, const Tensor<T>& target, scalar_t<T> delta, Reduction reduction) {
  constexpr char op[] = "huber_loss";
  check_defined<T>(op, {&pred, &target});
  check_same_shape(op, "pred", pred, "target", target);
  if (!(delta > 0 && std::isfinite(delta))) throw_value_error(op, "delta must be finite and > 0, got " + number_str(delta));
  const Tensor<T> a = abs(pred - target);
  const Tensor<T> q = clamp(a, T(0), delta);
  return reduce(q * q * T(0.5) + (a - q) * delta, reduction);
}

// (1 - y) x + (1 + (pw - 1) y) softplus(-x)
template <class T>
Tensor<T> binary_cross_entropy_with_logits(const Tensor<T>& logits, const Tensor<T>& targets, Reduction reduction,
                                           scalar_t<T> pos_weight) {
  constexpr char op[] = "binary_cross_entropy_with_logits";
  check_defined<T>(op, {&logits, &targets});
  check_same_shape(op, "logits", logits, "targets", targets);
  if (!(pos_weight >= 0 && std::isfinite(pos_weight)))
    throw_value_error(op, "pos_weight must be finite and >= 0, got " + number_str(pos_weight));
  const Tensor<T> log_weight = pos_weight == T(1) ? Tensor<T>() : targets * (pos_weight - T(1)) + T(1);
  const Tensor<T> soft = softplus(neg(logits));
  return reduce((T(1) - targets) * logits + (log_weight.defined() ? log_weight * soft : soft), reduction);
}

template <class T>
Tensor<T> cross_entropy(const Tensor<T>& logits, const std::vector<std::int64_t>& labels, const CrossEntropyOptions& options) {
  constexpr char op[] = "cross_entropy";
  check_defined<T>(op, {&logits});
  if (logits.dim() != 2) throw_shape_error(op, "logits must be 2-D (N, K), got shape " + shape_str(logits.shape()));
  return class_loss<T>(op, "logits", logits.shape(), [&] { return log_softmax(logits, 1); }, labels, options);
}

template <class T>
Tensor<T> nll_loss(const Tensor<T>& log_probs, const std::vector<std::int64_t>& labels, const CrossEntropyOptions& options) {
  constexpr char op[] = "nll_loss";
  check_defined<T>(op, {&log_probs});
  if (options.label_smoothing != 0)
    throw_value_error(op, "label_smoothing is cross_entropy's (it needs the logits), got " + number_str(options.label_smoothing));
  return class_loss<T>(op, "log_probs", log_probs.shape(), [&] { return log_probs; }, labels, options);
}

template Tensor<float> softmax(const Tensor<float>&, std::ptrdiff_t);
template Tensor<float> log_softmax(const Tensor<float>&, std::ptrdiff_t);
template Tensor<float> logsumexp(const Tensor<float>&, std::ptrdiff_t, bool);
template Tensor<float> mse_loss(const Tensor<float>&, const Tensor<float>&, Reduction);
template Tensor<float> huber_loss(const Tensor<float>&, const Tensor<float>&, float, Reduction);
template Tensor<float> binary_cross_entropy_with_logits(const Tensor<float>&, const Tensor<float>&, Reduction, float);
template Tensor<float> cross_entropy(const Tensor<float>&, const std::vector<std::int64_t>&, const CrossEntropyOptions&);
template Tensor<float> nll_loss(const Tensor<float>&, const std::vector<std::int64_t>&, const CrossEntropyOptions&);
template Tensor<double> softmax(const Tensor<double>&, std::ptrdiff_t);
template Tensor<double> log_softmax(const Tensor<double>&, std::ptrdiff_t);
template Tensor<double> logsumexp(const Tensor<double>&, std::ptrdiff_t, bool);
template Tensor<double> mse_loss(const Tensor<double>&, const Tensor<double>&, Reduction);
template Tensor<double> huber_loss(const Tensor<double>&, const Tensor<double>&, double, Reduction);
template Tensor<double> binary_cross_entropy_with_logits(const Tensor<double>&, const Tensor<double>&, Reduction, double);
template Tensor<double> cross_entropy(const Tensor<double>&, const std::vector<std::int64_t>&, const CrossEntropyOptions&);
template Tensor<double> nll_loss(const Tensor<double>&, const std::vector<std::int64_t>&, const CrossEntropyOptions&);

}  // namespace tapegrad
