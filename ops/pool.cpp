#include "pool.hpp"

#include "elementwise.hpp"
#include "reduce.hpp"
#include "shape.hpp"

namespace tapegrad {

namespace {

// Each channel's windows as the rows of im2col: (N*C, kh*kw, Ho*Wo), and the output shape.
template <class T>
Tensor<T> windows(const std::string& op, const Tensor<T>& x, Size2 kernel, Size2 stride, Size2 padding,
                  Shape& out_shape) {
  const Shape s = x.shape();
  if (s.size() != 4) throw_shape_error(op, "input must be 4-D (N, C, H, W), got shape " + shape_str(s));
  if (stride.h == 0 || stride.w == 0) throw_value_error(op, "stride must be >= 1, got " + size2_str(stride));
  if (kernel.h == 0 || kernel.w == 0) throw_value_error(op, "kernel must be >= 1, got " + size2_str(kernel));
  const std::size_t limit = std::size_t(1) << 31;
  if (padding.h >= limit || padding.w >= limit)
    throw_value_error(op, "padding " + size2_str(padding) + " is out of range (negative or >= 2^31)");
  const std::size_t ph = s[2] + 2 * padding.h, pw = s[3] + 2 * padding.w;
  if (kernel.h > ph || kernel.w > pw)
    throw_shape_error(op, "kernel " + size2_str(kernel) + " is larger than the padded input " + size2_str({ph, pw}) +
                              " of input shape " + shape_str(s));
  out_shape = {s[0], s[1], (ph - kernel.h) / stride.h + 1, (pw - kernel.w) / stride.w + 1};
  return im2col(reshape(x, {s[0] * s[1], 1, s[2], s[3]}), kernel, stride, padding);
}

}  // namespace

template <class T>
Tensor<T> avg_pool2d(const Tensor<T>& x, Size2 kernel) {
  return avg_pool2d(x, kernel, kernel, 0);
}

template <class T>
Tensor<T> avg_pool2d(const Tensor<T>& x, Size2 kernel, Size2 stride, Size2 padding) {
  Shape out;
  const Tensor<T> cols = windows("avg_pool2d", x, kernel, stride, padding, out);
  return reshape(mean(cols, {1}), out);
}

template <class T>
Tensor<T> max_pool2d(const Tensor<T>& x, Size2 kernel) {
  return max_pool2d(x, kernel, kernel);
}

template <class T>
Tensor<T> max_pool2d(const Tensor<T>& x, Size2 kernel, Size2 stride) {
  Shape out;
  const Tensor<T> cols = windows("max_pool2d", x, kernel, stride, 0, out);
  return reshape(max(cols, 1), out);
}

template Tensor<float> avg_pool2d(const Tensor<float>&, Size2);
template Tensor<float> avg_pool2d(const Tensor<float>&, Size2, Size2, Size2);
template Tensor<float> max_pool2d(const Tensor<float>&, Size2);
template Tensor<float> max_pool2d(const Tensor<float>&, Size2, Size2);
template Tensor<double> avg_pool2d(const Tensor<double>&, Size2);
template Tensor<double> avg_pool2d(const Tensor<double>&, Size2, Size2, Size2);
template Tensor<double> max_pool2d(const Tensor<double>&, Size2);
template Tensor<double> max_pool2d(const Tensor<double>&, Size2, Size2);

}  // namespace tapegrad
