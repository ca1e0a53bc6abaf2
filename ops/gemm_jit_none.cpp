// detail::jit_gemm for builds without libxsmm: no JIT kernels, so every product goes to BLAS.
#include "kernels.hpp"

namespace tapegrad {
namespace detail {

bool jit_gemm_built() { return false; }

bool jit_gemm(bool, bool, std::size_t, std::size_t, std::size_t, const float*, std::size_t, const float*,
              std::size_t, float, float*, std::size_t) {
  return false;
}

bool jit_gemm(bool, bool, std::size_t, std::size_t, std::size_t, const double*, std::size_t, const double*,
              std::size_t, double, double*, std::size_t) {
  return false;
}

}  // namespace detail
}  // namespace tapegrad
