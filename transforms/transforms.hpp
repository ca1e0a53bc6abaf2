// Function transforms, as JAX names them: vjp, jacrev, jacfwd, hvp, hessian, and grad of several
// outputs at once. Built on the tape (reverse mode) and tg::jvp (forward mode, core/forward.hpp).
#ifndef TAPEGRAD_TRANSFORMS_TRANSFORMS_HPP
#define TAPEGRAD_TRANSFORMS_TRANSFORMS_HPP

#include <functional>
#include <vector>

#include "../core/forward.hpp"

namespace tapegrad {

// A function of several tensors with several outputs.
template <class T>
using Function = std::function<std::vector<Tensor<T>>(const std::vector<Tensor<T>>&)>;

// d/dx of sum_j <seeds_j, ys_j> for each x: the gradients of several outputs with their seeds in
// one reverse walk (zeros for an x no output depends on). Like tg::grad, on the live tape.
template <class T>
std::vector<Tensor<T>> grad(const std::vector<Tensor<T>>& ys, const std::vector<Tensor<T>>& xs,
                            const std::vector<xt::xarray<T>>& seeds, bool create_graph = false);

// f's outputs at `primals`, and its pullback: one cotangent per output (of its shape) to one
// gradient per primal, J^T c. The pullback may be called many times; each call evaluates f once
// more under a tape of its own, so nothing stays recorded between calls.
template <class T>
struct VjpResult {
  std::vector<Tensor<T>> outputs;
  std::function<std::vector<Tensor<T>>(const std::vector<xt::xarray<T>>& cotangents)> pullback;
};
template <class T>
VjpResult<T> vjp(const Function<T>& f, const std::vector<Tensor<T>>& primals);

// The full Jacobians of f at `primals`: jacobian[j][i] has the shape of output j followed by the
// shape of primal i. jacfwd carries the unit tangents of every input element through one
// forward-mode evaluation as a batch (JvpArgs::batch), jacrev the unit cotangents of every output
// element through one backward pass (forward mode over the VJP, which is linear in them); both
// split the seeds into batches of at most 2^18 elements of tangents, and hold every
// intermediate's tangents for a batch at once. jacrev walks one recording once per row instead
// where there are at most 4 rows, or more than 1024 input or output elements. jacfwd is the
// cheaper where the inputs have fewer elements than the outputs.
template <class T>
std::vector<std::vector<Tensor<T>>> jacrev(const Function<T>& f, const std::vector<Tensor<T>>& primals);
template <class T>
std::vector<std::vector<Tensor<T>>> jacfwd(const Function<T>& f, const std::vector<Tensor<T>>& primals);

// For a scalar f: the Hessian-vector products H v, one per primal (v: one per primal, an
// undefined one zero), by forward mode over the reverse-mode gradient: one evaluation.
template <class T>
std::vector<Tensor<T>> hvp(const std::function<Tensor<T>(const std::vector<Tensor<T>>&)>& f,
                           const std::vector<Tensor<T>>& primals, const std::vector<Tensor<T>>& vs);
// The Hessian of a scalar f: hessian[i][k] has the shape of primal i followed by that of primal k;
// every Hessian-vector product with a unit vector at once, as batches like jacfwd's (forward mode
// over the reverse-mode gradient).
template <class T>
std::vector<std::vector<Tensor<T>>> hessian(const std::function<Tensor<T>(const std::vector<Tensor<T>>&)>& f,
                                            const std::vector<Tensor<T>>& primals);

}  // namespace tapegrad

#endif
