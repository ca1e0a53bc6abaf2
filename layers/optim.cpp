#include "optim.hpp"

#include <algorithm>
#include <cmath>

#include "../core/parallel.hpp"

namespace tapegrad {

namespace {
constexpr double unbounded = 1e300;

void check_range(const std::string& op, const char* name, double value, double lo, double hi, bool hi_open) {
  const bool above_lo = value >= lo;
  if (hi == unbounded ? above_lo && std::isfinite(value) : above_lo && (hi_open ? value < hi : value <= hi)) return;
  const std::string range = hi == unbounded ? " must be finite and >= " + number_str(lo)
                                            : " must be in [" + number_str(lo) + ", " + number_str(hi) + (hi_open ? ")" : "]");
  throw_value_error(op, std::string(name) + range + ", got " + number_str(value));
}

template <class T>
std::vector<ParamGroup<T>> one_group(std::vector<Tensor<T>> parameters) {
  return {ParamGroup<T>{std::move(parameters)}};
}

// "param12.exp_avg" with prefix "param" -> (12, "exp_avg"); nothing if it does not read so.
std::optional<std::pair<std::size_t, std::string>> parse_entry(const std::string& entry, const std::string& prefix) {
  if (entry.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
  std::size_t at = prefix.size(), index = 0;
  const std::size_t first = at;
  while (at < entry.size() && entry[at] >= '0' && entry[at] <= '9' && at - first < 12) index = index * 10 + std::size_t(entry[at++] - '0');
  if (at == first || at >= entry.size() || entry[at] != '.') return std::nullopt;
  return std::make_pair(index, entry.substr(at + 1));
}

double scalar_of(const std::string& op, const std::string& entry, const xt::xarray<double>& a) {
  if (a.dimension() != 0)
    throw_value_error(op, "entry '" + entry + "' has shape " + shape_str(Shape(a.shape().begin(), a.shape().end())) +
                              ", a scalar (shape ()) was expected");
  return a();
}
}  // namespace

template <class T>
Optimizer<T>::Optimizer(std::string name, std::vector<ParamGroup<T>> groups, double lr, double weight_decay,
                        std::vector<std::string> buffer_names)
    : name_(std::move(name)), buffer_names_(std::move(buffer_names)) {
  for (std::size_t g = 0; g < groups.size(); ++g) {
    const Group group{groups[g].lr.value_or(lr), groups[g].weight_decay.value_or(weight_decay)};
    check_range(name_, "lr", group.lr, 0, unbounded, false);
    check_range(name_, "weight_decay", group.weight_decay, 0, unbounded, false);
    groups_.push_back(group);
    for (std::size_t i = 0; i < groups[g].parameters.size(); ++i) {
      const Tensor<T>& p = groups[g].parameters[i];
      if (!p.defined())
        throw_usage_error(name_, "parameter " + std::to_string(i) + " of group " + std::to_string(g) + " is undefined");
      const bool seen = std::any_of(parameters_.begin(), parameters_.end(), [&](const Tensor<T>& q) { return q.impl() == p.impl(); });
      if (seen) continue;
      parameters_.push_back(p);
      group_of_.push_back(g);
    }
  }
  buffers_.assign(parameters_.size(), std::vector<xt::xarray<T>>(buffer_names_.size()));
  steps_.assign(parameters_.size(), 0);
}

template <class T>
void Optimizer<T>::zero_grad() {
  for (auto& p : parameters_) p.clear_grad();
}

template <class T>
double Optimizer<T>::lr(std::size_t group) const {
  if (group >= groups_.size())
    throw_value_error(name_, "group " + std::to_string(group) + " is out of range for " + std::to_string(groups_.size()) + " groups");
  return groups_[group].lr;
}

template <class T>
void Optimizer<T>::set_lr(double lr) {
  check_range(name_, "lr", lr, 0, unbounded, false);
  for (Group& g : groups_) g.lr = lr;
}

template <class T>
void Optimizer<T>::set_lr(std::size_t group, double lr) {
  this->lr(group);   // the range check
  check_range(name_, "lr", lr, 0, unbounded, false);
  groups_[group].lr = lr;
}

template <class T>
double Optimizer<T>::weight_decay(std::size_t group) const {
  lr(group);
  return groups_[group].weight_decay;
}

template <class T>
void Optimizer<T>::check_gradients() const {
  for (std::size_t i = 0; i < parameters_.size(); ++i) {
    const Tensor<T>& p = parameters_[i];
    if (p.has_grad() && p.size() != p.grad().size())
      throw_shape_error(name_, "parameter " + std::to_string(i) + " of shape " + shape_str(p.shape()) +
                                   " no longer matches its gradient's " + std::to_string(p.grad().size()) + " elements");
  }
}

template <class T>
StateDict<double> Optimizer<T>::state_dict() const {
  StateDict<double> state;
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    state.emplace_back("group" + std::to_string(g) + ".lr", xt::xarray<double>(groups_[g].lr));
    state.emplace_back("group" + std::to_string(g) + ".weight_decay", xt::xarray<double>(groups_[g].weight_decay));
  }
  for (std::size_t i = 0; i < parameters_.size(); ++i) {
    if (steps_[i] == 0) continue;
    const std::string prefix = "param" + std::to_string(i) + ".";
    state.emplace_back(prefix + "step", xt::xarray<double>(double(steps_[i])));
    for (std::size_t b = 0; b < buffer_names_.size(); ++b)
      state.emplace_back(prefix + buffer_names_[b], xt::xarray<double>(xt::cast<double>(buffers_[i][b])));
  }
  state.emplace_back("parameters", xt::xarray<double>(double(parameters_.size())));
  return state;
}

template <class T>
void Optimizer<T>::load_state_dict(const StateDict<double>& state) {
  const std::string op = name_ + ".load_state_dict";
  std::vector<Group> groups = groups_;
  std::vector<std::vector<bool>> group_seen(groups_.size(), std::vector<bool>(2, false));
  std::vector<std::size_t> steps(parameters_.size(), 0);
  std::vector<std::vector<const xt::xarray<double>*>> buffers(parameters_.size(),
                                                                std::vector<const xt::xarray<double>*>(buffer_names_.size(), nullptr));
  // Everything is read and checked before anything changes.
  bool counted = false;
  for (const auto& [entry, value] : state) {
    if (entry == "parameters") {
      const double n = scalar_of(op, entry, value);
      if (n != double(parameters_.size()))
        throw_value_error(op, "the state is of " + (n == std::floor(n) && n >= 0 && n < 1e15 ? std::to_string(std::uint64_t(n)) : number_str(n)) +
                                  " parameters, this " + name_ + " has " +
                                  std::to_string(parameters_.size()));
      counted = true;
      continue;
    }
    if (const auto g = parse_entry(entry, "group")) {
      const bool is_lr = g->second == "lr";
      if (g->first >= groups.size() || (!is_lr && g->second != "weight_decay"))
        throw_value_error(op, "entry '" + entry + "' is not part of this " + name_ + "'s state (" +
                                  std::to_string(groups.size()) + " groups)");
      const double v = scalar_of(op, entry, value);
      check_range(op, is_lr ? "lr" : "weight_decay", v, 0, unbounded, false);
      (is_lr ? groups[g->first].lr : groups[g->first].weight_decay) = v;
      group_seen[g->first][is_lr ? 0 : 1] = true;
      continue;
    }
    const auto p = parse_entry(entry, "param");
    if (!p || p->first >= parameters_.size())
      throw_value_error(op, "entry '" + entry + "' is not part of this " + name_ + "'s state (" +
                                std::to_string(parameters_.size()) + " parameters)");
    if (p->second == "step") {
      const double v = scalar_of(op, entry, value);
      if (!(v >= 1 && v <= 9007199254740992.0 && v == std::floor(v)))
        throw_value_error(op, "entry '" + entry + "' is " + number_str(v) + ", not a step count >= 1");
      steps[p->first] = static_cast<std::size_t>(v);
      continue;
    }
    const auto name = std::find(buffer_names_.begin(), buffer_names_.end(), p->second);
    if (name == buffer_names_.end())
      throw_value_error(op, "entry '" + entry + "' is not part of this " + name_ + "'s state");
    const Shape got(value.shape().begin(), value.shape().end()), want = parameters_[p->first].shape();
    if (got != want)
      throw_value_error(op, "entry '" + entry + "' has shape " + shape_str(got) + ", parameter " +
                                std::to_string(p->first) + " has shape " + shape_str(want));
    buffers[p->first][std::size_t(name - buffer_names_.begin())] = &value;
  }
  if (!counted) throw_value_error(op, "no entry for 'parameters' (the parameter count)");
  for (std::size_t g = 0; g < groups.size(); ++g)
    for (std::size_t k = 0; k < 2; ++k)
      if (!group_seen[g][k])
        throw_value_error(op, "no entry for 'group" + std::to_string(g) + (k == 0 ? ".lr'" : ".weight_decay'"));
  for (std::size_t i = 0; i < parameters_.size(); ++i)
    for (std::size_t b = 0; b < buffer_names_.size(); ++b)
      if ((buffers[i][b] != nullptr) != (steps[i] > 0))
        throw_value_error(op, "parameter " + std::to_string(i) + " has " +
                                  (steps[i] > 0 ? "a step count but no '" + buffer_names_[b] + "'"
                                                : "'" + buffer_names_[b] + "' but no step count"));
  groups_ = groups;
  steps_ = steps;
  for (std::size_t i = 0; i < parameters_.size(); ++i)
    for (std::size_t b = 0; b < buffer_names_.size(); ++b)
      buffers_[i][b] = buffers[i][b] ? xt::xarray<T>(xt::cast<T>(*buffers[i][b])) : xt::xarray<T>();
}

template <class T>
SGD<T>::SGD(std::vector<Tensor<T>> parameters, double lr, double momentum, double weight_decay, bool nesterov)
    : SGD(one_group(std::move(parameters)), lr, momentum, weight_decay, nesterov) {}

template <class T>
SGD<T>::SGD(std::vector<ParamGroup<T>> groups, double lr, double momentum, double weight_decay, bool nesterov)
    : Optimizer<T>("SGD", std::move(groups), lr, weight_decay,
                   momentum > 0 ? std::vector<std::string>{"momentum_buffer"} : std::vector<std::string>{}),
      momentum_(momentum), nesterov_(nesterov) {
  check_range("SGD", "momentum", momentum, 0, 1, true);
  if (nesterov && momentum == 0) throw_value_error("SGD", "nesterov needs momentum > 0");
}

// One pass per parameter over raw arrays, no temporaries:
//   g = grad + wd p;  v = mu v + g (v = g on the first step);  g = nesterov ? g + mu v : v;  p -= lr g
template <class T>
void SGD<T>::step() {
  this->check_gradients();
  const T mu = T(momentum_);
  for (std::size_t i = 0; i < this->parameters_.size(); ++i) {
    Tensor<T>& p = this->parameters_[i];
    if (!p.has_grad()) continue;
    const auto& group = this->groups_[this->group_of_[i]];
    const T lr = T(group.lr), wd = T(group.weight_decay);
    const xt::xarray<T>& grad = p.grad();
    const std::size_t n = grad.size();
    const T* g = grad.data();
    T* w = p.mutable_value().data();
    const bool started = this->steps_[i]++ > 0;
    if (mu == T(0)) {
      detail::parallel_elements(n, [&](std::size_t begin, std::size_t end) {
        for (std::size_t j = begin; j < end; ++j) w[j] -= lr * (g[j] + wd * w[j]);
      });
      continue;
    }
    // One loop per case, with no branch inside, so that each vectorizes.
    xt::xarray<T>& velocity = this->buffers_[i][0];
    if (!started) velocity = xt::zeros<T>(grad.shape());
    const T first = started ? T(1) : T(0);   // v = first * mu v + g: v starts as g
    T* v = velocity.data();
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
    : Adam("Adam", one_group(std::move(parameters)), lr, beta1, beta2, eps, weight_decay, false) {}

template <class T>
Adam<T>::Adam(std::vector<ParamGroup<T>> groups, double lr, double beta1, double beta2, double eps, double weight_decay)
    : Adam("Adam", std::move(groups), lr, beta1, beta2, eps, weight_decay, false) {}

template <class T>
Adam<T>::Adam(std::string name, std::vector<ParamGroup<T>> groups, double lr, double beta1, double beta2, double eps,
              double weight_decay, bool decoupled)
    : Optimizer<T>(std::move(name), std::move(groups), lr, weight_decay, {"exp_avg", "exp_avg_sq"}),
      beta1_(beta1), beta2_(beta2), eps_(eps), decoupled_(decoupled) {
  check_range(this->name_, "beta1", beta1, 0, 1, true);
  check_range(this->name_, "beta2", beta2, 0, 1, true);
  if (!(eps > 0)) throw_value_error(this->name_, "eps must be > 0, got " + number_str(eps));
}

// One pass per parameter over raw arrays, no temporaries:
//   [AdamW: p *= 1 - lr wd]  g = grad [+ wd p for Adam];  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
//   p -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
template <class T>
void Adam<T>::step() {
  this->check_gradients();
  const T b1 = T(beta1_), b2 = T(beta2_), eps = T(eps_);
  const T one_minus_b1 = T(1 - beta1_), one_minus_b2 = T(1 - beta2_);
  for (std::size_t i = 0; i < this->parameters_.size(); ++i) {
    Tensor<T>& p = this->parameters_[i];
    if (!p.has_grad()) continue;
    const auto& group = this->groups_[this->group_of_[i]];
    const T lr = T(group.lr);
    const T wd = decoupled_ ? T(0) : T(group.weight_decay);
    const T shrink = decoupled_ ? T(1 - group.lr * group.weight_decay) : T(1);
    const xt::xarray<T>& grad = p.grad();
    const std::size_t n = grad.size();
    if (this->steps_[i]++ == 0) {
      this->buffers_[i][0] = xt::zeros<T>(grad.shape());
      this->buffers_[i][1] = xt::zeros<T>(grad.shape());
    }
    const double t = double(this->steps_[i]);
    const T c1 = T(1 - std::pow(beta1_, t)), c2 = T(1 - std::pow(beta2_, t));
    const T* g = grad.data();
    T* m = this->buffers_[i][0].data();
    T* v = this->buffers_[i][1].data();
    T* w = p.mutable_value().data();
    detail::parallel_elements(n, [&](std::size_t begin, std::size_t end) {
      for (std::size_t j = begin; j < end; ++j) {
        w[j] *= shrink;
        const T gj = g[j] + wd * w[j];
        m[j] = b1 * m[j] + one_minus_b1 * gj;
        v[j] = b2 * v[j] + one_minus_b2 * gj * gj;
        w[j] -= lr * (m[j] / c1) / (std::sqrt(v[j] / c2) + eps);
      }
    });
  }
}

template <class T>
AdamW<T>::AdamW(std::vector<Tensor<T>> parameters, double lr, double beta1, double beta2, double eps, double weight_decay)
    : Adam<T>("AdamW", one_group(std::move(parameters)), lr, beta1, beta2, eps, weight_decay, true) {}

template <class T>
AdamW<T>::AdamW(std::vector<ParamGroup<T>> groups, double lr, double beta1, double beta2, double eps, double weight_decay)
    : Adam<T>("AdamW", std::move(groups), lr, beta1, beta2, eps, weight_decay, true) {}

template <class T>
LRScheduler<T>::LRScheduler(Optimizer<T>& optimizer) : optimizer_(optimizer) {
  for (std::size_t g = 0; g < optimizer.group_count(); ++g) base_.push_back(optimizer.lr(g));
}

template <class T>
void LRScheduler<T>::step() {
  ++steps_;
  apply();
}

template <class T>
void LRScheduler<T>::set_steps(std::size_t steps) {
  steps_ = steps;
  apply();
}

template <class T>
void LRScheduler<T>::apply() {
  for (std::size_t g = 0; g < base_.size(); ++g) optimizer_.set_lr(g, rate(steps_, base_[g]));
}

template <class T>
StepLR<T>::StepLR(Optimizer<T>& optimizer, std::size_t step_size, double gamma)
    : LRScheduler<T>(optimizer), step_size_(step_size), gamma_(gamma) {
  if (step_size == 0) throw_value_error("StepLR", "step_size must be >= 1, got 0");
  if (!(gamma > 0 && gamma < unbounded)) throw_value_error("StepLR", "gamma must be finite and > 0, got " + number_str(gamma));
  this->set_steps(0);
}

template <class T>
double StepLR<T>::rate(std::size_t steps, double base) const {
  return base * std::pow(gamma_, double(steps / step_size_));
}

template <class T>
LinearWarmup<T>::LinearWarmup(Optimizer<T>& optimizer, std::size_t warmup_steps, double start_factor)
    : LRScheduler<T>(optimizer), warmup_(warmup_steps), start_(start_factor) {
  check_range("LinearWarmup", "start_factor", start_factor, 0, 1, false);
  this->set_steps(0);
}

template <class T>
double LinearWarmup<T>::rate(std::size_t steps, double base) const {
  if (steps >= warmup_) return base;
  return base * (start_ + (1 - start_) * double(steps) / double(warmup_));
}

template <class T>
CosineLR<T>::CosineLR(Optimizer<T>& optimizer, std::size_t total_steps, double min_lr, std::size_t warmup_steps)
    : LRScheduler<T>(optimizer), total_(total_steps), warmup_(warmup_steps), min_(min_lr) {
  if (total_steps == 0 || warmup_steps > total_steps)
    throw_value_error("CosineLR", "needs total_steps >= 1 and warmup_steps <= total_steps, got " +
                                      std::to_string(total_steps) + " and " + std::to_string(warmup_steps));
  check_range("CosineLR", "min_lr", min_lr, 0, unbounded, false);
  this->set_steps(0);
}

template <class T>
double CosineLR<T>::rate(std::size_t steps, double base) const {
  if (steps < warmup_) return base * double(steps) / double(warmup_);
  const double progress = std::min(1.0, double(steps - warmup_) / double(std::max<std::size_t>(total_ - warmup_, 1)));
  return min_ + (base - min_) * 0.5 * (1 + std::cos(3.14159265358979323846 * progress));
}

template <class T>
double clip_grad_norm(const std::vector<Tensor<T>>& parameters, double max_norm) {
  if (!(max_norm > 0)) throw_value_error("clip_grad_norm", "max_norm must be > 0, got " + number_str(max_norm));
  double squares = 0;
  for (const Tensor<T>& p : parameters)
    if (p.defined() && p.has_grad())
      for (const T g : p.grad()) squares += double(g) * double(g);
  const double norm = std::sqrt(squares);
  const double scale = max_norm / (norm + 1e-6);
  if (!std::isfinite(norm) || scale >= 1) return norm;
  for (Tensor<T> p : parameters)
    if (p.defined() && p.has_grad()) p.mutable_grad() *= static_cast<T>(scale);
  return norm;
}

template <class T>
void clip_grad_value(const std::vector<Tensor<T>>& parameters, double clip) {
  if (!(clip > 0)) throw_value_error("clip_grad_value", "clip must be > 0, got " + number_str(clip));
  const T c = static_cast<T>(clip);
  for (Tensor<T> p : parameters)
    if (p.defined() && p.has_grad())
      for (T& g : p.mutable_grad()) g = g > c ? c : g < -c ? -c : g;   // NaN stays NaN
}

template class Optimizer<float>;
template class Optimizer<double>;
template class SGD<float>;
template class SGD<double>;
template class Adam<float>;
template class Adam<double>;
template class AdamW<float>;
template class AdamW<double>;
template class LRScheduler<float>;
template class LRScheduler<double>;
template class StepLR<float>;
template class StepLR<double>;
template class LinearWarmup<float>;
template class LinearWarmup<double>;
template class CosineLR<float>;
template class CosineLR<double>;
template double clip_grad_norm(const std::vector<Tensor<float>>&, double);
template double clip_grad_norm(const std::vector<Tensor<double>>&, double);
template void clip_grad_value(const std::vector<Tensor<float>>&, double);
template void clip_grad_value(const std::vector<Tensor<double>>&, double);

}  // namespace tapegrad
