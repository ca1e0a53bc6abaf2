#include "pool.hpp"

#include <cmath>
#include <memory>

#include "../core/forward.hpp"
#include "kernels.hpp"
#include "../core/parallel.hpp"

namespace tapegrad {

namespace {

template <class T>
using Grads = Gradients<T>;

struct Windows {
  std::size_t planes, h, w, kh, kw, sh, sw, ph, pw, oh, ow;
  Shape output(const Shape& input) const { return {input[0], input[1], oh, ow}; }
};

// Checks the geometry; planes = N * C, each pooled on its own.
Windows windows(const std::string& op, const Shape& s, Size2 kernel, Size2 stride, Size2 padding) {
  const Size2 out = detail::window_output(op, s, kernel, stride, padding);
  return {s[0] * s[1], s[2], s[3], kernel.h, kernel.w, stride.h, stride.w, padding.h, padding.w, out.h, out.w};
}

// Windows side by side without gaps, overlap or padding (stride = kernel, no padding).
bool tiles(const Windows& g) { return g.ph == 0 && g.pw == 0 && g.sh == g.kh && g.sw == g.kw; }

// Calls f(output_offset, input_offset) for every window element inside planes [first, last).
template <class F>
void for_each_window_element(const Windows& g, F f, std::size_t first, std::size_t last) {
  if (g.ph == 0 && g.pw == 0) {
    // No padding: every window lies inside the input.
    for (std::size_t p = first; p < last; ++p)
      for (std::size_t oy = 0; oy < g.oh; ++oy)
        for (std::size_t i = 0; i < g.kh; ++i) {
          const std::size_t in_row = (p * g.h + oy * g.sh + i) * g.w, out_row = (p * g.oh + oy) * g.ow;
          for (std::size_t ox = 0; ox < g.ow; ++ox)
            for (std::size_t j = 0; j < g.kw; ++j) f(out_row + ox, in_row + ox * g.sw + j);
        }
    return;
  }
  for (std::size_t p = first; p < last; ++p)
    for (std::size_t oy = 0; oy < g.oh; ++oy)
      for (std::size_t ox = 0; ox < g.ow; ++ox) {
        const std::size_t out = (p * g.oh + oy) * g.ow + ox;
        for (std::size_t i = 0; i < g.kh; ++i) {
          const std::ptrdiff_t y = std::ptrdiff_t(oy * g.sh + i) - std::ptrdiff_t(g.ph);
          if (y < 0 || y >= std::ptrdiff_t(g.h)) continue;
          for (std::size_t j = 0; j < g.kw; ++j) {
            const std::ptrdiff_t x = std::ptrdiff_t(ox * g.sw + j) - std::ptrdiff_t(g.pw);
            if (x < 0 || x >= std::ptrdiff_t(g.w)) continue;
            f(out, (p * g.h + std::size_t(y)) * g.w + std::size_t(x));
          }
        }
      }
}

// The same over every plane, the planes split over the tg::Parallel threads if any (f must touch
// only its planes' elements).
template <class F>
void for_each_window_element(const Windows& g, F f) {
  detail::parallel_for(g.planes, [&](std::size_t first, std::size_t last) { for_each_window_element(g, f, first, last); });
}

// The adjoint of the window mean: each input element gets the sum of its windows' gradients / (kh kw).
//   x = spread(y);  dy = avg_pool2d(dx);  tx = spread(ty)
template <class T>
Tensor<T> avg_pool2d_backward(const Tensor<T>& grad, const Shape& input_shape, Size2 kernel, Size2 stride,
                              Size2 padding) {
  const Windows g = windows("avg_pool2d", input_shape, kernel, stride, padding);
  const T scale = T(1) / T(g.kh * g.kw);
  const T* src = grad.value().data();
  xt::xarray<T> x;
  if (tiles(g)) {
    // Windows that tile the input: each element gets its window's gradient, written once; the
    // rows and columns past the last whole window get none.
    x = detail::empty_array<T>(input_shape);
    T* dst = x.data();
    const std::size_t covered = g.ow * g.kw;
    detail::parallel_for(g.planes, [&](std::size_t first, std::size_t last) {
      for (std::size_t p = first; p < last; ++p) {
        for (std::size_t oy = 0; oy < g.oh; ++oy) {
          const T* go = src + (p * g.oh + oy) * g.ow;
          T* row = dst + (p * g.h + oy * g.kh) * g.w;
          if (g.kw == 2) {
            for (std::size_t ox = 0; ox < g.ow; ++ox) row[2 * ox] = row[2 * ox + 1] = go[ox] * scale;
          } else {
            for (std::size_t ox = 0; ox < g.ow; ++ox)
              for (std::size_t j = 0; j < g.kw; ++j) row[ox * g.kw + j] = go[ox] * scale;
          }
          std::fill(row + covered, row + g.w, T(0));
          for (std::size_t i = 1; i < g.kh; ++i) std::copy(row, row + g.w, row + i * g.w);
        }
        T* rest = dst + (p * g.h + g.oh * g.kh) * g.w;
        std::fill(rest, dst + (p + 1) * g.h * g.w, T(0));
      }
    });
  } else {
    x = xt::zeros<T>(input_shape);
    T* dst = x.data();
    for_each_window_element(g, [&](std::size_t out, std::size_t in) { dst[in] += src[out] * scale; });
  }
  return record<T>("avg_pool2d_backward", {grad}, std::move(x), [kernel, stride, padding](const VjpArgs<T>& a) {
    return Grads<T>{avg_pool2d(a.grad, kernel, stride, padding)};
  }, Saved::nothing, takes_batch([input_shape, kernel, stride, padding](const JvpArgs<T>& j) {
    if (j.batch == 0) return avg_pool2d_backward(j.tangents[0], input_shape, kernel, stride, padding);
    Shape images = input_shape;   // a batch of tangents: more images
    images[0] *= j.batch;
    return detail::split_batch(avg_pool2d_backward(detail::merge_batch(j.tangents[0]), images, kernel, stride, padding),
                               j.batch);
  }));
}

// max_pool2d's selection of each window's maximum, and its adjoint.
constexpr detail::FlatIndexNames pool_names{"max_pool2d_select", "max_pool2d_backward"};

}  // namespace

template <class T>
Tensor<T> avg_pool2d(const Tensor<T>& x, Size2 kernel) {
  constexpr char op[] = "avg_pool2d";
  check_defined<T>(op, {&x});
  return avg_pool2d(x, kernel, kernel, 0);
}

// y = mean of each window (zero padding counted);  dx = spread(grad) / (kh kw);  ty = avg_pool2d(t)
template <class T>
Tensor<T> avg_pool2d(const Tensor<T>& x, Size2 kernel, Size2 stride, Size2 padding) {
  constexpr char op[] = "avg_pool2d";
  check_defined<T>(op, {&x});
  const Shape s = x.shape();
  const Windows g = windows(op, s, kernel, stride, padding);
  const T scale = T(1) / T(g.kh * g.kw);
  const T* src = x.value().data();
  xt::xarray<T> y;
  if (tiles(g)) {
    y = detail::empty_array<T>(g.output(s));
    T* dst = y.data();
    detail::parallel_for(g.planes, [&](std::size_t first, std::size_t last) {
      for (std::size_t p = first; p < last; ++p)
        for (std::size_t oy = 0; oy < g.oh; ++oy) {
          T* out = dst + (p * g.oh + oy) * g.ow;
          const T* top = src + (p * g.h + oy * g.kh) * g.w;
          if (g.kh == 2 && g.kw == 2) {
            const T* bottom = top + g.w;
            for (std::size_t ox = 0; ox < g.ow; ++ox)
              out[ox] = ((top[2 * ox] + top[2 * ox + 1]) + (bottom[2 * ox] + bottom[2 * ox + 1])) * scale;
            continue;
          }
          std::fill(out, out + g.ow, T(0));
          for (std::size_t i = 0; i < g.kh; ++i) {
            const T* row = top + i * g.w;
            for (std::size_t ox = 0; ox < g.ow; ++ox)
              for (std::size_t j = 0; j < g.kw; ++j) out[ox] += row[ox * g.kw + j];
          }
          for (std::size_t ox = 0; ox < g.ow; ++ox) out[ox] *= scale;
        }
    });
  } else {
    y = xt::zeros<T>(g.output(s));
    T* dst = y.data();
    for_each_window_element(g, [&](std::size_t out, std::size_t in) { dst[out] += src[in]; });
    for (std::size_t i = 0; i < y.size(); ++i) dst[i] *= scale;
  }
  return record<T>(op, {x}, std::move(y), [s, kernel, stride, padding](const VjpArgs<T>& a) {
    return Grads<T>{avg_pool2d_backward(a.grad, s, kernel, stride, padding)};
  }, Saved::nothing, takes_batch([kernel, stride, padding](const JvpArgs<T>& j) {
    if (j.batch == 0) return avg_pool2d(j.tangents[0], kernel, stride, padding);
    return detail::split_batch(avg_pool2d(detail::merge_batch(j.tangents[0]), kernel, stride, padding), j.batch);
  }));
}

template <class T>
Tensor<T> max_pool2d(const Tensor<T>& x, Size2 kernel) {
  constexpr char op[] = "max_pool2d";
  check_defined<T>(op, {&x});
  return max_pool2d(x, kernel, kernel);
}

// y = max of each window's elements inside the input, the first maximum in row-major window order;
//   dx = grad scattered to it;
//   ty = t gathered from it
template <class T>
Tensor<T> max_pool2d(const Tensor<T>& x, Size2 kernel, Size2 stride, Size2 padding) {
  constexpr char op[] = "max_pool2d";
  check_defined<T>(op, {&x});
  const Shape s = x.shape();
  const Windows g = windows(op, s, kernel, stride, padding);
  if (2 * padding.h > kernel.h || 2 * padding.w > kernel.w)
    throw_value_error(op, "padding " + size2_str(padding) + " must be at most half the kernel " + size2_str(kernel));
  // Windows of padding alone would have no maximum.
  if ((s[2] == 0 || s[3] == 0) && g.planes > 0 && g.oh * g.ow > 0)
    throw_shape_error(op, "input shape " + shape_str(s) + " has an empty spatial axis: its padded windows hold no element");
  const Shape shape = g.output(s);
  auto index = std::make_shared<std::vector<std::size_t>>(detail::element_count(shape), std::size_t(-1));
  xt::xarray<T> y = detail::empty_array<T>(shape);
  const T* src = x.value().data();
  T* dst = y.data();
  for_each_window_element(g, [&](std::size_t out, std::size_t in) {
    std::size_t& best = (*index)[out];
    // NaN propagates: a NaN replaces a number, and nothing replaces a NaN.
    if (best == std::size_t(-1) || src[in] > dst[out] || (std::isnan(src[in]) && !std::isnan(dst[out]))) {
      best = in;
      dst[out] = src[in];
    }
  });
  const detail::Positions positions = std::move(index);
  return record<T>(op, {x}, std::move(y),
                   [positions, s](const VjpArgs<T>& a) { return Grads<T>{detail::scatter_add_flat(pool_names, a.grad, positions, s)}; },
                   Saved::nothing, takes_batch([positions, shape](const JvpArgs<T>& j) {
                     return detail::gather_flat(pool_names, j.tangents[0], positions, shape, j.batch);
                   }));
}

template Tensor<float> avg_pool2d(const Tensor<float>&, Size2);
template Tensor<float> avg_pool2d(const Tensor<float>&, Size2, Size2, Size2);
template Tensor<float> max_pool2d(const Tensor<float>&, Size2);
template Tensor<float> max_pool2d(const Tensor<float>&, Size2, Size2, Size2);
template Tensor<double> avg_pool2d(const Tensor<double>&, Size2);
template Tensor<double> avg_pool2d(const Tensor<double>&, Size2, Size2, Size2);
template Tensor<double> max_pool2d(const Tensor<double>&, Size2);
template Tensor<double> max_pool2d(const Tensor<double>&, Size2, Size2, Size2);

}  // namespace tapegrad
