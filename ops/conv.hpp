// 2-D convolution (NCHW): per image, patches as columns then a GEMM; its input and weight
// gradients are primitives too. im2col and col2im are primitives with each other as VJP.
#ifndef TAPEGRAD_OPS_CONV_HPP
#define TAPEGRAD_OPS_CONV_HPP

#include <cstddef>

#include "../core/tape.hpp"

namespace tapegrad {

// A (height, width) pair; a single number means the same for both.
struct Size2 {
  std::size_t h, w;
  Size2(std::size_t both) : h(both), w(both) {}  // NOLINT: implicit on purpose (stride 2)
  Size2(std::size_t height, std::size_t width) : h(height), w(width) {}
  bool operator==(const Size2& o) const { return h == o.h && w == o.w; }
};
std::string size2_str(const Size2& s);   // "(3, 3)"

namespace detail {
// The output size (Ho, Wo) of a kernel sliding over a 4-D (N, C, H, W) input with zero padding:
// every argument checked, errors naming `op` (shared by convolution and pooling).
Size2 window_output(const std::string& op, const Shape& x, Size2 kernel, Size2 stride, Size2 padding);
}  // namespace detail

// x (N, C, H, W), w (K, C, kh, kw), b (K) or an undefined Tensor for none -> (N, K, Ho, Wo) with
// Ho = (H + 2 padding.h - kh) / stride.h + 1 (rounded down), likewise Wo. Zero padding.
template <class T>
Tensor<T> conv2d(const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>& b, Size2 stride = 1,
                 Size2 padding = 0);

// Patches of x as columns: (N, C, H, W) -> (N, C*kh*kw, Ho*Wo); entry [n, (c*kh + i)*kw + j,
// oh*Wo + ow] holds x[n, c, oh*stride.h - padding.h + i, ow*stride.w - padding.w + j] (0 outside
// x). A GEMM with the (K, C*kh*kw) weights then convolves each image.
template <class T>
Tensor<T> im2col(const Tensor<T>& x, Size2 kernel, Size2 stride = 1, Size2 padding = 0);
// The adjoint of im2col: sums every column entry back into the (N, C, H, W) position it came from.
template <class T>
Tensor<T> col2im(const Tensor<T>& cols, const Shape& input_shape, Size2 kernel, Size2 stride = 1,
                 Size2 padding = 0);

}  // namespace tapegrad

#endif
