// im2col and its relatives for the convolution ops (ops/conv.cpp): internal, namespace detail.
#ifndef TAPEGRAD_OPS_CONV_KERNELS_HPP
#define TAPEGRAD_OPS_CONV_KERNELS_HPP

#include <string>
#include <vector>

#include "conv.hpp"

namespace tapegrad {
namespace detail {

// The geometry of a kernel sliding over (N, C, H, W) images, checked: one image's columns are
// (rows, cols) = (C*kh*kw, Ho*Wo).
struct Patches {
  std::size_t n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow;
  std::size_t rows() const { return c * kh * kw; }
  std::size_t cols() const { return oh * ow; }
  std::size_t image() const { return c * h * w; }
};

// The patches of x (N, C, H, W) under a kernel, checked; errors name `op`.
Patches patches(const std::string& op, const Shape& x, Size2 kernel, Size2 stride, Size2 padding);

// cols = image n of x as columns (rows() x cols()); `padded` is scratch space.
template <class T>
void image_columns(const Patches& p, const T* x, std::size_t n, std::vector<T>& padded, T* cols);
// colsT = image n of x as transposed columns, (cols() x rows()): one row per output position,
// the patch under it; `padded` and `scratch` are scratch space.
template <class T>
void image_columns_transposed(const Patches& p, const T* x, std::size_t n, std::vector<T>& padded,
                              std::vector<T>& scratch, T* colsT);
// Image n of x = its columns summed back into the positions they came from (the adjoint of
// image_columns); every element of image n is written.
template <class T>
void image_from_columns(const Patches& p, const T* cols, std::size_t n, std::vector<T>& padded, T* x);

}  // namespace detail
}  // namespace tapegrad

#endif
