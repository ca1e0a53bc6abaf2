#include "nn.hpp"

#include <cmath>

#include "elementwise.hpp"
#include "../core/forward.hpp"
#include "kernels.hpp"
#include "reduce.hpp"
#include "shape.hpp"

namespace tapegrad {

namespace {

// x minus its maximum along axis. The maximum is a constant: shifting every element of a slice by
// the same amount changes neither softmax nor log_softmax, so no gradient flows through it.
// Returns the maximum (kept dims) through `max_out`, for logsumexp to add back.
template <class T>
Tensor<T> shifted(const std::string& op, const Tensor<T>& x, std::ptrdiff_t axis, Tensor<T>* max_out = nullptr) {
  if (x.dim() == 0) throw_shape_error(op, "needs at least one axis, got shape ()");
  detail::normalize_axis(op, axis, x.dim());
  Tensor<T> m;
  {
    NoGrad constant;                   // no gradient
    detail::NoTangents constant_too;   // and no tangent
    m = max(x, axis, true);
  }
  if (max_out) *max_out = m;
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

template <class T>
Tensor<T> logsumexp(const Tensor<T>& x, std::ptrdiff_t axis, bool keepdims) {
  constexpr char op[] = "logsumexp";
  check_defined<T>(op, {&x});
  Tensor<T> m;
  const Tensor<T> z = shifted(op, x, axis, &m);
  const Tensor<T> y = log(sum(exp(z), {axis}, true)) + m;
  if (keepdims) return y;
  Shape s = x.shape();
  s.erase(s.begin() + detail::normalize_axis(op, axis, x.dim()));
  return reshape(y, s);
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
