// vector_math where no SIMD kernels are built (not x86-64): the C library's functions, element
// by element.
#include "vector_math.hpp"

#include <cmath>

namespace tapegrad {
namespace detail {

namespace {

template <class T>
void exp_n(const T* x, T* y, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) y[i] = std::exp(x[i]);
}
template <class T>
void log_n(const T* x, T* y, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) y[i] = std::log(x[i]);
}
template <class T>
void tanh_n(const T* x, T* y, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
}
template <class T>
void sigmoid_n(const T* x, T* y, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    const T e = std::exp(-std::abs(x[i]));
    y[i] = (x[i] >= 0 ? T(1) : e) / (T(1) + e);
  }
}

}  // namespace

std::vector<NamedVectorMathTable> vector_math_tables() {
  return {{"C library",
           {{&exp_n<float>, &log_n<float>, &tanh_n<float>, &sigmoid_n<float>},
            {&exp_n<double>, &log_n<double>, &tanh_n<double>, &sigmoid_n<double>}}}};
}

}  // namespace detail
}  // namespace tapegrad
