// vector_math where no SIMD kernels are built (not x86-64): the C library's functions, element
// by element.
#include "vector_math.hpp"

#include <cmath>

namespace tapegrad {
namespace detail {

template <class T>
void vector_exp(const T* x, T* y, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) y[i] = std::exp(x[i]);
}
template <class T>
void vector_log(const T* x, T* y, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) y[i] = std::log(x[i]);
}
template <class T>
void vector_tanh(const T* x, T* y, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
}
template <class T>
void vector_sigmoid(const T* x, T* y, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    const T e = std::exp(-std::abs(x[i]));
    y[i] = (x[i] >= 0 ? T(1) : e) / (T(1) + e);
  }
}

template void vector_exp(const float*, float*, std::size_t);
template void vector_exp(const double*, double*, std::size_t);
template void vector_log(const float*, float*, std::size_t);
template void vector_log(const double*, double*, std::size_t);
template void vector_tanh(const float*, float*, std::size_t);
template void vector_tanh(const double*, double*, std::size_t);
template void vector_sigmoid(const float*, float*, std::size_t);
template void vector_sigmoid(const double*, double*, std::size_t);

}  // namespace detail
}  // namespace tapegrad
