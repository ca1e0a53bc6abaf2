// gradcheck's internals, shared by core/gradcheck.cpp (the checks and the report) and
// core/gradcheck_tape.cpp (what it learns from the recorded ops: where a wrong VJP is, and the
// candidates a diagnosis tests). Internal: never installed.
#ifndef TAPEGRAD_CORE_GRADCHECK_INTERNALS_HPP
#define TAPEGRAD_CORE_GRADCHECK_INTERNALS_HPP

#include <functional>
#include <random>
#include <type_traits>
#include <vector>

#include "gradcheck.hpp"

namespace tapegrad::detail {

using Array = xt::xarray<double>;

// The derivative at 0 of t -> g(t) (a double or an Array) with step eps: central differences, or
// with `richardson` their extrapolation from eps and eps / 2 (GradcheckOptions::richardson).
template <class G>
auto finite_difference(const G& g, double eps, bool richardson) {
  using R = std::decay_t<decltype(g(0.0))>;
  auto central = [&](double h) { return R((g(h) - g(-h)) / (2 * h)); };
  if (!richardson) return central(eps);
  return R((4 * central(eps / 2) - central(eps)) / 3);
}

// What is differentiated: `forward` evaluates the function with the checked tensors set to
// `values` (one array per checked tensor) and reports those tensors in `wrt`; it runs under a live
// tape, so an f which differentiates inside (tg::grad) is evaluated the same way everywhere.
// With `tangent`, the checked tensor it names carries it in forward mode (a ForwardLevel is open;
// u is a batch of tangents when the level has one): `forward` sets it on that tensor before f runs.
struct Tangent {
  std::size_t k;
  Array u;
};
using Forward = std::function<Tensor<double>(const std::vector<Array>& values, std::vector<Tensor<double>>& wrt,
                                             const Tangent* tangent)>;

struct GradcheckProblem {
  Forward forward;
  std::vector<Array> values;       // the checked tensors' values
  std::vector<std::string> names;  // and their names
  Shape out_shape;

  Tensor<double> checked_forward(const std::vector<Array>& v, std::vector<Tensor<double>>& wrt,
                                 const Tangent* tangent = nullptr) const {
    Tensor<double> y = forward(v, wrt, tangent);
    if (!y.defined()) throw_usage_error("gradcheck", "the function returned an undefined tensor");
    return y;
  }

  Array value(const std::vector<Array>& v) const {
    Tape tape;
    std::vector<Tensor<double>> wrt;
    return checked_forward(v, wrt).value();
  }

  // v^T J for each seed v, from the autodiff: one recorded forward, one reverse walk per seed.
  // result[s][k] is the gradient for checked tensor k.
  std::vector<std::vector<Array>> autodiff(const std::vector<Array>& seeds) const {
    Tape tape;
    std::vector<Tensor<double>> wrt;
    const Tensor<double> y = checked_forward(values, wrt);
    std::vector<std::vector<Array>> result;
    for (const Array& seed : seeds) {
      std::vector<Array> row;
      if (y.is_leaf()) {
        // Not recorded: y is a constant (zero gradient) or one of the checked tensors itself (the seed).
        for (const auto& x : wrt)
          row.push_back(x.impl() == y.impl() ? seed : Array(xt::zeros<double>(x.value().shape())));
      } else {
        for (const auto& g : grad(y, wrt, seed)) row.push_back(g.value());
      }
      result.push_back(std::move(row));
    }
    return result;
  }

  // Column e of the Jacobian by finite differences: element e of checked tensor k moved in
  // `scratch` (a copy of values, restored after).
  Array column(std::size_t k, std::size_t e, const GradcheckOptions& o, std::vector<Array>& scratch) const {
    double& x = scratch[k].data()[e];
    const double x0 = x;
    const Array d = finite_difference(
        [&](double t) {
          x = x0 + t;
          return value(scratch);
        },
        o.eps, o.richardson);
    x = x0;
    return d;
  }

  // The derivative of f along d added to checked tensor k, by finite differences.
  Array directional(std::size_t k, const Array& d, const GradcheckOptions& o) const {
    std::vector<Array> v = values;
    return finite_difference(
        [&](double t) {
          v[k] = values[k] + t * d;
          return value(v);
        },
        o.eps, o.richardson);
  }
};

// A random direction of unit length.
Array unit_random(const Shape& shape, std::mt19937_64& rng);

// Sets `tangent` on the checked tensor it names, in the thread's open forward level.
void set_tangent(const Tangent* tangent, const std::vector<Tensor<double>>& wrt);

// <v_q, J u_q> for each q by forward mode: f evaluated once, the u_q a batch of tangents of checked
// tensor k.
std::vector<double> forward_projections(const GradcheckProblem& p, std::size_t k, const std::vector<Array>& us,
                                        const std::vector<Array>& vs);

// What a diagnosis of checked tensor k's hand-written v^T J (for this seed v) tests it against,
// from one recorded evaluation of the function and its reverse walk: the gradients at every
// recorded op's output and at the other checked tensors (wrong variable), those summed over an
// axis (wrong reduction axis), the values around each op of the tensor's shape and the local
// derivatives of one-input ops (missing or extra factor), the chain through an op with its
// Jacobian reduced to its diagonal (small tensors), and the gradient with another checked tensor
// transposed or flipped (operand rearranged).
DiagnosisCandidates tape_candidates(const GradcheckProblem& p, std::size_t k, const Array& seed);

// The recorded ops whose VJP is wrong (GradcheckReport::culprits).
std::vector<GradcheckCulprit> localize(const GradcheckProblem& p, const GradcheckOptions& o);

}  // namespace tapegrad::detail

#endif
