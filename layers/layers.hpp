// Layers: modules composed of ops, with no backward code of their own.
#ifndef TAPEGRAD_LAYERS_LAYERS_HPP
#define TAPEGRAD_LAYERS_LAYERS_HPP

#include "../ops/conv.hpp"
#include "init.hpp"
#include "module.hpp"

namespace tapegrad {

// c_j = sum_i w_ij l_i + b_j: weight w of shape (in, out) (the notes' convention), bias (out).
// Input (..., in) -> (..., out). Weights Kaiming-uniform by default, from the thread's generator.
template <class T>
class Linear : public Module<T> {
 public:
  Linear(std::size_t in_features, std::size_t out_features, bool bias = true, Init init = Init::kaiming_uniform);
  Tensor<T> forward(const Tensor<T>& x) override;
  const Tensor<T>& weight() const { return weight_; }
  const Tensor<T>& bias() const { return bias_; }   // undefined without bias

 private:
  std::size_t in_, out_;
  Tensor<T> weight_, bias_;
};

enum class ConvBias {
  per_channel,   // one bias per output channel, b (K)
  untied,        // one bias per output element, b (K, Ho, Wo) (the notes' b_ij, N15/N16)
  none,
};

struct Conv2dOptions {
  Size2 stride = 1;
  Size2 padding = 0;
  ConvBias bias = ConvBias::per_channel;
  Size2 output_size = 0;   // (Ho, Wo), required for ConvBias::untied
  Init init = Init::kaiming_uniform;
};

// Weight (out_ch, in_ch, kh, kw); input (N, in_ch, H, W) -> (N, out_ch, Ho, Wo).
template <class T>
class Conv2d : public Module<T> {
 public:
  Conv2d(std::size_t in_channels, std::size_t out_channels, Size2 kernel, Size2 stride = 1, Size2 padding = 0);
  Conv2d(std::size_t in_channels, std::size_t out_channels, Size2 kernel, const Conv2dOptions& options);
  Tensor<T> forward(const Tensor<T>& x) override;
  const Tensor<T>& weight() const { return weight_; }
  const Tensor<T>& bias() const { return bias_; }

 private:
  std::size_t in_, out_;
  Conv2dOptions options_;
  Tensor<T> weight_, bias_;
};

template <class T>
class AvgPool2d : public Module<T> {
 public:
  explicit AvgPool2d(Size2 kernel) : AvgPool2d(kernel, kernel) {}
  AvgPool2d(Size2 kernel, Size2 stride, Size2 padding = 0) : kernel_(kernel), stride_(stride), padding_(padding) {}
  Tensor<T> forward(const Tensor<T>& x) override;

 private:
  Size2 kernel_, stride_, padding_;
};

template <class T>
class MaxPool2d : public Module<T> {
 public:
  explicit MaxPool2d(Size2 kernel) : MaxPool2d(kernel, kernel) {}
  MaxPool2d(Size2 kernel, Size2 stride) : kernel_(kernel), stride_(stride) {}
  Tensor<T> forward(const Tensor<T>& x) override;

 private:
  Size2 kernel_, stride_;
};

template <class T>
class Softmax : public Module<T> {
 public:
  explicit Softmax(std::ptrdiff_t axis = -1) : axis_(axis) {}
  Tensor<T> forward(const Tensor<T>& x) override;

 private:
  std::ptrdiff_t axis_;
};

template <class T>
class ReLU : public Module<T> {
 public:
  Tensor<T> forward(const Tensor<T>& x) override;
};

template <class T>
class Tanh : public Module<T> {
 public:
  Tensor<T> forward(const Tensor<T>& x) override;
};

template <class T>
class Sigmoid : public Module<T> {
 public:
  Tensor<T> forward(const Tensor<T>& x) override;
};

// (N, d1, d2, ...) -> (N, d1 * d2 * ...)
template <class T>
class Flatten : public Module<T> {
 public:
  Tensor<T> forward(const Tensor<T>& x) override;
};

extern template class Linear<float>;
extern template class Linear<double>;
extern template class Conv2d<float>;
extern template class Conv2d<double>;
extern template class AvgPool2d<float>;
extern template class AvgPool2d<double>;
extern template class MaxPool2d<float>;
extern template class MaxPool2d<double>;
extern template class Softmax<float>;
extern template class Softmax<double>;
extern template class ReLU<float>;
extern template class ReLU<double>;
extern template class Tanh<float>;
extern template class Tanh<double>;
extern template class Sigmoid<float>;
extern template class Sigmoid<double>;
extern template class Flatten<float>;
extern template class Flatten<double>;

}  // namespace tapegrad

#endif
