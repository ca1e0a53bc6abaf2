// Optimizers: update parameters in place from their accumulated gradients; learning-rate
// schedules; gradient clipping.
#ifndef TAPEGRAD_LAYERS_OPTIM_HPP
#define TAPEGRAD_LAYERS_OPTIM_HPP

#include <optional>
#include <string>
#include <vector>

#include "../core/tensor.hpp"

namespace tapegrad {

// Parameters with a learning rate and a weight decay of their own (PyTorch's param_groups): no
// decay on biases, a smaller rate for a pretrained part. Unset values take the optimizer's.
template <class T>
struct ParamGroup {
  std::vector<Tensor<T>> parameters;
  std::optional<double> lr = std::nullopt, weight_decay = std::nullopt;
};

template <class T>
class Optimizer {
 public:
  virtual ~Optimizer() = default;
  // One update of every parameter that has a gradient (others are skipped).
  virtual void step() = 0;
  // Drops the parameters' gradients (see Module::zero_grad).
  void zero_grad();
  // Every group's parameters, in order; a tensor listed twice is one parameter, stepped once.
  const std::vector<Tensor<T>>& parameters() const { return parameters_; }
  std::size_t group_count() const { return groups_.size(); }
  double lr(std::size_t group = 0) const;
  // Sets the learning rate of every group, or of one.
  void set_lr(double lr);
  void set_lr(std::size_t group, double lr);
  double weight_decay(std::size_t group = 0) const;
  // The state a resumed run needs to continue bitwise as if never stopped: the groups' learning
  // rates and weight decays, each stepped parameter's buffers and step count, and the parameter
  // count, by name ("group0.lr", "param3.exp_avg", "param3.step", "parameters"), in double (exact
  // for float's values). The other hyperparameters (momentum, betas, eps) come from the
  // optimizer's construction and are not part of it. load_state_dict takes a state of as many
  // parameters, of the same shapes, with this optimizer's buffers (SGD's momentum_buffer; Adam's
  // and AdamW's exp_avg and exp_avg_sq: their states are interchangeable); otherwise a ValueError
  // names the entry and nothing changes.
  StateDict<double> state_dict() const;
  void load_state_dict(const StateDict<double>& state);
  // "SGD", "Adam", "AdamW", as messages name it.
  const std::string& name() const { return name_; }

 protected:
  Optimizer(std::string name, std::vector<ParamGroup<T>> groups, double lr, double weight_decay,
            std::vector<std::string> buffer_names);
  // Before a step changes anything: every gradient still fits its parameter.
  void check_gradients() const;
  struct Group {
    double lr, weight_decay;
  };
  std::string name_;
  std::vector<Tensor<T>> parameters_;
  std::vector<std::size_t> group_of_;   // each parameter's group
  std::vector<Group> groups_;
  // Per parameter: its buffers (named by buffer_names_; empty until its first step) and steps.
  std::vector<std::string> buffer_names_;
  std::vector<std::vector<xt::xarray<T>>> buffers_;
  std::vector<std::size_t> steps_;
};

// PyTorch's SGD: g = grad + weight_decay * p;  v = momentum * v + g (v = g at the first step);
// p -= lr * (nesterov ? g + momentum * v : v)   (p -= lr * g without momentum).
template <class T>
class SGD : public Optimizer<T> {
 public:
  SGD(std::vector<Tensor<T>> parameters, double lr, double momentum = 0.0, double weight_decay = 0.0,
      bool nesterov = false);
  SGD(std::vector<ParamGroup<T>> groups, double lr, double momentum = 0.0, double weight_decay = 0.0,
      bool nesterov = false);
  void step() override;

 private:
  double momentum_;
  bool nesterov_;
};

// Adam with bias correction: m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
// p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps), with g = grad + weight_decay * p.
template <class T>
class Adam : public Optimizer<T> {
 public:
  Adam(std::vector<Tensor<T>> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
       double eps = 1e-8, double weight_decay = 0.0);
  Adam(std::vector<ParamGroup<T>> groups, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
       double eps = 1e-8, double weight_decay = 0.0);
  void step() override;

 protected:
  // AdamW's: the decay applied to p directly (p *= 1 - lr weight_decay), not added to g.
  Adam(std::string name, std::vector<ParamGroup<T>> groups, double lr, double beta1, double beta2, double eps,
       double weight_decay, bool decoupled);

 private:
  double beta1_, beta2_, eps_;
  bool decoupled_ = false;
};

// AdamW (Loshchilov and Hutter; PyTorch's): p *= 1 - lr * weight_decay, then Adam's step with g = grad.
template <class T>
class AdamW : public Adam<T> {
 public:
  AdamW(std::vector<Tensor<T>> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
        double eps = 1e-8, double weight_decay = 1e-2);
  AdamW(std::vector<ParamGroup<T>> groups, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
        double eps = 1e-8, double weight_decay = 1e-2);
};

// A learning-rate schedule: step() (once per epoch or per batch, as the schedule is counted) sets
// every group's rate to rate(steps, the group's rate when the schedule was made). The position is
// one number (steps()), set back with set_steps() to resume.
template <class T>
class LRScheduler {
 public:
  virtual ~LRScheduler() = default;
  void step();
  std::size_t steps() const { return steps_; }
  void set_steps(std::size_t steps);
  // The rate after `steps` steps for a group whose base rate is `base`.
  virtual double rate(std::size_t steps, double base) const = 0;

 protected:
  explicit LRScheduler(Optimizer<T>& optimizer);

 private:
  void apply();
  Optimizer<T>& optimizer_;
  std::vector<double> base_;
  std::size_t steps_ = 0;
};

// base * gamma^floor(steps / step_size)
template <class T>
class StepLR : public LRScheduler<T> {
 public:
  StepLR(Optimizer<T>& optimizer, std::size_t step_size, double gamma = 0.1);
  double rate(std::size_t steps, double base) const override;

 private:
  std::size_t step_size_;
  double gamma_;
};

// Linear warm-up from base * start_factor to base over warmup_steps, then base (PyTorch's LinearLR).
template <class T>
class LinearWarmup : public LRScheduler<T> {
 public:
  LinearWarmup(Optimizer<T>& optimizer, std::size_t warmup_steps, double start_factor = 0.1);
  double rate(std::size_t steps, double base) const override;

 private:
  std::size_t warmup_;
  double start_;
};

// Cosine decay from base to min_lr over total_steps (PyTorch's CosineAnnealingLR without
// restarts), after an optional linear warm-up from 0 over its first warmup_steps; min_lr after.
template <class T>
class CosineLR : public LRScheduler<T> {
 public:
  CosineLR(Optimizer<T>& optimizer, std::size_t total_steps, double min_lr = 0.0, std::size_t warmup_steps = 0);
  double rate(std::size_t steps, double base) const override;

 private:
  std::size_t total_, warmup_;
  double min_;
};

// Scales the gradients in place so that their joint 2-norm is at most max_norm (PyTorch's
// clip_grad_norm_: by max_norm / (norm + 1e-6) when the norm is above max_norm) and returns the
// norm before clipping. Parameters without a gradient are skipped. A norm that is Inf or NaN
// leaves the gradients as they are: the caller sees it and may skip the step.
template <class T>
double clip_grad_norm(const std::vector<Tensor<T>>& parameters, double max_norm);
// Limits every gradient element to [-clip, clip] in place.
template <class T>
void clip_grad_value(const std::vector<Tensor<T>>& parameters, double clip);

extern template class Optimizer<float>;
extern template class Optimizer<double>;
extern template class SGD<float>;
extern template class SGD<double>;
extern template class Adam<float>;
extern template class Adam<double>;
extern template class AdamW<float>;
extern template class AdamW<double>;
extern template class LRScheduler<float>;
extern template class LRScheduler<double>;
extern template class StepLR<float>;
extern template class StepLR<double>;
extern template class LinearWarmup<float>;
extern template class LinearWarmup<double>;
extern template class CosineLR<float>;
extern template class CosineLR<double>;

}  // namespace tapegrad

#endif
