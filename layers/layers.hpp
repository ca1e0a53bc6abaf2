// Layers: modules composed of ops, with no backward code of their own.
#ifndef TAPEGRAD_LAYERS_LAYERS_HPP
#define TAPEGRAD_LAYERS_LAYERS_HPP

#include "../ops/conv.hpp"
#include "../ops/index.hpp"
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
  Remade remake(bool in_double) const override;
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
  // Channels in groups convolved apart (PyTorch's groups; in_ch = groups is depthwise): both
  // channel counts must divide by it. Each group is a conv2d of its own slice of the channels
  // (whose gradient is one of the whole input: a backward costs groups times the input's size).
  std::size_t groups = 1;
};

// Weight (out_ch, in_ch / groups, kh, kw); input (N, in_ch, H, W) -> (N, out_ch, Ho, Wo).
template <class T>
class Conv2d : public Module<T> {
 public:
  Conv2d(std::size_t in_channels, std::size_t out_channels, Size2 kernel, Size2 stride = 1, Size2 padding = 0);
  Conv2d(std::size_t in_channels, std::size_t out_channels, Size2 kernel, const Conv2dOptions& options);
  Tensor<T> forward(const Tensor<T>& x) override;
  Remade remake(bool in_double) const override;
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
  Remade remake(bool in_double) const override;

 private:
  Size2 kernel_, stride_, padding_;
};

template <class T>
class MaxPool2d : public Module<T> {
 public:
  explicit MaxPool2d(Size2 kernel) : MaxPool2d(kernel, kernel) {}
  MaxPool2d(Size2 kernel, Size2 stride, Size2 padding = 0) : kernel_(kernel), stride_(stride), padding_(padding) {}
  Tensor<T> forward(const Tensor<T>& x) override;
  Remade remake(bool in_double) const override;

 private:
  Size2 kernel_, stride_, padding_;
};

template <class T>
class Softmax : public Module<T> {
 public:
  explicit Softmax(std::ptrdiff_t axis = -1) : axis_(axis) {}
  Tensor<T> forward(const Tensor<T>& x) override;
  Remade remake(bool in_double) const override;

 private:
  std::ptrdiff_t axis_;
};

template <class T>
class ReLU : public Module<T> {
 public:
  Tensor<T> forward(const Tensor<T>& x) override;
  Remade remake(bool in_double) const override;
};

template <class T>
class Tanh : public Module<T> {
 public:
  Tensor<T> forward(const Tensor<T>& x) override;
  Remade remake(bool in_double) const override;
};

template <class T>
class Sigmoid : public Module<T> {
 public:
  Tensor<T> forward(const Tensor<T>& x) override;
  Remade remake(bool in_double) const override;
};

// (N, d1, d2, ...) -> (N, d1 * d2 * ...)
template <class T>
class Flatten : public Module<T> {
 public:
  Tensor<T> forward(const Tensor<T>& x) override;
  Remade remake(bool in_double) const override;
};

// A table of num_embeddings vectors of `dim` values: forward(tokens) is tokens.shape + (dim), each
// token's row. Tokens must lie in [0, num_embeddings). Weight (num_embeddings, dim) from N(0, 1),
// as PyTorch's; its gradient adds up over repeated tokens.
template <class T>
class Embedding : public Module<T> {
 public:
  Embedding(std::size_t num_embeddings, std::size_t dim);
  using Module<T>::forward;
  Tensor<T> forward(const Index& tokens);
  Tensor<T> operator()(const Index& tokens) { return forward(tokens); }
  Remade remake(bool in_double) const override;
  const Tensor<T>& weight() const { return weight_; }

 private:
  std::size_t count_, dim_;
  Tensor<T> weight_;
};

// In training mode, each element is zeroed with probability p and the others scaled by 1 / (1 - p),
// the mask drawn from the thread's generator (tg::ManualSeed); in evaluation mode, x itself.
template <class T>
class Dropout : public Module<T> {
 public:
  explicit Dropout(double p = 0.5);
  Tensor<T> forward(const Tensor<T>& x) override;
  Remade remake(bool in_double) const override;

 private:
  double p_;
};

// Normalises over the last axes, those of `normalized_shape`: (x - mean) / sqrt(var + eps), var
// biased, then times weight plus bias (of normalized_shape: ones and zeros at first) if affine.
template <class T>
class LayerNorm : public Module<T> {
 public:
  explicit LayerNorm(Shape normalized_shape, double eps = 1e-5, bool elementwise_affine = true);
  Tensor<T> forward(const Tensor<T>& x) override;
  Remade remake(bool in_double) const override;
  const Tensor<T>& weight() const { return weight_; }
  const Tensor<T>& bias() const { return bias_; }

 private:
  Shape shape_;
  double eps_;
  Tensor<T> weight_, bias_;
};

// Batch normalisation of (N, C, H, W) per channel. Training: the batch's mean and biased variance
// over (N, H, W) normalise it, and the buffers running_mean and running_var move towards the mean
// and the unbiased variance by `momentum` (PyTorch's rule). Evaluation: the running statistics
// normalise it. Then times weight plus bias (C each: ones and zeros at first) if affine.
template <class T>
class BatchNorm2d : public Module<T> {
 public:
  explicit BatchNorm2d(std::size_t channels, double eps = 1e-5, double momentum = 0.1, bool affine = true);
  Tensor<T> forward(const Tensor<T>& x) override;
  Remade remake(bool in_double) const override;
  const Tensor<T>& weight() const { return weight_; }
  const Tensor<T>& bias() const { return bias_; }
  const Tensor<T>& running_mean() const { return running_mean_; }
  const Tensor<T>& running_var() const { return running_var_; }

 private:
  std::size_t channels_;
  double eps_, momentum_;
  Tensor<T> weight_, bias_, running_mean_, running_var_;
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
extern template class Embedding<float>;
extern template class Embedding<double>;
extern template class Dropout<float>;
extern template class Dropout<double>;
extern template class LayerNorm<float>;
extern template class LayerNorm<double>;
extern template class BatchNorm2d<float>;
extern template class BatchNorm2d<double>;

}  // namespace tapegrad

#endif
