#include "optim.hpp"

#include <algorithm>
#include <cmath>

namespace tapegrad {

namespace {
void check_range(const char* op, const char* name, double value, double lo, double hi, bool hi_open) {
  if (!(value >= lo && (hi_open ? value < hi : value <= hi)))
    throw_value_error(op, std::string(name) + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                              (hi_open ? ")" : "]") + ", got " + std::to_string(value));
}
constexpr double unbounded = 1e300;
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

template <class T>
void SGD<T>::step() {
  const T lr = T(lr_), mu = T(momentum_), wd = T(weight_decay_);
  for (std::size_t i = 0; i < this->parameters_.size(); ++i) {
    Tensor<T>& p = this->parameters_[i];
    if (!p.has_grad()) continue;
    xt::xarray<T> g = p.grad();
    if (wd != T(0)) g += wd * p.value();
    if (mu != T(0)) {
      if (started_[i]) {
        velocity_[i] = mu * velocity_[i] + g;
      } else {
        velocity_[i] = g;
        started_[i] = true;
      }
      if (nesterov_)
        g += mu * velocity_[i];
      else
        g = velocity_[i];
    }
    p.mutable_value() -= lr * g;
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

template <class T>
void Adam<T>::step() {
  for (std::size_t i = 0; i < this->parameters_.size(); ++i) {
    Tensor<T>& p = this->parameters_[i];
    if (!p.has_grad()) continue;
    xt::xarray<T> g = p.grad();
    if (weight_decay_ != 0) g += T(weight_decay_) * p.value();
    if (steps_[i]++ == 0) {
      m_[i] = xt::zeros<T>(g.shape());
      v_[i] = xt::zeros<T>(g.shape());
    }
    m_[i] = T(beta1_) * m_[i] + T(1 - beta1_) * g;
    v_[i] = T(beta2_) * v_[i] + T(1 - beta2_) * g * g;
    const double t = double(steps_[i]);
    const T c1 = T(1 - std::pow(beta1_, t)), c2 = T(1 - std::pow(beta2_, t));
    p.mutable_value() -= T(lr_) * (m_[i] / c1) / (xt::sqrt(v_[i] / c2) + T(eps_));
  }
}

template class Optimizer<float>;
template class Optimizer<double>;
template class SGD<float>;
template class SGD<double>;
template class Adam<float>;
template class Adam<double>;

}  // namespace tapegrad
