#include "optim.hpp"

#include <algorithm>
#include <cmath>

#include "../core/parallel.hpp"

namespace tapegrad {

namespace {
void check_range(const char* op, const char* name, double value, double lo, double hi, bool hi_open) {
  if (!(value >= lo && (hi_open ? value < hi : value <= hi)))
    throw_value_error(op, std::string(name) + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                              (hi_open ? ")" : "]") + ", got " + std::to_string(value));
}
constexpr double unbounded = 1e300;

// Before a step changes anything: every gradient still fits its parameter (mutable_value() can
// reshape a parameter after backward), so a step updates all parameters or none.
template <class T>
void check_gradients(const char* op, const std::vector<Tensor<T>>& parameters) {
  for (std::size_t i = 0; i < parameters.size(); ++i) {
    const Tensor<T>& p = parameters[i];
    if (p.has_grad() && p.size() != p.grad().size())
      throw_shape_error(op, "parameter " + std::to_string(i) + " of shape " + shape_str(p.shape()) +
                                " no longer matches its gradient's " + std::to_string(p.grad().size()) + " elements");
  }
}
}  // namespace

template <class T>
Optimizer<T>::Optimizer(std::vector<Tensor<T>> parameters) {
  for (std::size_t i = 0; i < parameters.size(); ++i) {
    if (!parameters[i].defined()) throw_usage_error("Optimizer", "parameter " + std::to_string(i) + " is undefined");
    const bool seen = std::any_of(parameters_.begin(), parameters_.end(),
                                  [&](const Tensor<T>& p) { return p.impl() == parameters[i].impl(); });
    if (!seen) parameters_.push_back(parameters[i]);
  }
}

template <class T>
void Optimizer<T>::zero_grad() {
  for (auto& p : parameters_) p.clear_grad();
}

template <class T>
SGD<T>::SGD(std::vector<Tensor<T>> parameters, double lr, double momentum, double weight_decay, bool nesterov)
    : Optimizer<T>(std::move(parameters)),
      lr_(lr), momentum_(momentum), weight_decay_(weight_decay), nesterov_(nesterov),
      velocity_(this->parameters_.size()), started_(this->parameters_.size(), false) {
  check_range("SGD", "lr", lr, 0, unbounded, false);
  check_range("SGD", "momentum", momentum, 0, 1, true);
  check_range("SGD", "weight_decay", weight_decay, 0, unbounded, false);
  if (nesterov && momentum == 0) throw_value_error("SGD", "nesterov needs momentum > 0");
}

// One pass per parameter over raw arrays, no temporaries:
//   g = grad + wd p;  v = mu v + g (v = g on the first step);  g = nesterov ? g + mu v : v;  p -= lr g
template <class T>
void SGD<T>::step() {
  check_gradients("SGD", this->parameters_);
  const T lr = T(lr_), mu = T(momentum_), wd = T(weight_decay_);
  for (std::size_t i = 0; i < this->parameters_.size(); ++i) {
    Tensor<T>& p = this->parameters_[i];
    if (!p.has_grad()) continue;
    const xt::xarray<T>& grad = p.grad();
    const std::size_t n = grad.size();
    const T* g = grad.data();
    T* w = p.mutable_value().data();
    if (mu == T(0)) {
      detail::parallel_elements(n, [&](std::size_t begin, std::size_t end) {
        for (std::size_t j = begin; j < end; ++j) w[j] -= lr * (g[j] + wd * w[j]);
      });
      continue;
    }
    // One loop per case, with no branch inside, so that each vectorizes.
    const T first = started_[i] ? T(1) : T(0);   // v = first * mu v + g: v starts as g
    if (!started_[i]) velocity_[i] = xt::zeros<T>(grad.shape());
    started_[i] = true;
    T* v = velocity_[i].data();
    const T decay = mu * first;
    const bool nesterov = nesterov_;
    detail::parallel_elements(n, [&](std::size_t begin, std::size_t end) {
      if (nesterov) {
        for (std::size_t j = begin; j < end; ++j) {
          const T step = g[j] + wd * w[j];
          const T vj = decay * v[j] + step;
          v[j] = vj;
          w[j] -= lr * (step + mu * vj);
        }
      } else {
        for (std::size_t j = begin; j < end; ++j) {
          const T vj = decay * v[j] + g[j] + wd * w[j];
          v[j] = vj;
          w[j] -= lr * vj;
        }
      }
    });
  }
}

template <class T>
Adam<T>::Adam(std::vector<Tensor<T>> parameters, double lr, double beta1, double beta2, double eps, double weight_decay)
    : Optimizer<T>(std::move(parameters)),
      lr_(lr), beta1_(beta1), beta2_(beta2), eps_(eps), weight_decay_(weight_decay),
      m_(this->parameters_.size()), v_(this->parameters_.size()), steps_(this->parameters_.size(), 0) {
  check_range("Adam", "lr", lr, 0, unbounded, false);
  check_range("Adam", "beta1", beta1, 0, 1, true);
  check_range("Adam", "beta2", beta2, 0, 1, true);
  if (!(eps > 0)) throw_value_error("Adam", "eps must be > 0, got " + std::to_string(eps));
  check_range("Adam", "weight_decay", weight_decay, 0, unbounded, false);
}

// One pass per parameter over raw arrays, no temporaries:
//   g = grad + wd p;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
//   p -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
template <class T>
void Adam<T>::step() {
  check_gradients("Adam", this->parameters_);
  const T b1 = T(beta1_), b2 = T(beta2_), wd = T(weight_decay_), lr = T(lr_), eps = T(eps_);
  const T one_minus_b1 = T(1 - beta1_), one_minus_b2 = T(1 - beta2_);
  for (std::size_t i = 0; i < this->parameters_.size(); ++i) {
    Tensor<T>& p = this->parameters_[i];
    if (!p.has_grad()) continue;
    const xt::xarray<T>& grad = p.grad();
    const std::size_t n = grad.size();
    if (steps_[i]++ == 0) {
      m_[i] = xt::zeros<T>(grad.shape());
      v_[i] = xt::zeros<T>(grad.shape());
    }
    const double t = double(steps_[i]);
    const T c1 = T(1 - std::pow(beta1_, t)), c2 = T(1 - std::pow(beta2_, t));
    const T* g = grad.data();
    T* m = m_[i].data();
    T* v = v_[i].data();
    T* w = p.mutable_value().data();
    detail::parallel_elements(n, [&](std::size_t begin, std::size_t end) {
      for (std::size_t j = begin; j < end; ++j) {
        const T gj = g[j] + wd * w[j];
        m[j] = b1 * m[j] + one_minus_b1 * gj;
        v[j] = b2 * v[j] + one_minus_b2 * gj * gj;
        w[j] -= lr * (m[j] / c1) / (std::sqrt(v[j] / c2) + eps);
      }
    });
  }
}

template class Optimizer<float>;
template class Optimizer<double>;
template class SGD<float>;
template class SGD<double>;
template class Adam<float>;
template class Adam<double>;

}  // namespace tapegrad
