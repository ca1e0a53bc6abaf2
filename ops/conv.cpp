#include "conv.hpp"

#include "elementwise.hpp"
#include "kernels.hpp"
#include "../core/parallel.hpp"
#include "linalg.hpp"
#include "reduce.hpp"
#include "shape.hpp"

namespace tapegrad {

std::string size2_str(const Size2& s) { return shape_str({s.h, s.w}); }

Size2 detail::window_output(const std::string& op, const Shape& x, Size2 kernel, Size2 stride, Size2 padding) {
  if (x.size() != 4) throw_shape_error(op, "input must be 4-D (N, C, H, W), got shape " + shape_str(x));
  // The kernel first: a kernel of 0 is also the default stride of pooling.
  if (kernel.h == 0 || kernel.w == 0) throw_value_error(op, "kernel must be >= 1, got " + size2_str(kernel));
  if (stride.h == 0 || stride.w == 0) throw_value_error(op, "stride must be >= 1, got " + size2_str(stride));
  // Negative values converted to size_t land here too: they are far above any real size.
  const std::size_t limit = std::size_t(1) << 31;
  if (padding.h >= limit || padding.w >= limit)
    throw_value_error(op, "padding " + size2_str(padding) + " is out of range (negative or >= 2^31)");
  if (stride.h >= limit || stride.w >= limit || kernel.h >= limit || kernel.w >= limit)
    throw_value_error(op, "stride " + size2_str(stride) + " or kernel " + size2_str(kernel) +
                              " is out of range (negative or >= 2^31)");
  detail::checked_count(op, x);
  const std::size_t ph = x[2] + 2 * padding.h, pw = x[3] + 2 * padding.w;
  if (kernel.h > ph || kernel.w > pw)
    throw_shape_error(op, "kernel " + size2_str(kernel) + " is larger than the padded input " + size2_str({ph, pw}) +
                              " (input " + size2_str({x[2], x[3]}) + ", padding " + size2_str(padding) + ")");
  return {(ph - kernel.h) / stride.h + 1, (pw - kernel.w) / stride.w + 1};
}

namespace {

template <class T>
using Grads = std::vector<Tensor<T>>;

// The geometry shared by im2col and col2im, checked.
struct Patches {
  std::size_t n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow;
  std::size_t rows() const { return c * kh * kw; }
  std::size_t cols() const { return oh * ow; }
};

Patches patches(const std::string& op, const Shape& x, Size2 kernel, Size2 stride, Size2 padding) {
  const Size2 out = detail::window_output(op, x, kernel, stride, padding);
  const Patches p{x[0], x[1], x[2], x[3], kernel.h, kernel.w, stride.h, stride.w, padding.h, padding.w, out.h, out.w};
  detail::checked_count(op, {p.n, p.c, kernel.h, kernel.w, p.oh, p.ow});   // the columns
  return p;
}

// Walks every row of the columns: for each (n, c, i, j) and output row oy, calls
// row(column_offset, inside, input_offset, first, last): inside is false when the input row lies in
// the padding; input_offset + ox*sw is the input element of output column ox in [first, last),
// the output columns whose input column ox*sw - pw + j lies inside the input.
template <class F>
void for_each_patch_row(const Patches& p, F row, std::size_t first_image, std::size_t last_image) {
  const std::size_t L = p.cols(), RL = p.rows() * L;
  for (std::size_t n = first_image; n < last_image; ++n)
    for (std::size_t c = 0; c < p.c; ++c)
      for (std::size_t i = 0; i < p.kh; ++i)
        for (std::size_t j = 0; j < p.kw; ++j) {
          const std::size_t r = (c * p.kh + i) * p.kw + j;
          // ox*sw + j - pw in [0, W)  <=>  ox in [first, last)
          const std::size_t first = j >= p.pw ? 0 : (p.pw - j + p.sw - 1) / p.sw;
          const std::size_t last = p.w + p.pw > j ? std::min(p.ow, (p.w + p.pw - j - 1) / p.sw + 1) : 0;
          for (std::size_t oy = 0; oy < p.oh; ++oy) {
            const std::ptrdiff_t y = std::ptrdiff_t(oy * p.sh + i) - std::ptrdiff_t(p.ph);
            const std::size_t col = n * RL + r * L + oy * p.ow;
            const bool inside = y >= 0 && y < std::ptrdiff_t(p.h);
            const std::ptrdiff_t in = inside ? std::ptrdiff_t(((n * p.c + c) * p.h + std::size_t(y)) * p.w) +
                                                   std::ptrdiff_t(j) - std::ptrdiff_t(p.pw)
                                             : 0;
            row(col, inside, in, first, last);
          }
        }
}

// Whether one image's zero-padded planes, (C, H + 2ph, W + 2pw), are no larger than its columns.
// They are then built, and im2col and col2im run as plain row copies without bounds checks;
// otherwise (padding far beyond the windows the strides visit) the rows are clipped one by one.
bool pads_cheaply(const Patches& p) {
  return (p.h + 2 * p.ph) * (p.w + 2 * p.pw) <= p.kh * p.kw * p.oh * p.ow;
}

// Image n's planes with their zero padding: the image itself when there is no padding, else a
// padded copy in `buffer`.
template <class T>
const T* padded_planes(const Patches& p, const T* x, std::size_t n, std::vector<T>& buffer) {
  const T* image = x + n * p.c * p.h * p.w;
  if (p.ph == 0 && p.pw == 0) return image;
  const std::size_t hp = p.h + 2 * p.ph, wp = p.w + 2 * p.pw;
  buffer.assign(p.c * hp * wp, T(0));
  for (std::size_t c = 0; c < p.c; ++c)
    for (std::size_t y = 0; y < p.h; ++y) {
      const T* row = image + (c * p.h + y) * p.w;
      std::copy(row, row + p.w, buffer.data() + (c * hp + y + p.ph) * wp + p.pw);
    }
  return buffer.data();
}

// Calls f(r, offset) for every row r = (c, i, j) of one image's columns, offset being the padded
// planes' element under output position (0, 0).
template <class F>
void for_each_kernel_offset(const Patches& p, F f) {
  const std::size_t hp = p.h + 2 * p.ph, wp = p.w + 2 * p.pw;
  for (std::size_t c = 0; c < p.c; ++c)
    for (std::size_t i = 0; i < p.kh; ++i)
      for (std::size_t j = 0; j < p.kw; ++j) f((c * p.kh + i) * p.kw + j, (c * hp + i) * wp + j);
}

// to[oy, ox] = from[oy * row_stride + ox * step] over (rows, cols): one row of the columns.
template <class T>
void gather_rows(const T* __restrict from, std::size_t row_stride, std::size_t step, T* __restrict to,
                 std::size_t rows, std::size_t cols) {
  for (std::size_t oy = 0; oy < rows; ++oy, from += row_stride, to += cols) {
    if (step == 1) {
      for (std::size_t ox = 0; ox < cols; ++ox) to[ox] = from[ox];
    } else {
      for (std::size_t ox = 0; ox < cols; ++ox) to[ox] = from[ox * step];
    }
  }
}

// The adjoint: to[oy * row_stride + ox * step] += from[oy, ox]. Within one row of the columns no
// two positions meet, so the pointers do not alias.
template <class T>
void scatter_rows(const T* __restrict from, T* __restrict to, std::size_t row_stride, std::size_t step,
                  std::size_t rows, std::size_t cols) {
  for (std::size_t oy = 0; oy < rows; ++oy, from += cols, to += row_stride) {
    if (step == 1) {
      for (std::size_t ox = 0; ox < cols; ++ox) to[ox] += from[ox];
    } else {
      for (std::size_t ox = 0; ox < cols; ++ox) to[ox * step] += from[ox];
    }
  }
}

// Images are split over the tg::Parallel threads, if any: each writes its own rows.
template <class F>
void for_each_patch_row(const Patches& p, F row) {
  detail::parallel_for(p.n, [&](std::size_t begin, std::size_t end) { for_each_patch_row(p, row, begin, end); });
}

// The GEMMs' (N, K, L) output plus a bias per channel, as (N, K, Ho, Wo) in one pass.
//   y[n, k, :] = x[n, k, :] + b[k];  dx = reshape(grad),  db = sum of grad over n and positions
template <class T>
Tensor<T> add_bias_nchw(const Tensor<T>& x, const Tensor<T>& b, const Shape& shape) {
  const Shape xs = x.shape();
  const std::size_t N = xs[0], K = xs[1], L = xs[2];
  xt::xarray<T> y = detail::empty_array<T>(shape);
  const T* src = x.value().data();
  const T* bias = b.value().data();
  T* dst = y.data();
  for (std::size_t n = 0; n < N; ++n)
    for (std::size_t k = 0; k < K; ++k) {
      const std::size_t at = (n * K + k) * L;
      for (std::size_t l = 0; l < L; ++l) dst[at + l] = src[at + l] + bias[k];
    }
  return record<T>("add_bias", {x, b}, std::move(y), [xs](const VjpArgs<T>& g) {
    return Grads<T>{g.needs_grad(0) ? reshape(g.grad, xs) : Tensor<T>(),
                    g.needs_grad(1) ? sum(g.grad, {0, 2, 3}) : Tensor<T>()};
  }, Saved::nothing);
}

}  // namespace

// cols = patches of x, per image one row per (channel, kernel offset) and one column per output
// position: (N, C*kh*kw, Ho*Wo);  dx = col2im(grad)
template <class T>
Tensor<T> im2col(const Tensor<T>& x, Size2 kernel, Size2 stride, Size2 padding) {
  check_defined<T>("im2col", {&x});
  const Shape shape = x.shape();
  const Patches p = patches("im2col", shape, kernel, stride, padding);
  xt::xarray<T> cols = detail::empty_array<T>({p.n, p.rows(), p.cols()});
  const T* src = x.value().data();
  T* dst = cols.data();
  const std::size_t sw = p.sw, L = p.cols(), wp = p.w + 2 * p.pw;
  if (pads_cheaply(p)) {
    detail::parallel_for(p.n, [&](std::size_t first, std::size_t last) {
      std::vector<T> buffer;
      for (std::size_t n = first; n < last; ++n) {
        const T* planes = padded_planes(p, src, n, buffer);
        T* image_cols = dst + n * p.rows() * L;
        for_each_kernel_offset(p, [&](std::size_t r, std::size_t offset) {
          gather_rows(planes + offset, p.sh * wp, sw, image_cols + r * L, p.oh, p.ow);
        });
      }
    });
  } else {
    for_each_patch_row(p, [&](std::size_t col, bool inside, std::ptrdiff_t in, std::size_t first, std::size_t last) {
      T* out = dst + col;
      if (!inside || first >= last) {
        std::fill(out, out + p.ow, T(0));
        return;
      }
      std::fill(out, out + first, T(0));
      const T* row = src + in;   // row[ox * sw] is the input element of output column ox
      for (std::size_t ox = first; ox < last; ++ox) out[ox] = row[ox * sw];
      std::fill(out + last, out + p.ow, T(0));
    });
  }
  return record<T>("im2col", {x}, std::move(cols), [shape, kernel, stride, padding](const VjpArgs<T>& g) {
    return Grads<T>{col2im(g.grad, shape, kernel, stride, padding)};
  }, Saved::nothing);
}

// x = sum of columns into their positions;  dcols = im2col(grad)
template <class T>
Tensor<T> col2im(const Tensor<T>& cols, const Shape& input_shape, Size2 kernel, Size2 stride, Size2 padding) {
  check_defined<T>("col2im", {&cols});
  const Patches p = patches("col2im", input_shape, kernel, stride, padding);
  const Shape expected{p.n, p.rows(), p.cols()};
  if (cols.shape() != expected)
    throw_shape_error("col2im", "columns of shape " + shape_str(cols.shape()) + " do not fit input shape " +
                                    shape_str(input_shape) + " (expected " + shape_str(expected) + ")");
  xt::xarray<T> x = xt::zeros<T>(input_shape);
  const T* src = cols.value().data();
  T* dst = x.data();
  const std::size_t sw = p.sw, L = p.cols(), wp = p.w + 2 * p.pw, hp = p.h + 2 * p.ph;
  if (pads_cheaply(p)) {
    // Each image's columns summed into its padded planes, whose inside is then its part of x.
    const bool padded = p.ph > 0 || p.pw > 0;
    detail::parallel_for(p.n, [&](std::size_t first, std::size_t last) {
      std::vector<T> buffer;
      for (std::size_t n = first; n < last; ++n) {
        T* image = dst + n * p.c * p.h * p.w;
        if (padded) buffer.assign(p.c * hp * wp, T(0));
        T* planes = padded ? buffer.data() : image;
        const T* image_cols = src + n * p.rows() * L;
        for_each_kernel_offset(p, [&](std::size_t r, std::size_t offset) {
          scatter_rows(image_cols + r * L, planes + offset, p.sh * wp, sw, p.oh, p.ow);
        });
        if (!padded) continue;
        for (std::size_t c = 0; c < p.c; ++c)
          for (std::size_t y = 0; y < p.h; ++y) {
            const T* row = planes + (c * hp + y + p.ph) * wp + p.pw;
            std::copy(row, row + p.w, image + (c * p.h + y) * p.w);
          }
      }
    });
  } else {
    for_each_patch_row(p, [&](std::size_t col, bool inside, std::ptrdiff_t in, std::size_t first, std::size_t last) {
      if (!inside) return;
      const T* from = src + col;
      T* row = dst + in;
      for (std::size_t ox = first; ox < last; ++ox) row[ox * sw] += from[ox];
    });
  }
  return record<T>("col2im", {cols}, std::move(x), [kernel, stride, padding](const VjpArgs<T>& g) {
    return Grads<T>{im2col(g.grad, kernel, stride, padding)};
  }, Saved::nothing);
}

// y[n] = W (K, C*kh*kw) @ im2col(x)[n] + b: one small GEMM per image (OpenBLAS runs these
// without packing, the columns of one image staying in cache). Composed of im2col, matmul, add
// and reshape, whose VJPs give dW (per-image GEMMs summed over the batch), dx (col2im) and db.
template <class T>
Tensor<T> conv2d(const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>& b, Size2 stride, Size2 padding) {
  check_defined<T>("conv2d", {&x, &w});
  const Shape xs = x.shape(), ws = w.shape();
  if (xs.size() != 4) throw_shape_error("conv2d", "input must be 4-D (N, C, H, W), got shape " + shape_str(xs));
  if (ws.size() != 4)
    throw_shape_error("conv2d", "weight must be 4-D (K, C, kh, kw), got shape " + shape_str(ws));
  if (xs[1] != ws[1])
    throw_shape_error("conv2d", "input shape " + shape_str(xs) + " and weight shape " + shape_str(ws) +
                                    " disagree on channels (x.shape[1]=" + std::to_string(xs[1]) +
                                    " != w.shape[1]=" + std::to_string(ws[1]) + ")");
  if (b.defined() && b.shape() != Shape{ws[0]})
    throw_shape_error("conv2d", "bias shape " + shape_str(b.shape()) + " does not match the " +
                                    std::to_string(ws[0]) + " output channels of weight shape " + shape_str(ws) +
                                    " (expected (" + std::to_string(ws[0]) + "))");
  const Patches p = patches("conv2d", xs, {ws[2], ws[3]}, stride, padding);
  const Tensor<T> cols = im2col(x, {ws[2], ws[3]}, stride, padding);   // (N, C*kh*kw, L)
  Tensor<T> y = matmul(reshape(w, {ws[0], p.rows()}), cols);          // (N, K, L)
  const Shape out{p.n, ws[0], p.oh, p.ow};
  return b.defined() ? add_bias_nchw(y, b, out) : reshape(y, out);
}

template Tensor<float> conv2d(const Tensor<float>&, const Tensor<float>&, const Tensor<float>&, Size2, Size2);
template Tensor<float> im2col(const Tensor<float>&, Size2, Size2, Size2);
template Tensor<float> col2im(const Tensor<float>&, const Shape&, Size2, Size2, Size2);
template Tensor<double> conv2d(const Tensor<double>&, const Tensor<double>&, const Tensor<double>&, Size2, Size2);
template Tensor<double> im2col(const Tensor<double>&, Size2, Size2, Size2);
template Tensor<double> col2im(const Tensor<double>&, const Shape&, Size2, Size2, Size2);

}  // namespace tapegrad
