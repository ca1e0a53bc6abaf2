#include "layers.hpp"

#include "../ops/elementwise.hpp"
#include "../ops/linalg.hpp"
#include "../ops/nn.hpp"
#include "../ops/pool.hpp"
#include "../ops/reduce.hpp"
#include "../ops/shape.hpp"

namespace tapegrad {

template <class T>
Linear<T>::Linear(std::size_t in_features, std::size_t out_features, bool bias, Init init)
    : in_(in_features), out_(out_features) {
  if (in_ == 0 || out_ == 0)
    throw_value_error("Linear", "in_features and out_features must be >= 1, got " + std::to_string(in_) + " and " +
                                    std::to_string(out_));
  weight_ = this->register_parameter("weight", init_weight<T>({in_, out_}, init, in_, out_));
  if (bias) bias_ = this->register_parameter("bias", init_bias<T>({out_}, in_));
}

template <class T>
Tensor<T> Linear<T>::forward(const Tensor<T>& x) {
  const Shape s = x.shape();
  if (s.empty() || s.back() != in_)
    throw_shape_error("Linear", "input shape " + shape_str(s) + " does not end in in_features=" + std::to_string(in_) +
                                    " (weight shape " + shape_str({in_, out_}) + ")");
  const Tensor<T> y = matmul(x, weight_);
  return bias_.defined() ? y + bias_ : y;
}

template <class T>
Conv2d<T>::Conv2d(std::size_t in_channels, std::size_t out_channels, Size2 kernel, Size2 stride, Size2 padding)
    : Conv2d(in_channels, out_channels, kernel, Conv2dOptions{stride, padding}) {}

template <class T>
Conv2d<T>::Conv2d(std::size_t in_channels, std::size_t out_channels, Size2 kernel, const Conv2dOptions& options)
    : in_(in_channels), out_(out_channels), options_(options) {
  if (in_ == 0 || out_ == 0 || kernel.h == 0 || kernel.w == 0)
    throw_value_error("Conv2d", "channels and kernel must be >= 1, got in_channels=" + std::to_string(in_) +
                                    " out_channels=" + std::to_string(out_) + " kernel=" + size2_str(kernel));
  if (options.stride.h == 0 || options.stride.w == 0)
    throw_value_error("Conv2d", "stride must be >= 1, got " + size2_str(options.stride));
  const std::size_t g = options.groups;
  if (g == 0 || in_ % g != 0 || out_ % g != 0)
    throw_value_error("Conv2d", "groups=" + std::to_string(g) + " must divide in_channels=" + std::to_string(in_) +
                                    " and out_channels=" + std::to_string(out_));
  const std::size_t fan_in = in_ / g * kernel.h * kernel.w, fan_out = out_ / g * kernel.h * kernel.w;
  weight_ = this->register_parameter("weight", init_weight<T>({out_, in_ / g, kernel.h, kernel.w}, options.init, fan_in, fan_out));
  if (options.bias == ConvBias::per_channel) {
    bias_ = this->register_parameter("bias", init_bias<T>({out_}, fan_in));
  } else if (options.bias == ConvBias::untied) {
    if (options.output_size.h == 0 || options.output_size.w == 0)
      throw_value_error("Conv2d", "an untied bias needs the output size (Ho, Wo), got " + size2_str(options.output_size));
    bias_ = this->register_parameter(
        "bias", init_bias<T>({out_, options.output_size.h, options.output_size.w}, fan_in));
  }
}

// groups > 1: concat over g of conv2d(x's channels of group g, the weights of group g)
template <class T>
Tensor<T> Conv2d<T>::forward(const Tensor<T>& x) {
  const std::size_t groups = options_.groups;
  const Tensor<T> tied_bias = options_.bias == ConvBias::per_channel ? bias_ : Tensor<T>();
  Tensor<T> y;
  if (groups == 1) {
    y = conv2d(x, weight_, tied_bias, options_.stride, options_.padding);
  } else {
    check_defined<T>("Conv2d", {&x});
    const Shape s = x.shape();
    if (s.size() != 4 || s[1] != in_)
      throw_shape_error("Conv2d", "input shape " + shape_str(s) + " is not (N, " + std::to_string(in_) + ", H, W)");
    const auto in_g = static_cast<std::ptrdiff_t>(in_ / groups), out_g = static_cast<std::ptrdiff_t>(out_ / groups);
    std::vector<Tensor<T>> parts;
    for (std::size_t g = 0; g < groups; ++g) {
      const auto at = static_cast<std::ptrdiff_t>(g);
      parts.push_back(conv2d(slice(x, 1, at * in_g, (at + 1) * in_g), slice(weight_, 0, at * out_g, (at + 1) * out_g),
                             tied_bias.defined() ? slice(tied_bias, 0, at * out_g, (at + 1) * out_g) : Tensor<T>(),
                             options_.stride, options_.padding));
    }
    y = concat(parts, 1);
  }
  if (options_.bias != ConvBias::untied) return y;
  const Shape s = y.shape();
  if (s[2] != options_.output_size.h || s[3] != options_.output_size.w)
    throw_shape_error("Conv2d", "untied bias of shape " + shape_str(bias_.shape()) + " does not fit the output shape " +
                                    shape_str(s) + " of input shape " + shape_str(x.shape()));
  return y + bias_;
}

template <class T>
Tensor<T> AvgPool2d<T>::forward(const Tensor<T>& x) {
  return avg_pool2d(x, kernel_, stride_, padding_);
}

template <class T>
Tensor<T> MaxPool2d<T>::forward(const Tensor<T>& x) {
  return max_pool2d(x, kernel_, stride_, padding_);
}

template <class T>
Tensor<T> Softmax<T>::forward(const Tensor<T>& x) {
  return softmax(x, axis_);
}

template <class T>
Tensor<T> ReLU<T>::forward(const Tensor<T>& x) {
  return relu(x);
}

template <class T>
Tensor<T> Tanh<T>::forward(const Tensor<T>& x) {
  return tanh(x);
}

template <class T>
Tensor<T> Sigmoid<T>::forward(const Tensor<T>& x) {
  return sigmoid(x);
}

template <class T>
Tensor<T> Flatten<T>::forward(const Tensor<T>& x) {
  const Shape s = x.shape();
  if (s.empty()) throw_shape_error("Flatten", "needs a batch axis, got shape ()");
  std::size_t rest = 1;
  for (std::size_t k = 1; k < s.size(); ++k) rest *= s[k];
  return reshape(x, {s[0], rest});
}

template <class T>
Embedding<T>::Embedding(std::size_t num_embeddings, std::size_t dim) : count_(num_embeddings), dim_(dim) {
  if (count_ == 0 || dim_ == 0)
    throw_value_error("Embedding", "num_embeddings and dim must be >= 1, got " + std::to_string(count_) + " and " +
                                       std::to_string(dim_));
  weight_ = this->register_parameter("weight", normal<T>({count_, dim_}).value());
}

// y[i..., :] = weight[tokens[i...], :]: one index_select of rows, reshaped.
template <class T>
Tensor<T> Embedding<T>::forward(const Index& tokens) {
  const Shape s = detail::shape_of(tokens);
  std::vector<std::int64_t> rows(tokens.begin(), tokens.end());
  for (std::size_t i = 0; i < rows.size(); ++i)
    if (rows[i] < 0 || rows[i] >= static_cast<std::int64_t>(count_))
      throw_value_error("Embedding", "token " + std::to_string(rows[i]) + " at " + shape_str(unravel_index(i, s)) +
                                         " of tokens shape " + shape_str(s) + " is out of range for " +
                                         std::to_string(count_) + " embeddings");
  Shape out = s;
  out.push_back(dim_);
  return reshape(index_select(weight_, 0, rows), out);
}

template <class T>
Dropout<T>::Dropout(double p) : p_(p) {
  if (!(p >= 0 && p <= 1)) throw_value_error("Dropout", "p must be in [0, 1], got " + number_str(p));
}

// y = x * mask / (1 - p), mask ~ Bernoulli(1 - p), in training;  y = x otherwise
template <class T>
Tensor<T> Dropout<T>::forward(const Tensor<T>& x) {
  check_defined<T>("Dropout", {&x});
  if (!this->is_training() || p_ == 0) return x;
  if (p_ == 1) return x * T(0);
  Tensor<T> mask = bernoulli<T>(x.shape(), static_cast<T>(1 - p_));
  mask.mutable_value() *= static_cast<T>(1 / (1 - p_));
  return x * mask;
}

template <class T>
LayerNorm<T>::LayerNorm(Shape normalized_shape, double eps, bool elementwise_affine)
    : shape_(std::move(normalized_shape)), eps_(eps) {
  if (shape_.empty()) throw_value_error("LayerNorm", "normalized_shape must have at least one axis, got ()");
  if (!(eps > 0)) throw_value_error("LayerNorm", "eps must be > 0, got " + number_str(eps));
  if (elementwise_affine) {
    weight_ = this->register_parameter("weight", xt::ones<T>(shape_));
    bias_ = this->register_parameter("bias", xt::zeros<T>(shape_));
  }
}

// y = (x - mean) / sqrt(var + eps) [* w + b] over the last axes
template <class T>
Tensor<T> LayerNorm<T>::forward(const Tensor<T>& x) {
  check_defined<T>("LayerNorm", {&x});
  const Shape s = x.shape();
  const std::size_t k = shape_.size();
  if (s.size() < k || !std::equal(shape_.begin(), shape_.end(), s.end() - static_cast<std::ptrdiff_t>(k)))
    throw_shape_error("LayerNorm", "input shape " + shape_str(s) + " does not end in normalized_shape " + shape_str(shape_));
  Axes axes;
  for (std::size_t i = 0; i < k; ++i) axes.push_back(-static_cast<std::ptrdiff_t>(i) - 1);
  const Tensor<T> centered = x - mean(x, axes, true);
  const Tensor<T> y = centered / sqrt(mean(centered * centered, axes, true) + static_cast<T>(eps_));
  return weight_.defined() ? y * weight_ + bias_ : y;
}

template <class T>
BatchNorm2d<T>::BatchNorm2d(std::size_t channels, double eps, double momentum, bool affine)
    : channels_(channels), eps_(eps), momentum_(momentum) {
  if (channels == 0) throw_value_error("BatchNorm2d", "channels must be >= 1, got 0");
  if (!(eps > 0)) throw_value_error("BatchNorm2d", "eps must be > 0, got " + number_str(eps));
  if (!(momentum >= 0 && momentum <= 1)) throw_value_error("BatchNorm2d", "momentum must be in [0, 1], got " + number_str(momentum));
  if (affine) {
    weight_ = this->register_parameter("weight", xt::ones<T>({channels}));
    bias_ = this->register_parameter("bias", xt::zeros<T>({channels}));
  }
  running_mean_ = this->register_buffer("running_mean", xt::zeros<T>({channels}));
  running_var_ = this->register_buffer("running_var", xt::ones<T>({channels}));
}

// training: y = (x - mean_b) / sqrt(var_b + eps) [* w + b], the running statistics updated;
// evaluation: y = (x - running_mean) / sqrt(running_var + eps) [* w + b]
template <class T>
Tensor<T> BatchNorm2d<T>::forward(const Tensor<T>& x) {
  check_defined<T>("BatchNorm2d", {&x});
  const Shape s = x.shape();
  if (s.size() != 4 || s[1] != channels_)
    throw_shape_error("BatchNorm2d", "input shape " + shape_str(s) + " is not (N, " + std::to_string(channels_) + ", H, W)");
  const Shape per_channel{1, channels_, 1, 1};
  Tensor<T> y;
  if (this->is_training()) {
    const std::size_t n = s[0] * s[2] * s[3];
    if (n < 2)
      throw_value_error("BatchNorm2d", "training needs more than one value per channel, got input shape " + shape_str(s));
    const Tensor<T> batch_mean = mean(x, {0, 2, 3}, true);
    const Tensor<T> centered = x - batch_mean;
    const Tensor<T> batch_var = mean(centered * centered, {0, 2, 3}, true);
    y = centered / sqrt(batch_var + static_cast<T>(eps_));
    // The running statistics: plain arrays, outside the tape.
    const T m = static_cast<T>(momentum_);
    const T unbiased = static_cast<T>(double(n) / double(n - 1));
    xt::xarray<T> mu = batch_mean.value(), var = batch_var.value();
    mu.reshape({channels_});
    var.reshape({channels_});
    running_mean_.assign((1 - m) * running_mean_.value() + m * mu);
    running_var_.assign((1 - m) * running_var_.value() + m * unbiased * var);
  } else {
    xt::xarray<T> mu = running_mean_.value(), scale = 1 / xt::sqrt(running_var_.value() + static_cast<T>(eps_));
    mu.reshape(per_channel);
    scale.reshape(per_channel);
    y = (x - Tensor<T>(std::move(mu))) * Tensor<T>(std::move(scale));
  }
  if (!weight_.defined()) return y;
  return y * reshape(weight_, per_channel) + reshape(bias_, per_channel);
}

template <class T>
Remade Linear<T>::remake(bool in_double) const {
  return remade<Linear>(in_double, in_, out_, bias_.defined());
}
template <class T>
Remade Conv2d<T>::remake(bool in_double) const {
  const Shape w = weight_.shape();
  return remade<Conv2d>(in_double, in_, out_, Size2(w[2], w[3]), options_);
}
template <class T>
Remade AvgPool2d<T>::remake(bool in_double) const {
  return remade<AvgPool2d>(in_double, kernel_, stride_, padding_);
}
template <class T>
Remade MaxPool2d<T>::remake(bool in_double) const {
  return remade<MaxPool2d>(in_double, kernel_, stride_, padding_);
}
template <class T>
Remade Softmax<T>::remake(bool in_double) const {
  return remade<Softmax>(in_double, axis_);
}
template <class T>
Remade ReLU<T>::remake(bool in_double) const {
  return remade<ReLU>(in_double);
}
template <class T>
Remade Tanh<T>::remake(bool in_double) const {
  return remade<Tanh>(in_double);
}
template <class T>
Remade Sigmoid<T>::remake(bool in_double) const {
  return remade<Sigmoid>(in_double);
}
template <class T>
Remade Flatten<T>::remake(bool in_double) const {
  return remade<Flatten>(in_double);
}
template <class T>
Remade Embedding<T>::remake(bool in_double) const {
  return remade<Embedding>(in_double, count_, dim_);
}
template <class T>
Remade Dropout<T>::remake(bool in_double) const {
  return remade<Dropout>(in_double, p_);
}
template <class T>
Remade LayerNorm<T>::remake(bool in_double) const {
  return remade<LayerNorm>(in_double, shape_, eps_, weight_.defined());
}
template <class T>
Remade BatchNorm2d<T>::remake(bool in_double) const {
  return remade<BatchNorm2d>(in_double, channels_, eps_, momentum_, weight_.defined());
}

template class Linear<float>;
template class Linear<double>;
template class Conv2d<float>;
template class Conv2d<double>;
template class AvgPool2d<float>;
template class AvgPool2d<double>;
template class MaxPool2d<float>;
template class MaxPool2d<double>;
template class Softmax<float>;
template class Softmax<double>;
template class ReLU<float>;
template class ReLU<double>;
template class Tanh<float>;
template class Tanh<double>;
template class Sigmoid<float>;
template class Sigmoid<double>;
template class Flatten<float>;
template class Flatten<double>;
template class Embedding<float>;
template class Embedding<double>;
template class Dropout<float>;
template class Dropout<double>;
template class LayerNorm<float>;
template class LayerNorm<double>;
template class BatchNorm2d<float>;
template class BatchNorm2d<double>;

}  // namespace tapegrad
