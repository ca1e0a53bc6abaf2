#include "conv_kernels.hpp"

#include <algorithm>

#include "kernels.hpp"

namespace tapegrad {
namespace detail {

Patches patches(const std::string& op, const Shape& x, Size2 kernel, Size2 stride, Size2 padding) {
  const Size2 out = window_output(op, x, kernel, stride, padding);
  const Patches p{x[0], x[1], x[2], x[3], kernel.h, kernel.w, stride.h, stride.w, padding.h, padding.w, out.h, out.w};
  checked_count(op, {p.n, p.c, kernel.h, kernel.w, p.oh, p.ow});   // the columns
  return p;
}

namespace {

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

// to[ox * to_step + j] = from[ox * from_step + j] for ox < count, j < width (= Width unless 0).
template <std::size_t Width, class T>
void copy_runs(const T* __restrict from, std::size_t from_step, T* __restrict to, std::size_t to_step,
               std::size_t count, std::size_t width) {
  const std::size_t w = Width ? Width : width;
  for (std::size_t ox = 0; ox < count; ++ox, from += from_step, to += to_step)
    for (std::size_t j = 0; j < w; ++j) to[j] = from[j];
}

}  // namespace

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

template void image_columns(const Patches&, const float*, std::size_t, std::vector<float>&, float*);
template void image_columns(const Patches&, const double*, std::size_t, std::vector<double>&, double*);
template void image_columns_transposed(const Patches&, const float*, std::size_t, std::vector<float>&,
                                       std::vector<float>&, float*);
template void image_columns_transposed(const Patches&, const double*, std::size_t, std::vector<double>&,
                                       std::vector<double>&, double*);
template void image_from_columns(const Patches&, const float*, std::size_t, std::vector<float>&, float*);
template void image_from_columns(const Patches&, const double*, std::size_t, std::vector<double>&, double*);

}  // namespace detail
}  // namespace tapegrad
