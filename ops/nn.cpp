#include "nn.hpp"

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

template <class T>
Tensor<T> mse_loss(const Tensor<T>& pred, const Tensor<T>& target, Reduction reduction) {
  constexpr char op[] = "mse_loss";
  check_defined<T>(op, {&pred, &target});
  if (pred.shape() != target.shape())
    throw_shape_error(op, "pred shape " + shape_str(pred.shape()) + " and target shape " +
                                      shape_str(target.shape()) + " differ");
  const Tensor<T> d = pred - target;
  return reduction == Reduction::mean ? mean(d * d) : sum(d * d);
}

template <class T>
Tensor<T> cross_entropy(const Tensor<T>& logits, const std::vector<std::size_t>& labels, Reduction reduction) {
  constexpr char op[] = "cross_entropy";
  check_defined<T>(op, {&logits});
  const Shape s = logits.shape();
  if (s.size() != 2)
    throw_shape_error(op, "logits must be 2-D (N, K), got shape " + shape_str(s));
  if (labels.size() != s[0])
    throw_shape_error(op, "got " + std::to_string(labels.size()) + " labels for logits of shape " +
                                           shape_str(s) + " (one label per row)");
  xt::xarray<T> onehot = xt::zeros<T>(s);
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] >= s[1])
      throw_value_error(op, "label " + std::to_string(labels[i]) + " at index " + std::to_string(i) +
                                             " is out of range for " + std::to_string(s[1]) + " classes");
    onehot(i, labels[i]) = T(1);
  }
  const Tensor<T> picked = sum(log_softmax(logits, 1) * Tensor<T>(std::move(onehot)));
  return reduction == Reduction::mean ? picked * (T(-1) / static_cast<T>(s[0])) : neg(picked);
}

template Tensor<float> softmax(const Tensor<float>&, std::ptrdiff_t);
template Tensor<float> log_softmax(const Tensor<float>&, std::ptrdiff_t);
template Tensor<float> logsumexp(const Tensor<float>&, std::ptrdiff_t, bool);
template Tensor<float> mse_loss(const Tensor<float>&, const Tensor<float>&, Reduction);
template Tensor<float> cross_entropy(const Tensor<float>&, const std::vector<std::size_t>&, Reduction);
template Tensor<double> softmax(const Tensor<double>&, std::ptrdiff_t);
template Tensor<double> log_softmax(const Tensor<double>&, std::ptrdiff_t);
template Tensor<double> logsumexp(const Tensor<double>&, std::ptrdiff_t, bool);
template Tensor<double> mse_loss(const Tensor<double>&, const Tensor<double>&, Reduction);
template Tensor<double> cross_entropy(const Tensor<double>&, const std::vector<std::size_t>&, Reduction);

}  // namespace tapegrad
