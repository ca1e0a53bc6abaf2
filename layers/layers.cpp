#include "layers.hpp"

#include "../ops/elementwise.hpp"
#include "../ops/linalg.hpp"
#include "../ops/nn.hpp"
#include "../ops/pool.hpp"
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
  const std::size_t fan_in = in_ * kernel.h * kernel.w, fan_out = out_ * kernel.h * kernel.w;
  weight_ = this->register_parameter("weight", init_weight<T>({out_, in_, kernel.h, kernel.w}, options.init, fan_in, fan_out));
  if (options.bias == ConvBias::per_channel) {
    bias_ = this->register_parameter("bias", init_bias<T>({out_}, fan_in));
  } else if (options.bias == ConvBias::untied) {
    if (options.output_size.h == 0 || options.output_size.w == 0)
      throw_value_error("Conv2d", "an untied bias needs the output size (Ho, Wo), got " + size2_str(options.output_size));
    bias_ = this->register_parameter(
        "bias", init_bias<T>({out_, options.output_size.h, options.output_size.w}, fan_in));
  }
}

template <class T>
Tensor<T> Conv2d<T>::forward(const Tensor<T>& x) {
  if (options_.bias != ConvBias::untied) return conv2d(x, weight_, bias_, options_.stride, options_.padding);
  const Tensor<T> y = conv2d(x, weight_, Tensor<T>(), options_.stride, options_.padding);
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
  return max_pool2d(x, kernel_, stride_);
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

}  // namespace tapegrad
