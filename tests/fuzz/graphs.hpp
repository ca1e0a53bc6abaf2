// Random computations over tapegrad's public ops, checked in double against finite differences,
// shrunk when they fail and printed as a self-contained C++ program.
#ifndef TAPEGRAD_TESTS_FUZZ_GRAPHS_HPP
#define TAPEGRAD_TESTS_FUZZ_GRAPHS_HPP

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <tapegrad/tapegrad.hpp>

namespace tapegrad::fuzz {

using Arr = xt::xarray<double>;
using TD = Tensor<double>;

enum class Op {
  input, constant,                                                  // sources
  neg, exp, log, sqrt, pow, abs, tanh, sigmoid, relu,               // elementwise
  sin, cos, log1p, expm1, softplus, leaky_relu, elu, erf, gelu, maximum, minimum, clamp,
  add, sub, mul, div, add_scalar, mul_scalar, rdiv_scalar,
  sum, mean, max, sum_all, mean_all, max_all,                       // reductions
  reshape, transpose, broadcast_to, slice, concat, pad,             // shape
  matmul, conv2d, avg_pool2d, max_pool2d,                           // products, windows
  softmax, log_softmax, mse_loss, cross_entropy,                    // nn
  index_select, take_along_axis, where, cumsum, gather, stack, split, chunk,   // index
  custom,                                                           // GraphOptions::custom
};

// One step: an op applied to earlier steps' values.
struct Step {
  Op op = Op::input;
  std::vector<std::size_t> args{};   // earlier steps; conv2d: x, w[, b]
  std::vector<std::ptrdiff_t> ints{};  // source index; axes; perm; slice (axis, start, stop, step);
                                     // pads (before, after)...; matmul (ta, tb); conv/pool
                                     // (kernel h, w, stride, padding); labels; index_select and
                                     // take_along_axis, gather (axis, indices...); where's cond (0
                                     // or 1...); stack (axis); split (axis, piece, sizes...);
                                     // chunk (axis, chunks, piece)
  Shape shape{};                     // reshape and broadcast_to targets; take_along_axis's and
                                     // gather's index shape; where's cond shape
  double scalar = 0;                 // scalar operand, pad value
  bool flag = false;                 // keepdims; mse/cross-entropy: Reduction::sum
};

// The output is the last step's value. Inputs require grad; constants do not.
struct Graph {
  std::vector<Arr> inputs, constants;
  std::vector<Step> steps;
};

struct GraphOptions {
  std::size_t ops = 8;        // ops drawn (helper steps and the final sums come on top)
  std::size_t max_dim = 4;    // largest dimension of a drawn shape
  std::size_t max_size = 96;  // largest number of elements of any value
  // A unary op the tests inject (a deliberately wrong VJP proves the fuzzer catches one); drawn
  // like the others when set.
  std::function<TD(const TD&)> custom;
};

Graph generate(std::uint64_t seed, const GraphOptions& options = {});

// Runs the graph on these inputs (one tensor per Graph::inputs); returns the output.
TD run(const Graph& graph, const std::vector<TD>& inputs, const GraphOptions& options = {});

struct CheckResult {
  std::string report;   // gradcheck's report, or the exception an op threw
  // "" when ok, "mismatch" when gradients disagree, else "exception: " and the message's op:
  // the shrinker keeps a smaller graph only if it fails the same way.
  std::string failure;
  bool ok() const { return failure.empty(); }
};
// gradcheck's options for a graph: forward mode too, Richardson differences with step 1e-5, rtol
// 1e-4 and atol 1e-7 (10 and 100 times tighter than gradcheck's defaults; on graphs of 24 ops
// derivatives reach 1e6, and the differences' own error 2e-5 relative, or 1e-8 from rounding
// where the function is large and the derivative small).
GradcheckOptions gradcheck_options();
// First derivatives with tg::gradcheck; with second_order, also the derivatives of
// sum_k <grad_k, w_k> computed through tg::grad(create_graph=true).
CheckResult check(const Graph& graph, bool second_order, const GraphOptions& options = {});

// A smaller graph that still fails: fewer steps (an earlier output, bypassed steps) and smaller
// inputs and constants. `fails` must hold for the graph given.
Graph shrink(Graph graph, const std::function<bool(const Graph&)>& fails);

// A C++ program that builds the graph and prints gradcheck's report (exit 1 on a mismatch).
std::string reproducer(const Graph& graph, bool second_order, const std::string& origin);

std::size_t op_count(const Graph& graph);   // steps that are not sources
std::string op_name(Op op);

}  // namespace tapegrad::fuzz

#endif
