// Gradient checking: the autodiff (and optionally a hand-written gradient) against central
// finite differences, in double, on the same inputs.
#ifndef TAPEGRAD_CORE_GRADCHECK_HPP
#define TAPEGRAD_CORE_GRADCHECK_HPP

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include "diagnose.hpp"
#include "tape.hpp"

namespace tapegrad {

struct GradcheckOptions {
  enum class Mode { automatic, full, projections };
  double eps = 1e-6;    // finite-difference step
  // Central differences, (f(x + eps) - f(x - eps)) / (2 eps), have an error of order eps^2 (plus
  // rounding, of order 1e-16 |f| / eps). With richardson, those at eps and eps / 2 are combined,
  // (4 D(eps / 2) - D(eps)) / 3: error of order eps^4, for twice the evaluations. With eps = 1e-3
  // or 1e-4 that resolves ~1e-11 on smooth functions of moderate size, enough for rtol 1e-6.
  bool richardson = false;
  double atol = 1e-5;   // an element passes when |analytic - numeric| <= atol + rtol * |numeric|
  double rtol = 1e-3;
  // full: every Jacobian element; projections: v^T J u for random unit u (per input) and v;
  // automatic: full while (output elements) x (input elements) <= full_limit.
  Mode mode = Mode::automatic;
  std::size_t full_limit = 20000;
  std::size_t projections = 4;   // per input, in projections mode
  std::uint64_t seed = 0;        // of the random projections
  std::size_t worst = 5;         // failing elements listed per comparison
  std::vector<std::string> names;   // the inputs' names in reports (default "input 0", ...)
  // Three-way, full mode: per input (by position), the quantities a failing hand-written gradient
  // is tested against by tg::diagnose. Optional; without them the shape-only patterns are tested.
  std::vector<DiagnosisCandidates> candidates;
  // When the autodiff disagrees with finite differences, find the recorded op whose VJP is wrong:
  // two more evaluations of the function per recorded op, and per element of the culprit's input
  // for its diagnosis (up to localize_diagnosis_limit elements).
  bool localize = true;
  std::size_t localize_diagnosis_limit = 1000;
  // Also a Taylor test per input: along a random direction u, the residual
  // |F(x + h u) - F(x) - h dF/dx . u| over h = taylor_step / 2^j, j < taylor_steps, with
  // F = v . f(x) for a random v; its slope against h on log scales is 2 when the gradient is right,
  // 1 when it is wrong, whatever the tolerances.
  bool taylor = false;
  double taylor_step = 0.1;
  std::size_t taylor_steps = 8;
  // Also forward mode: per input, `projections` values of <v, J u> (random unit u and v) from one
  // forward-mode evaluation carrying the u as a batch of tangents (every op's batched rule), each
  // against finite differences and against reverse mode <J^T v, u>.
  bool forward = false;
};

// A Taylor test of one gradient (GradcheckOptions::taylor).
struct TaylorTest {
  std::string input;                  // the input's name
  std::string what;                   // "autodiff" or "hand-written"
  std::vector<double> steps, residuals;
  // Of log(residual) against log(step), fitted over the four smallest steps whose residuals are
  // above rounding; NaN when fewer than three are (F is linear along u and the gradient right).
  double slope = 0;
  // "slope 2.00: right" (within 0.25 of 2), "slope 1.00: wrong", or what the residuals say.
  std::string str() const;
};

// One element that was compared.
struct GradcheckElement {
  std::string index;          // the input element's multi-index "(1, 2)", or "projection 3"
  std::string output_index;   // the output element's multi-index (full mode)
  double analytic = 0, numeric = 0, abs_error = 0, rel_error = 0;
};

// One input, one pair of gradient sources.
struct GradcheckComparison {
  std::string what;        // "autodiff vs finite differences", "hand-written vs autodiff", ...
  std::string input;       // the input's name
  Shape input_shape;
  std::size_t checked = 0, failed = 0;
  double max_abs_error = 0, max_rel_error = 0;
  std::vector<GradcheckElement> worst;   // failing elements, worst first
  // For a failing hand-written gradient (full mode): the pattern that explains the difference
  // from the autodiff, or "no simple pattern explains the difference".
  std::string diagnosis;
  bool ok() const { return failed == 0; }
};

// Where the autodiff's gradient goes wrong when it disagrees with finite differences: a recorded
// op whose output's gradient agrees with finite differences (taken at that op's output) while the
// gradient of one of its inputs does not. Its VJP is wrong, typically a custom op's; when that
// input feeds other ops too, one of them may be the one.
struct GradcheckCulprit {
  std::string op;              // its name as recorded
  std::size_t position = 0;    // on the tape of one evaluation of the function
  std::string label;           // the tg::Label it was recorded under, or ""
  std::size_t input = 0;       // the input whose gradient is wrong
  Shape input_shape;
  std::string diagnosis;       // the pattern of its VJP's error at that input, when the input is small
  // "#3 'my_op' (label 'block'), input 0 of shape (2, 3): ..."
  std::string str() const;
};

struct GradcheckReport {
  std::string summary;     // mode, sizes and tolerances
  std::vector<GradcheckComparison> comparisons;
  // When the autodiff disagrees with finite differences (and options.localize): the ops whose VJP
  // is wrong, from finite differences at every recorded op's output.
  std::vector<GradcheckCulprit> culprits;
  std::vector<TaylorTest> taylor;   // with options.taylor: per input, per gradient source
  bool ok() const;
  // Readable text: a verdict line, then one line per comparison and a table of the worst elements.
  std::string str() const;
};
std::ostream& operator<<(std::ostream& os, const GradcheckReport& report);

using GradcheckFunction = std::function<Tensor<double>(const std::vector<Tensor<double>>&)>;
// A hand-written vector-Jacobian product: given the inputs and a seed v of the output's shape,
// returns v^T (d output / d input) for every input (an empty array for inputs not checked).
// For a scalar output v holds one number: return the gradient times it.
using HandGradient = std::function<std::vector<xt::xarray<double>>(const std::vector<Tensor<double>>& inputs,
                                                                   const xt::xarray<double>& seed)>;

// Checks d f / d input for every input with requires_grad (the others are held constant).
GradcheckReport gradcheck(const GradcheckFunction& f, const std::vector<Tensor<double>>& inputs,
                          const GradcheckOptions& options = {});
// Three-way: hand-written vs finite differences, autodiff vs finite differences, hand vs autodiff.
GradcheckReport gradcheck(const GradcheckFunction& f, const std::vector<Tensor<double>>& inputs,
                          const HandGradient& hand, const GradcheckOptions& options = {});

// Second derivatives: checks the derivatives of the function's first derivative, the VJP
// v^T df/dx for a fixed random seed v, itself computed by the autodiff with create_graph (a VJP
// written with detached values, or with ops that are not differentiable again, fails here while
// gradcheck passes). Checked as G(x) = sum_k w_k . (v^T df/dx_k) for fixed random w_k.
GradcheckReport gradgradcheck(const GradcheckFunction& f, const std::vector<Tensor<double>>& inputs,
                              const GradcheckOptions& options = {});

// Central differences of a scalar f() with respect to every element of x, which f reads directly:
// x is perturbed in place and restored, even if f throws.
xt::xarray<double> numeric_gradient(const std::function<double()>& f, Tensor<double> x, double eps = 1e-6);

// Checks d f() / d p for tensors p that f reads directly, such as a module's named parameters:
// each p is perturbed in place for the finite differences and restored after.
GradcheckReport gradcheck_parameters(const std::function<Tensor<double>()>& f,
                                     const std::vector<std::pair<std::string, Tensor<double>>>& parameters,
                                     const GradcheckOptions& options = {});

}  // namespace tapegrad

#endif
