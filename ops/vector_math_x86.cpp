// vector_math on x86-64: the SSE2 kernels (the baseline every x86-64 CPU has) compiled here, the
// AVX2 and AVX-512 ones in their own files, and the choice among them made once, from what the
// CPU reports.
#include "vector_math.hpp"

#include "vector_math_kernels.hpp"

namespace tapegrad {
namespace detail {

namespace {

const VectorMathTable& kernels() {
  static const VectorMathTable table = [] {
    const auto cpu = xsimd::available_architectures();
    if (cpu.avx512f) return avx512_vector_math();
    if (cpu.fma3_avx2) return avx2_vector_math();
    return make_vector_math_table<xsimd::sse2>();
  }();
  return table;
}

template <class T>
const VectorMath<T>& kernels_of();
template <>
const VectorMath<float>& kernels_of<float>() { return kernels().f; }
template <>
const VectorMath<double>& kernels_of<double>() { return kernels().d; }

}  // namespace

template <class T>
void vector_exp(const T* x, T* y, std::size_t n) { kernels_of<T>().exp(x, y, n); }
template <class T>
void vector_log(const T* x, T* y, std::size_t n) { kernels_of<T>().log(x, y, n); }
template <class T>
void vector_tanh(const T* x, T* y, std::size_t n) { kernels_of<T>().tanh(x, y, n); }
template <class T>
void vector_sigmoid(const T* x, T* y, std::size_t n) { kernels_of<T>().sigmoid(x, y, n); }

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
