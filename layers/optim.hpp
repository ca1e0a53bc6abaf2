// Optimizers: update parameters in place from their accumulated gradients.
#ifndef TAPEGRAD_LAYERS_OPTIM_HPP
#define TAPEGRAD_LAYERS_OPTIM_HPP

#include <vector>

#include "../core/tensor.hpp"

namespace tapegrad {

template <class T>
class Optimizer {
 public:
  // A tensor listed twice is stepped once.
  explicit Optimizer(std::vector<Tensor<T>> parameters);
  virtual ~Optimizer() = default;
  // One update of every parameter that has a gradient (others are skipped).
  virtual void step() = 0;
  // Drops the parameters' gradients (see Module::zero_grad).
  void zero_grad();
  const std::vector<Tensor<T>>& parameters() const { return parameters_; }

 protected:
  std::vector<Tensor<T>> parameters_;
};

// PyTorch's SGD: g = grad + weight_decay * p;  v = momentum * v + g (v = g at the first step);
// p -= lr * (nesterov ? g + momentum * v : v)   (p -= lr * g without momentum).
template <class T>
class SGD : public Optimizer<T> {
 public:
  SGD(std::vector<Tensor<T>> parameters, double lr, double momentum = 0.0, double weight_decay = 0.0,
      bool nesterov = false);
  void step() override;

 private:
  double lr_, momentum_, weight_decay_;
  bool nesterov_;
  std::vector<xt::xarray<T>> velocity_;
  std::vector<bool> started_;
};

// Adam with bias correction: m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
// p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps), with g = grad + weight_decay * p.
template <class T>
class Adam : public Optimizer<T> {
 public:
  Adam(std::vector<Tensor<T>> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
       double eps = 1e-8, double weight_decay = 0.0);
  void step() override;

 private:
  double lr_, beta1_, beta2_, eps_, weight_decay_;
  std::vector<xt::xarray<T>> m_, v_;
  std::vector<std::size_t> steps_;
};

extern template class Optimizer<float>;
extern template class Optimizer<double>;
extern template class SGD<float>;
extern template class SGD<double>;
extern template class Adam<float>;
extern template class Adam<double>;

}  // namespace tapegrad

#endif
