// The vector_math functions, on the kernels vector_math_table() chose for this machine.
#include "vector_math.hpp"

namespace tapegrad {
namespace detail {

namespace {

template <class T>
const VectorMath<T>& kernels();
template <>
const VectorMath<float>& kernels<float>() { return vector_math_table().f; }
template <>
const VectorMath<double>& kernels<double>() { return vector_math_table().d; }

}  // namespace

template <class T>
void vector_exp(const T* x, T* y, std::size_t n) { kernels<T>().exp(x, y, n); }
template <class T>
void vector_log(const T* x, T* y, std::size_t n) { kernels<T>().log(x, y, n); }
template <class T>
void vector_tanh(const T* x, T* y, std::size_t n) { kernels<T>().tanh(x, y, n); }
template <class T>
void vector_sigmoid(const T* x, T* y, std::size_t n) { kernels<T>().sigmoid(x, y, n); }

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
