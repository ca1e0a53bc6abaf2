// vector_math on x86-64: the SSE2 kernels (the baseline every x86-64 CPU has) compiled here, the
// AVX2 and AVX-512 ones in their own files, and the choice among them made once, from what the
// CPU reports.
#include "vector_math_kernels.hpp"

namespace tapegrad {
namespace detail {

const VectorMathTable& vector_math_table() {
  static const VectorMathTable table = [] {
    const auto cpu = xsimd::available_architectures();
    if (cpu.avx512f) return avx512_vector_math();
    if (cpu.fma3_avx2) return avx2_vector_math();
    return make_vector_math_table<xsimd::sse2>();
  }();
  return table;
}

}  // namespace detail
}  // namespace tapegrad
