#include "conv.hpp"

#include <limits>

#include "kernels.hpp"
#include "../core/parallel.hpp"
#include "reduce.hpp"

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
using Grads = Gradients<T>;

// The geometry of a kernel sliding over (N, C, H, W) images, checked: one image's columns are
// (rows, cols) = (C*kh*kw, Ho*Wo).
struct Patches {
  std::size_t n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow;
  std::size_t rows() const { return c * kh * kw; }
  std::size_t cols() const { return oh * ow; }
  std::size_t image() const { return c * h * w; }
};

Patches patches(const std::string& op, const Shape& x, Size2 kernel, Size2 stride, Size2 padding) {
  const Size2 out = detail::window_output(op, x, kernel, stride, padding);
  const Patches p{x[0], x[1], x[2], x[3], kernel.h, kernel.w, stride.h, stride.w, padding.h, padding.w, out.h, out.w};
  detail::checked_count(op, {p.n, p.c, kernel.h, kernel.w, p.oh, p.ow});   // the columns
  return p;
}

// Walks every row of image n's columns: for each (c, i, j) and output row oy, calls
// row(column_offset, inside, input_offset, first, last), column_offset within the image's
// columns: inside is false when the input row lies in the padding; input_offset + ox*sw is the
// input element of output column ox in [first, last), the output columns whose input column
// ox*sw - pw + j lies inside the input.
template <class F>
void for_each_patch_row(const Patches& p, std::size_t n, F row) {
  const std::size_t L = p.cols();
  for (std::size_t c = 0; c < p.c; ++c)
    for (std::size_t i = 0; i < p.kh; ++i)
      for (std::size_t j = 0; j < p.kw; ++j) {
        const std::size_t r = (c * p.kh + i) * p.kw + j;
        // ox*sw + j - pw in [0, W)  <=>  ox in [first, last)
        const std::size_t first = j >= p.pw ? 0 : (p.pw - j + p.sw - 1) / p.sw;
        const std::size_t last = p.w + p.pw > j ? std::min(p.ow, (p.w + p.pw - j - 1) / p.sw + 1) : 0;
        for (std::size_t oy = 0; oy < p.oh; ++oy) {
          const std::ptrdiff_t y = std::ptrdiff_t(oy * p.sh + i) - std::ptrdiff_t(p.ph);
          const bool inside = y >= 0 && y < std::ptrdiff_t(p.h);
          const std::ptrdiff_t in = inside ? std::ptrdiff_t(((n * p.c + c) * p.h + std::size_t(y)) * p.w) +
                                                 std::ptrdiff_t(j) - std::ptrdiff_t(p.pw)
                                           : 0;
          row(r * L + oy * p.ow, inside, in, first, last);
        }
      }
}

// Whether one image's zero-padded planes, (C, H + 2ph, W + 2pw), are no larger than its columns.
// They are then built, and the columns are plain row copies without bounds checks; otherwise
// (padding far beyond the windows the strides visit) the rows are clipped one by one.
bool pads_cheaply(const Patches& p) {
  return (p.h + 2 * p.ph) * (p.w + 2 * p.pw) <= p.kh * p.kw * p.oh * p.ow;
}

// Image n's planes with their zero padding: the image itself when there is no padding, else a
// padded copy in `buffer`.
template <class T>
const T* padded_planes(const Patches& p, const T* x, std::size_t n, std::vector<T>& buffer) {
  const T* image = x + n * p.image();
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

// cols = image n of x as columns (rows() x cols()); `padded` is scratch space.
template <class T>
void image_columns(const Patches& p, const T* x, std::size_t n, std::vector<T>& padded, T* cols) {
  const std::size_t L = p.cols(), wp = p.w + 2 * p.pw;
  if (pads_cheaply(p)) {
    const T* planes = padded_planes(p, x, n, padded);
    for_each_kernel_offset(p, [&](std::size_t r, std::size_t offset) {
      gather_rows(planes + offset, p.sh * wp, p.sw, cols + r * L, p.oh, p.ow);
    });
    return;
  }
  for_each_patch_row(p, n, [&](std::size_t col, bool inside, std::ptrdiff_t in, std::size_t first, std::size_t last) {
    T* out = cols + col;
    if (!inside || first >= last) {
      std::fill(out, out + p.ow, T(0));
      return;
    }
    std::fill(out, out + first, T(0));
    const T* row = x + in;   // row[ox * sw] is the input element of output column ox
    for (std::size_t ox = first; ox < last; ++ox) out[ox] = row[ox * p.sw];
    std::fill(out + last, out + p.ow, T(0));
  });
}

// to[ox * to_step + j] = from[ox * from_step + j] for ox < count, j < width (= Width unless 0).
template <std::size_t Width, class T>
void copy_runs(const T* __restrict from, std::size_t from_step, T* __restrict to, std::size_t to_step,
               std::size_t count, std::size_t width) {
  const std::size_t w = Width ? Width : width;
  for (std::size_t ox = 0; ox < count; ++ox, from += from_step, to += to_step)
    for (std::size_t j = 0; j < w; ++j) to[j] = from[j];
}

// colsT = image n of x as transposed columns, (cols() x rows()): one row per output position,
// the patch under it. With the padded planes each row is C*kh runs of kw elements; otherwise the
// columns are built and transposed.
template <class T>
void image_columns_transposed(const Patches& p, const T* x, std::size_t n, std::vector<T>& padded,
                              std::vector<T>& scratch, T* colsT) {
  const std::size_t R = p.rows(), L = p.cols();
  if (!pads_cheaply(p)) {
    scratch.resize(R * L);
    image_columns(p, x, n, padded, scratch.data());
    for (std::size_t r = 0; r < R; ++r)
      for (std::size_t l = 0; l < L; ++l) colsT[l * R + r] = scratch[r * L + l];
    return;
  }
  const T* planes = padded_planes(p, x, n, padded);
  const std::size_t hp = p.h + 2 * p.ph, wp = p.w + 2 * p.pw;
  for (std::size_t c = 0; c < p.c; ++c)
    for (std::size_t i = 0; i < p.kh; ++i)
      for (std::size_t oy = 0; oy < p.oh; ++oy) {
        const T* from = planes + (c * hp + oy * p.sh + i) * wp;
        T* to = colsT + oy * p.ow * R + (c * p.kh + i) * p.kw;
        switch (p.kw) {   // the common widths with a fixed-length copy
          case 3: copy_runs<3>(from, p.sw, to, R, p.ow, 3); break;
          case 5: copy_runs<5>(from, p.sw, to, R, p.ow, 5); break;
          default: copy_runs<0>(from, p.sw, to, R, p.ow, p.kw);
        }
      }
}

// Image n of x = its columns summed back into the positions they came from (the adjoint of
// image_columns); every element of image n is written.
template <class T>
void image_from_columns(const Patches& p, const T* cols, std::size_t n, std::vector<T>& padded, T* x) {
  const std::size_t L = p.cols(), wp = p.w + 2 * p.pw, hp = p.h + 2 * p.ph;
  T* image = x + n * p.image();
  const bool pad = p.ph > 0 || p.pw > 0;
  if (pads_cheaply(p)) {
    // Summed into the padded planes, whose inside is then the image.
    if (pad) padded.assign(p.c * hp * wp, T(0));
    else std::fill(image, image + p.image(), T(0));
    T* planes = pad ? padded.data() : image;
    for_each_kernel_offset(p, [&](std::size_t r, std::size_t offset) {
      scatter_rows(cols + r * L, planes + offset, p.sh * wp, p.sw, p.oh, p.ow);
    });
    if (!pad) return;
    for (std::size_t c = 0; c < p.c; ++c)
      for (std::size_t y = 0; y < p.h; ++y) {
        const T* row = planes + (c * hp + y + p.ph) * wp + p.pw;
        std::copy(row, row + p.w, image + (c * p.h + y) * p.w);
      }
    return;
  }
  std::fill(image, image + p.image(), T(0));
  for_each_patch_row(p, n, [&](std::size_t col, bool inside, std::ptrdiff_t in, std::size_t first, std::size_t last) {
    if (!inside) return;
    const T* from = cols + col;
    T* row = x + in;
    for (std::size_t ox = first; ox < last; ++ox) row[ox * p.sw] += from[ox];
  });
}

// BLAS takes int dimensions: a ShapeError naming `op` beyond them.
void check_blas_dims(const std::string& op, const Shape& x, const Shape& w, const Patches& p) {
  for (std::size_t d : {p.rows(), p.cols(), w[0]})
    if (d > std::size_t(std::numeric_limits<int>::max()))
      throw_shape_error(op, "input shape " + shape_str(x) + " and weight shape " + shape_str(w) +
                                ": a matrix dimension of the product (" + std::to_string(d) +
                                ") exceeds 2^31 - 1, the BLAS limit");
}

// The patches of x under w's (K, C, kh, kw) kernel.
Patches kernel_patches(const std::string& op, const Shape& x_shape, const Shape& w_shape, Size2 stride,
                       Size2 padding) {
  return patches(op, x_shape, {w_shape[2], w_shape[3]}, stride, padding);
}

// The weight gradient sums one product per image. Images are taken in fixed blocks, each summed
// on its own, then the blocks in order: the result does not depend on the thread count.
constexpr std::size_t weight_grad_block = 8;

template <class T>
Tensor<T> conv2d_forward(const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>& b, Size2 stride, Size2 padding);
template <class T>
Tensor<T> conv2d_input_grad(const Tensor<T>& grad, const Tensor<T>& w, const Shape& x_shape, Size2 stride,
                            Size2 padding);

// dW[k, (c,i,j)] = sum over images n and positions l of grad[n, k, l] * columns(x)[n, (c,i,j), l];
//   dx = conv2d_input_grad(grad, gw),  dgrad = conv2d(x, gw)   (bilinear in x and grad)
template <class T>
Tensor<T> conv2d_weight_grad(const Tensor<T>& x, const Tensor<T>& grad, const Shape& w_shape, Size2 stride,
                             Size2 padding) {
  const Patches p = kernel_patches("conv2d_weight_grad", x.shape(), w_shape, stride, padding);
  const std::size_t K = w_shape[0], R = p.rows(), L = p.cols();
  const std::size_t blocks = (p.n + weight_grad_block - 1) / weight_grad_block;
  std::vector<T> partial(blocks * K * R);
  const T* xs = x.value().data();
  const T* gs = grad.value().data();
  // grad[n] (K x L) times the image's columns transposed: as (L x R) columns, a plain product that
  // libxsmm's kernels take where they are faster (detail::prefers_jit_gemm); else B transposed,
  // for OpenBLAS, which computes that faster than the plain product of the same shape.
  const bool transposed = detail::prefers_jit_gemm(false, K, R, L, sizeof(T));
  detail::parallel_for(blocks, [&](std::size_t first, std::size_t last) {
    std::vector<T> cols(R * L), padded, scratch;
    for (std::size_t block = first; block < last; ++block) {
      T* sum = partial.data() + block * K * R;
      const std::size_t begin = block * weight_grad_block, end = std::min(p.n, begin + weight_grad_block);
      for (std::size_t n = begin; n < end; ++n) {
        const T beta = n == begin ? T(0) : T(1);
        if (transposed) {
          image_columns_transposed(p, xs, n, padded, scratch, cols.data());
          detail::gemm(true, false, false, K, R, L, gs + n * K * L, L, cols.data(), R, beta, sum, R);
        } else {
          image_columns(p, xs, n, padded, cols.data());
          detail::gemm(false, false, true, K, R, L, gs + n * K * L, L, cols.data(), L, beta, sum, R);
        }
      }
    }
  });
  xt::xarray<T> dw = xt::zeros<T>(w_shape);
  T* out = dw.data();
  for (std::size_t block = 0; block < blocks; ++block)
    for (std::size_t e = 0; e < K * R; ++e) out[e] += partial[block * K * R + e];
  return record<T>("conv2d_weight_grad", {x, grad}, std::move(dw), [stride, padding](const VjpArgs<T>& g) {
    const Tensor<T>& x = g.input(0);
    const Tensor<T>& grad = g.input(1);
    return Grads<T>{g.needs_grad(0) ? conv2d_input_grad(grad, g.grad, x.shape(), stride, padding) : Tensor<T>(),
                    g.needs_grad(1) ? conv2d_forward(x, g.grad, Tensor<T>(), stride, padding) : Tensor<T>()};
  });
}

// dx[n] = columns summed back (col2im) of w^T grad[n];
//   dgrad = conv2d(gx, w),  dw = conv2d_weight_grad(gx, grad)   (bilinear in grad and w)
template <class T>
Tensor<T> conv2d_input_grad(const Tensor<T>& grad, const Tensor<T>& w, const Shape& x_shape, Size2 stride,
                            Size2 padding) {
  const Shape w_shape = w.shape();
  const Patches p = kernel_patches("conv2d_input_grad", x_shape, w_shape, stride, padding);
  const std::size_t K = w_shape[0], R = p.rows(), L = p.cols();
  xt::xarray<T> dx = detail::empty_array<T>(x_shape);
  const T* ws = w.value().data();
  const T* gs = grad.value().data();
  T* out = dx.data();
  detail::parallel_for(p.n, [&](std::size_t first, std::size_t last) {
    std::vector<T> cols(R * L), padded;
    for (std::size_t n = first; n < last; ++n) {
      detail::gemm(true, false, R, L, K, ws, R, gs + n * K * L, L, T(0), cols.data(), L);
      image_from_columns(p, cols.data(), n, padded, out);
    }
  });
  return record<T>("conv2d_input_grad", {grad, w}, std::move(dx), [stride, padding](const VjpArgs<T>& g) {
    const Tensor<T>& grad = g.input(0);
    const Tensor<T>& w = g.input(1);
    return Grads<T>{g.needs_grad(0) ? conv2d_forward(g.grad, w, Tensor<T>(), stride, padding) : Tensor<T>(),
                    g.needs_grad(1) ? conv2d_weight_grad(g.grad, grad, w.shape(), stride, padding) : Tensor<T>()};
  });
}

// y[n] = w (K, C*kh*kw) @ columns(x)[n] + b, image by image: each image's columns are built in a
// buffer that stays in cache for its product, and are built again by the weight gradient rather
// than kept.
//   dx = conv2d_input_grad(grad, w),  dw = conv2d_weight_grad(x, grad),  db = sum of grad over (n, y, x)
template <class T>
Tensor<T> conv2d_forward(const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>& b, Size2 stride, Size2 padding) {
  const Shape x_shape = x.shape(), w_shape = w.shape();
  const Patches p = kernel_patches("conv2d", x_shape, w_shape, stride, padding);
  const std::size_t K = w_shape[0], R = p.rows(), L = p.cols();
  check_blas_dims("conv2d", x_shape, w_shape, p);
  const Shape out_shape{p.n, K, p.oh, p.ow};
  detail::checked_count("conv2d", out_shape);
  xt::xarray<T> y = detail::empty_array<T>(out_shape);
  const T* xs = x.value().data();
  const T* ws = w.value().data();
  const T* bias = b.defined() ? b.value().data() : nullptr;
  T* out = y.data();
  detail::parallel_for(p.n, [&](std::size_t first, std::size_t last) {
    std::vector<T> cols(R * L), padded;
    for (std::size_t n = first; n < last; ++n) {
      T* image = out + n * K * L;
      image_columns(p, xs, n, padded, cols.data());
      detail::gemm(false, false, K, L, R, ws, R, cols.data(), L, T(0), image, L);
      if (!bias) continue;
      for (std::size_t k = 0; k < K; ++k)
        for (std::size_t l = 0; l < L; ++l) image[k * L + l] += bias[k];
    }
  });
  auto vjp = [stride, padding](const VjpArgs<T>& g) {
    const Tensor<T>& x = g.input(0);
    const Tensor<T>& w = g.input(1);
    Grads<T> grads{g.needs_grad(0) ? conv2d_input_grad(g.grad, w, x.shape(), stride, padding) : Tensor<T>(),
                   g.needs_grad(1) ? conv2d_weight_grad(x, g.grad, w.shape(), stride, padding) : Tensor<T>()};
    if (g.inputs.size() == 3) grads.push_back(g.needs_grad(2) ? sum(g.grad, {0, 2, 3}) : Tensor<T>());
    return grads;
  };
  return b.defined() ? record<T>("conv2d", {x, w, b}, std::move(y), vjp) : record<T>("conv2d", {x, w}, std::move(y), vjp);
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
  // Images are split over the tg::Parallel threads, if any: each writes its own columns.
  detail::parallel_for(p.n, [&](std::size_t first, std::size_t last) {
    std::vector<T> padded;
    for (std::size_t n = first; n < last; ++n) image_columns(p, src, n, padded, dst + n * p.rows() * p.cols());
  });
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
  xt::xarray<T> x = detail::empty_array<T>(input_shape);
  const T* src = cols.value().data();
  T* dst = x.data();
  detail::parallel_for(p.n, [&](std::size_t first, std::size_t last) {
    std::vector<T> padded;
    for (std::size_t n = first; n < last; ++n) image_from_columns(p, src + n * p.rows() * p.cols(), n, padded, dst);
  });
  return record<T>("col2im", {cols}, std::move(x), [kernel, stride, padding](const VjpArgs<T>& g) {
    return Grads<T>{im2col(g.grad, kernel, stride, padding)};
  }, Saved::nothing);
}

// The shapes checked, then conv2d_forward: one primitive whose VJP is two more (input and weight
// gradients), each differentiable in terms of the three.
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
  return conv2d_forward(x, w, b, stride, padding);
}

template Tensor<float> conv2d(const Tensor<float>&, const Tensor<float>&, const Tensor<float>&, Size2, Size2);
template Tensor<float> im2col(const Tensor<float>&, Size2, Size2, Size2);
template Tensor<float> col2im(const Tensor<float>&, const Shape&, Size2, Size2, Size2);
template Tensor<double> conv2d(const Tensor<double>&, const Tensor<double>&, const Tensor<double>&, Size2, Size2);
template Tensor<double> im2col(const Tensor<double>&, Size2, Size2, Size2);
template Tensor<double> col2im(const Tensor<double>&, const Shape&, Size2, Size2, Size2);

}  // namespace tapegrad
