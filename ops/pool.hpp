// 2-D pooling (NCHW): fused primitives (a window loop each way), faster than im2col + a reduction.
#ifndef TAPEGRAD_OPS_POOL_HPP
#define TAPEGRAD_OPS_POOL_HPP

#include "conv.hpp"

namespace tapegrad {

// Mean of each kernel window: (N, C, H, W) -> (N, C, Ho, Wo), Ho = (H + 2 padding - kh) / stride + 1.
// Windows that do not fit are dropped (PyTorch's default). The stride defaults to the kernel.
// Zero padding counts in the mean (PyTorch's count_include_pad=True).
template <class T>
Tensor<T> avg_pool2d(const Tensor<T>& x, Size2 kernel);
template <class T>
Tensor<T> avg_pool2d(const Tensor<T>& x, Size2 kernel, Size2 stride, Size2 padding = 0);
// Maximum of each kernel window. When several elements of a window tie for the maximum, the
// whole gradient goes to the first of them in row-major order within the window. Padding (at
// most half the kernel, as PyTorch's) adds no element: a window's maximum is over its elements
// inside the input.
template <class T>
Tensor<T> max_pool2d(const Tensor<T>& x, Size2 kernel);
template <class T>
Tensor<T> max_pool2d(const Tensor<T>& x, Size2 kernel, Size2 stride, Size2 padding = 0);

}  // namespace tapegrad

#endif
