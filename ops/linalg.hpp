// Matrix products: OpenBLAS, or libxsmm's JIT kernels where those are faster.
#ifndef TAPEGRAD_OPS_LINALG_HPP
#define TAPEGRAD_OPS_LINALG_HPP

#include "../core/tape.hpp"

namespace tapegrad {

// NumPy matmul: (..., m, k) @ (..., k, n) -> (..., m, n) with the leading (batch) dimensions
// broadcast; a 1-D lhs is a row (k) and a 1-D rhs a column (k), their dimension dropped after.
template <class T> Tensor<T> matmul(const Tensor<T>& a, const Tensor<T>& b);
// op(a) @ op(b) where op transposes the last two dimensions when asked, without copying.
// Both operands at least 2-D.
template <class T>
Tensor<T> matmul(const Tensor<T>& a, const Tensor<T>& b, bool transpose_a, bool transpose_b);

}  // namespace tapegrad

#endif
