// Transcendental functions over arrays, vectorised with xsimd. Internal to the ops.
#ifndef TAPEGRAD_OPS_VECTOR_MATH_HPP
#define TAPEGRAD_OPS_VECTOR_MATH_HPP

#include <cstddef>

namespace tapegrad {
namespace detail {

// y[i] = f(x[i]) for i < n, with the widest SIMD instructions the CPU has (chosen once at run
// time on x86-64: AVX-512, AVX2 with FMA, or SSE2). An element's result does not depend on where
// it sits in the array. Accurate to a few ulp of the C library's results; NaN, infinities,
// zeros and subnormals behave as in the C library.
template <class T> void vector_exp(const T* x, T* y, std::size_t n);
template <class T> void vector_log(const T* x, T* y, std::size_t n);
template <class T> void vector_tanh(const T* x, T* y, std::size_t n);
// 1 / (1 + exp(-x)), evaluated on the side where exp cannot overflow.
template <class T> void vector_sigmoid(const T* x, T* y, std::size_t n);

}  // namespace detail
}  // namespace tapegrad

#endif
