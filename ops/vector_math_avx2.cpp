// The vector_math kernels for AVX2 with FMA (compiled with -mavx2 -mfma; run only where the CPU
// has them).
#include "vector_math_kernels.hpp"

namespace tapegrad {
namespace detail {

VectorMathTable avx2_vector_math() { return make_vector_math_table<xsimd::fma3<xsimd::avx2>>(); }

}  // namespace detail
}  // namespace tapegrad
