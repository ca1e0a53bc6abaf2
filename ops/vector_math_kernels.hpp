// The kernels behind vector_math.hpp, written once for any xsimd architecture. Each
// vector_math_<arch>.cpp compiles them with its own instruction-set flags.
#ifndef TAPEGRAD_OPS_VECTOR_MATH_KERNELS_HPP
#define TAPEGRAD_OPS_VECTOR_MATH_KERNELS_HPP

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>

#include <xsimd/xsimd.hpp>

#include "vector_math.hpp"

namespace tapegrad {
namespace detail {

// f over whole batches, then once over the tail padded with zeros, so that every element goes
// through the same vector code.
template <class Arch, class T, class F>
void apply_batches(const T* x, T* y, std::size_t n, F f) {
  using Batch = xsimd::batch<T, Arch>;
  constexpr std::size_t width = Batch::size;
  std::size_t i = 0;
  for (; i + width <= n; i += width) f(Batch::load_unaligned(x + i)).store_unaligned(y + i);
  if (i < n) {
    T tail[width] = {};
    std::copy(x + i, x + n, tail);
    f(Batch::load_unaligned(tail)).store_unaligned(tail);
    std::copy(tail, tail + (n - i), y + i);
  }
}

// xsimd's exp gives inf a little before the true overflow (709.44 instead of 709.78 in double)
// and 0 before the subnormal range ends: near both ends, exp(x) = exp(x -+ c) * exp(+-c), where
// x -+ c is exact (same binade) and back in range.
template <class T>
struct ExpEnds {
  static constexpr T high = sizeof(T) == 8 ? T(709) : T(88);      // above: exp(x - 1) * e
  static constexpr T low = sizeof(T) == 8 ? T(-708) : T(-87);     // below: exp(x + c) * exp(-c)
  static constexpr T shift = sizeof(T) == 8 ? T(40) : T(20);
};

template <class Batch>
Batch exact_range_exp(const Batch& b) {
  using T = typename Batch::value_type;
  const Batch one(T(1)), e(static_cast<T>(2.718281828459045235360287471352662498L));
  const Batch shift(ExpEnds<T>::shift), down(static_cast<T>(std::exp(-static_cast<long double>(ExpEnds<T>::shift))));
  const auto high = b > Batch(ExpEnds<T>::high);
  const auto low = b < Batch(ExpEnds<T>::low);
  const Batch r = xsimd::exp(xsimd::select(high, b - one, xsimd::select(low, b + shift, b)));
  return xsimd::select(high, r * e, xsimd::select(low, r * down, r));
}

template <class Arch, class T>
void exp_n(const T* x, T* y, std::size_t n) {
  apply_batches<Arch>(x, y, n, [](const auto& b) { return exact_range_exp(b); });
}

template <class Arch, class T>
void log_n(const T* x, T* y, std::size_t n) {
  using Batch = xsimd::batch<T, Arch>;
  // xsimd's log mishandles subnormals: scale them into the normal range first,
  // log(x) = log(x 2^k) - k log 2.
  const int k = std::numeric_limits<T>::digits + 1;
  const Batch scale(static_cast<T>(1ull << k)), shift(static_cast<T>(k * 0.693147180559945309417232121458176568));
  const Batch smallest_normal(std::numeric_limits<T>::min()), zero(T(0));
  apply_batches<Arch>(x, y, n, [&](const Batch& b) {
    const auto subnormal = (b < smallest_normal) && (b > zero);
    return xsimd::log(xsimd::select(subnormal, b * scale, b)) - xsimd::select(subnormal, shift, zero);
  });
}

template <class Arch, class T>
void tanh_n(const T* x, T* y, std::size_t n) {
  apply_batches<Arch>(x, y, n, [](const auto& b) { return xsimd::tanh(b); });
}

template <class Arch, class T>
void sigmoid_n(const T* x, T* y, std::size_t n) {
  using Batch = xsimd::batch<T, Arch>;
  const Batch one(T(1)), zero(T(0));
  apply_batches<Arch>(x, y, n, [&](const Batch& b) {
    const Batch e = exact_range_exp(-xsimd::abs(b));   // <= 1: no overflow
    return xsimd::select(b >= zero, one, e) / (one + e);
  });
}

// The four kernels of one architecture.
template <class Arch>
VectorMathTable make_vector_math_table() {
  return {{&exp_n<Arch, float>, &log_n<Arch, float>, &tanh_n<Arch, float>, &sigmoid_n<Arch, float>},
          {&exp_n<Arch, double>, &log_n<Arch, double>, &tanh_n<Arch, double>, &sigmoid_n<Arch, double>}};
}

// One per architecture, each defined in the file compiled for it.
VectorMathTable avx512_vector_math();
VectorMathTable avx2_vector_math();

}  // namespace detail
}  // namespace tapegrad

#endif
