#include "conv.hpp"

#include <limits>

#include "conv_kernels.hpp"
#include "../core/forward.hpp"
#include "kernels.hpp"
#include "../core/parallel.hpp"
#include "reduce.hpp"
#include "shape.hpp"
#include "elementwise.hpp"

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

using detail::Patches;
using detail::patches;

template <class T>
using Grads = Gradients<T>;

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
template <class T>
Tensor<T> conv2d_weight_grad(const Tensor<T>& x, const Tensor<T>& grad, const Shape& w_shape, Size2 stride,
                             Size2 padding);

}  // namespace

// The shapes checked, then conv2d_forward: one primitive whose VJP is two more (input and weight
// gradients), each differentiable in terms of the three.
template <class T>
Tensor<T> conv2d(const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>& b, Size2 stride, Size2 padding) {
  constexpr char op[] = "conv2d";
  check_defined<T>(op, {&x, &w});
  const Shape xs = x.shape(), ws = w.shape();
  if (xs.size() != 4) throw_shape_error(op, "input must be 4-D (N, C, H, W), got shape " + shape_str(xs));
  if (ws.size() != 4)
    throw_shape_error(op, "weight must be 4-D (K, C, kh, kw), got shape " + shape_str(ws));
  if (xs[1] != ws[1])
    throw_shape_error(op, "input shape " + shape_str(xs) + " and weight shape " + shape_str(ws) +
                                    " disagree on channels (x.shape[1]=" + std::to_string(xs[1]) +
                                    " != w.shape[1]=" + std::to_string(ws[1]) + ")");
  if (b.defined() && b.shape() != Shape{ws[0]})
    throw_shape_error(op, "bias shape " + shape_str(b.shape()) + " does not match the " +
                                    std::to_string(ws[0]) + " output channels of weight shape " + shape_str(ws) +
                                    " (expected (" + std::to_string(ws[0]) + "))");
  return conv2d_forward(x, w, b, stride, padding);
}

namespace {

// y[n] = w (K, C*kh*kw) @ columns(x)[n] + b, image by image: each image's columns are built in a
// buffer that stays in cache for its product, and are built again by the weight gradient rather
// than kept.
//   dx = conv2d_input_grad(grad, w),  dw = conv2d_weight_grad(x, grad),  db = sum of grad over (n, y, x);
//   ty = conv2d(tx, w) + conv2d(x, tw) + tb over (n, y, x)
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
  const bool jit = detail::prefers_jit_gemm(false, K, L, R, sizeof(T));   // once, on this thread
  detail::parallel_for(p.n, [&](std::size_t first, std::size_t last) {
    std::vector<T> cols(R * L), padded;
    for (std::size_t n = first; n < last; ++n) {
      T* image = out + n * K * L;
      image_columns(p, xs, n, padded, cols.data());
      detail::gemm(jit, false, false, K, L, R, ws, R, cols.data(), L, T(0), image, L);
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
  auto jvp = takes_batch([stride, padding](const JvpArgs<T>& j) {
    Tensor<T> t;
    auto add = [&t](const Tensor<T>& term) { t = t.defined() ? t + term : term; };
    const std::size_t B = j.batch;
    if (B == 0) {
      if (j.has_tangent(0)) add(conv2d_forward(j.tangents[0], j.inputs[1], Tensor<T>(), stride, padding));
      if (j.has_tangent(1)) add(conv2d_forward(j.inputs[0], j.tangents[1], Tensor<T>(), stride, padding));
      if (j.inputs.size() == 3 && j.has_tangent(2))
        add(broadcast_to(reshape(j.tangents[2], {1, j.tangents[2].size(), 1, 1}), j.output.shape()));
      return t;
    }
    // A batch: of tangents of x, as more images; of w, as more output channels.
    const Shape y = j.output.shape();
    const Shape batched{B, y[0], y[1], y[2], y[3]};
    if (j.has_tangent(0))
      add(detail::split_batch(conv2d_forward(detail::merge_batch(j.tangents[0]), j.inputs[1], Tensor<T>(), stride, padding), B));
    if (j.has_tangent(1)) {
      const Tensor<T> channels = conv2d_forward(j.inputs[0], detail::merge_batch(j.tangents[1]), Tensor<T>(), stride, padding);
      add(transpose(reshape(channels, {y[0], B, y[1], y[2], y[3]}), {1, 0, 2, 3, 4}));
    }
    if (j.inputs.size() == 3 && j.has_tangent(2))
      add(broadcast_to(reshape(j.tangents[2], {B, 1, y[1], 1, 1}), batched));
    return t;
  });
  return b.defined() ? record<T>("conv2d", {x, w, b}, std::move(y), vjp, Saved::inputs, jvp)
                     : record<T>("conv2d", {x, w}, std::move(y), vjp, Saved::inputs, jvp);
}

// dx[n] = columns summed back (col2im) of w^T grad[n];
//   dgrad = conv2d(gx, w),  dw = conv2d_weight_grad(gx, grad)   (bilinear in grad and w);
//   tdx = conv2d_input_grad(tgrad, w) + conv2d_input_grad(grad, tw)
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
  const bool jit = detail::prefers_jit_gemm(false, R, L, K, sizeof(T));   // once, on this thread
  detail::parallel_for(p.n, [&](std::size_t first, std::size_t last) {
    std::vector<T> cols(R * L), padded;
    for (std::size_t n = first; n < last; ++n) {
      detail::gemm(jit, true, false, R, L, K, ws, R, gs + n * K * L, L, T(0), cols.data(), L);
      image_from_columns(p, cols.data(), n, padded, out);
    }
  });
  return record<T>("conv2d_input_grad", {grad, w}, std::move(dx), [stride, padding](const VjpArgs<T>& g) {
    const Tensor<T>& grad = g.input(0);
    const Tensor<T>& w = g.input(1);
    return Grads<T>{g.needs_grad(0) ? conv2d_forward(g.grad, w, Tensor<T>(), stride, padding) : Tensor<T>(),
                    g.needs_grad(1) ? conv2d_weight_grad(g.grad, grad, w.shape(), stride, padding) : Tensor<T>()};
  }, Saved::inputs, takes_batch([x_shape, stride, padding](const JvpArgs<T>& j) {
    Tensor<T> t;
    auto add = [&t](const Tensor<T>& term) { t = t.defined() ? t + term : term; };
    const std::size_t B = j.batch;
    if (B == 0) {
      if (j.has_tangent(0)) add(conv2d_input_grad(j.tangents[0], j.inputs[1], x_shape, stride, padding));
      if (j.has_tangent(1)) add(conv2d_input_grad(j.inputs[0], j.tangents[1], x_shape, stride, padding));
      return t;
    }
    // A batch: of tangents of grad, as more images; of w, as more input channels.
    const Shape& s = x_shape;
    if (j.has_tangent(0))
      add(detail::split_batch(conv2d_input_grad(detail::merge_batch(j.tangents[0]), j.inputs[1],
                                                {B * s[0], s[1], s[2], s[3]}, stride, padding), B));
    if (j.has_tangent(1)) {
      const Shape w = j.inputs[1].shape();
      const Tensor<T> tw = reshape(transpose(j.tangents[1], {1, 0, 2, 3, 4}), {w[0], B * w[1], w[2], w[3]});
      const Tensor<T> dx = conv2d_input_grad(j.inputs[0], tw, {s[0], B * s[1], s[2], s[3]}, stride, padding);
      add(transpose(reshape(dx, {s[0], B, s[1], s[2], s[3]}), {1, 0, 2, 3, 4}));
    }
    return t;
  }));
}

// dW[k, (c,i,j)] = sum over images n and positions l of grad[n, k, l] * columns(x)[n, (c,i,j), l];
//   dx = conv2d_input_grad(grad, gw),  dgrad = conv2d(x, gw)   (bilinear in x and grad);
//   tdW = conv2d_weight_grad(tx, grad) + conv2d_weight_grad(x, tgrad)
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
  }, Saved::inputs, takes_batch([w_shape, stride, padding](const JvpArgs<T>& j) {
    Tensor<T> t;
    auto add = [&t](const Tensor<T>& term) { t = t.defined() ? t + term : term; };
    const std::size_t B = j.batch;
    if (B == 0) {
      if (j.has_tangent(0)) add(conv2d_weight_grad(j.tangents[0], j.inputs[1], w_shape, stride, padding));
      if (j.has_tangent(1)) add(conv2d_weight_grad(j.inputs[0], j.tangents[1], w_shape, stride, padding));
      return t;
    }
    // A batch: of tangents of x, as more input channels; of grad, as more output channels.
    const Shape& w = w_shape;
    if (j.has_tangent(0)) {
      const Shape x = j.inputs[0].shape();
      const Tensor<T> tx = reshape(transpose(j.tangents[0], {1, 0, 2, 3, 4}), {x[0], B * x[1], x[2], x[3]});
      const Tensor<T> dw = conv2d_weight_grad(tx, j.inputs[1], {w[0], B * w[1], w[2], w[3]}, stride, padding);
      add(transpose(reshape(dw, {w[0], B, w[1], w[2], w[3]}), {1, 0, 2, 3, 4}));
    }
    if (j.has_tangent(1)) {
      const Shape g = j.inputs[1].shape();
      const Tensor<T> tg = reshape(transpose(j.tangents[1], {1, 0, 2, 3, 4}), {g[0], B * g[1], g[2], g[3]});
      const Tensor<T> dw = conv2d_weight_grad(j.inputs[0], tg, {B * w[0], w[1], w[2], w[3]}, stride, padding);
      add(reshape(dw, {B, w[0], w[1], w[2], w[3]}));
    }
    return t;
  }));
}

}  // namespace

// cols = patches of x, per image one row per (channel, kernel offset) and one column per output
// position: (N, C*kh*kw, Ho*Wo);  dx = col2im(grad);  tcols = im2col(t)
template <class T>
Tensor<T> im2col(const Tensor<T>& x, Size2 kernel, Size2 stride, Size2 padding) {
  constexpr char op[] = "im2col";
  check_defined<T>(op, {&x});
  const Shape shape = x.shape();
  const Patches p = patches(op, shape, kernel, stride, padding);
  xt::xarray<T> cols = detail::empty_array<T>({p.n, p.rows(), p.cols()});
  const T* src = x.value().data();
  T* dst = cols.data();
  // Images are split over the tg::Parallel threads, if any: each writes its own columns.
  detail::parallel_for(p.n, [&](std::size_t first, std::size_t last) {
    std::vector<T> padded;
    for (std::size_t n = first; n < last; ++n) image_columns(p, src, n, padded, dst + n * p.rows() * p.cols());
  });
  return record<T>(op, {x}, std::move(cols), [shape, kernel, stride, padding](const VjpArgs<T>& g) {
    return Grads<T>{col2im(g.grad, shape, kernel, stride, padding)};
  }, Saved::nothing, takes_batch([kernel, stride, padding](const JvpArgs<T>& j) {
    if (j.batch == 0) return im2col(j.tangents[0], kernel, stride, padding);
    return detail::split_batch(im2col(detail::merge_batch(j.tangents[0]), kernel, stride, padding), j.batch);
  }));
}

// x = sum of columns into their positions;  dcols = im2col(grad);  tx = col2im(tcols)
template <class T>
Tensor<T> col2im(const Tensor<T>& cols, const Shape& input_shape, Size2 kernel, Size2 stride, Size2 padding) {
  constexpr char op[] = "col2im";
  check_defined<T>(op, {&cols});
  const Patches p = patches(op, input_shape, kernel, stride, padding);
  const Shape expected{p.n, p.rows(), p.cols()};
  if (cols.shape() != expected)
    throw_shape_error(op, "columns of shape " + shape_str(cols.shape()) + " do not fit input shape " +
                                    shape_str(input_shape) + " (expected " + shape_str(expected) + ")");
  xt::xarray<T> x = detail::empty_array<T>(input_shape);
  const T* src = cols.value().data();
  T* dst = x.data();
  detail::parallel_for(p.n, [&](std::size_t first, std::size_t last) {
    std::vector<T> padded;
    for (std::size_t n = first; n < last; ++n) image_from_columns(p, src + n * p.rows() * p.cols(), n, padded, dst);
  });
  return record<T>(op, {cols}, std::move(x), [kernel, stride, padding](const VjpArgs<T>& g) {
    return Grads<T>{im2col(g.grad, kernel, stride, padding)};
  }, Saved::nothing, takes_batch([input_shape, kernel, stride, padding](const JvpArgs<T>& j) {
    if (j.batch == 0) return col2im(j.tangents[0], input_shape, kernel, stride, padding);
    Shape images = input_shape;
    images[0] *= j.batch;
    return detail::split_batch(col2im(detail::merge_batch(j.tangents[0]), images, kernel, stride, padding), j.batch);
  }));
}

template Tensor<float> conv2d(const Tensor<float>&, const Tensor<float>&, const Tensor<float>&, Size2, Size2);
template Tensor<float> im2col(const Tensor<float>&, Size2, Size2, Size2);
template Tensor<float> col2im(const Tensor<float>&, const Shape&, Size2, Size2, Size2);
template Tensor<double> conv2d(const Tensor<double>&, const Tensor<double>&, const Tensor<double>&, Size2, Size2);
template Tensor<double> im2col(const Tensor<double>&, Size2, Size2, Size2);
template Tensor<double> col2im(const Tensor<double>&, const Shape&, Size2, Size2, Size2);

}  // namespace tapegrad