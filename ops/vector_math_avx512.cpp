// The vector_math kernels for AVX-512 (compiled with -mavx512f; run only where the CPU has it).
#include "vector_math_kernels.hpp"

namespace tapegrad {
namespace detail {

VectorMathTable avx512_vector_math() { return make_vector_math_table<xsimd::avx512f>(); }

}  // namespace detail
}  // namespace tapegrad
