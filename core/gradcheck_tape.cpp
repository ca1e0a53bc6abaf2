// What gradcheck learns from the recorded ops: which op's VJP is wrong when the autodiff
// disagrees with finite differences.
#include <algorithm>
#include <cmath>
#include <unordered_map>

#include <xtensor/xmanipulation.hpp>
#include <xtensor/xreducer.hpp>

#include "gradcheck_internals.hpp"
#include "tape_internals.hpp"

namespace tapegrad::detail {

Array unit_random(const Shape& shape, std::mt19937_64& rng) {
  std::normal_distribution<double> normal;
  Array r = xt::zeros<double>(shape);
  double norm = 0;
  for (auto& v : r) {
    v = normal(rng);
    norm += v * v;
  }
  if (norm > 0) r /= std::sqrt(norm);
  return r;
}

void set_tangent(const Tangent* tangent, const std::vector<Tensor<double>>& wrt) {
  if (!tangent) return;
  ForwardLevel* level = thread_state().forward;
  if (!level) throw_usage_error("gradcheck", "a tangent without forward mode");
  level->set(wrt[tangent->k], Tensor<double>(tangent->u));
}

std::vector<double> forward_projections(const GradcheckProblem& p, std::size_t k, const std::vector<Array>& us,
                                        const std::vector<Array>& vs) {
  // The us as one batch of tangents: every op's batched rule, in one evaluation.
  Shape batched = shape_of(p.values[k]);
  batched.insert(batched.begin(), us.size());
  Array stacked = Array::from_shape(batched);
  const std::size_t n = p.values[k].size();
  for (std::size_t q = 0; q < us.size(); ++q) std::copy(us[q].data(), us[q].data() + n, stacked.data() + q * n);
  ForwardLevel level;
  level.batch = us.size();
  Tape tape;
  std::vector<Tensor<double>> wrt;
  const Tangent tangent{k, std::move(stacked)};
  const Tensor<double> y = p.checked_forward(p.values, wrt, &tangent);
  const Tensor<double> t = level.get(y);
  std::vector<double> projections(us.size(), 0.0);
  if (!t.defined()) return projections;
  const std::size_t m = y.size();
  for (std::size_t q = 0; q < us.size(); ++q)
    for (std::size_t e = 0; e < m; ++e) projections[q] += vs[q].data()[e] * t.value().data()[q * m + e];
  return projections;
}

namespace {

// A directional derivative's autodiff value against central differences, relative to its size
// (gradients deep in a function may be far smaller than the check's atol), up to what central
// differences resolve in double.
bool within(double analytic, double numeric, const GradcheckOptions& o) {
  return std::abs(analytic - numeric) <= o.rtol * std::max(std::abs(analytic), std::abs(numeric)) + 1e-9;
}

}  // namespace

// The recorded ops whose VJP is wrong: F = <v, f> for a random v; the autodiff's dF/dz at every
// recorded op's output z (one reverse walk) against central differences of F along a random
// direction at z (the op's output moved in place as it is recorded: detail::TapeProbe), and at
// every checked tensor. An op whose output's gradient is right and one of whose inputs' is wrong
// is a culprit.
std::vector<GradcheckCulprit> localize(const GradcheckProblem& p, const GradcheckOptions& o) {
  std::mt19937_64 rng(o.seed + 2);
  std::vector<detail::TapeProbe::Op> ops;
  std::vector<Array> grads;   // per op's output, then per checked tensor
  std::unordered_map<const void*, std::size_t> node;   // a tensor state -> its index in grads
  const Array v = p.out_shape.empty() ? Array(xt::ones<double>(p.out_shape)) : unit_random(p.out_shape, rng);
  {
    detail::TapeProbe probe;
    Tape tape;
    std::vector<Tensor<double>> wrt;
    const Tensor<double> y = p.checked_forward(p.values, wrt);
    if (y.is_leaf()) return {};
    ops = std::move(probe.ops);
    std::vector<Tensor<double>> xs;
    for (const auto& op : ops) xs.push_back(op.output);
    xs.insert(xs.end(), wrt.begin(), wrt.end());
    for (std::size_t i = 0; i < xs.size(); ++i) node.emplace(xs[i].impl().get(), i);
    for (const Tensor<double>& g : grad(y, xs, v)) grads.push_back(g.value());
  }
  const std::size_t count = grads.size();
  // F with `delta` added to node i: an op's output, or a checked tensor's value.
  auto F = [&](std::size_t i, const Array& delta) {
    if (i < ops.size()) {
      detail::TapeProbe probe;
      probe.perturb_at = ops[i].position;
      probe.delta = delta;
      return double(xt::sum(v * p.value(p.values))());
    }
    std::vector<Array> values = p.values;
    values[i - ops.size()] += delta;
    return double(xt::sum(v * p.value(values))());
  };
  auto shape_of_node = [&](std::size_t i) { return shape_of(grads[i]); };
  std::vector<char> right(count);
  for (std::size_t i = 0; i < count; ++i) {
    const Array u = unit_random(shape_of_node(i), rng);
    const double numeric = finite_difference([&](double t) { return F(i, Array(t * u)); }, o.eps, o.richardson);
    right[i] = within(double(xt::sum(grads[i] * u)()), numeric, o);
  }
  std::vector<GradcheckCulprit> culprits;
  for (std::size_t k = 0; k < ops.size(); ++k) {
    if (!right[k]) continue;
    for (std::size_t j = 0; j < ops[k].inputs.size(); ++j) {
      const auto it = node.find(ops[k].inputs[j].impl().get());
      if (it == node.end() || right[it->second]) continue;
      GradcheckCulprit c;
      c.op = ops[k].name;
      c.position = ops[k].position;
      c.label = ops[k].label;
      c.input = j;
      c.input_shape = shape_of_node(it->second);
      const Array& wrong = grads[it->second];
      if (wrong.size() <= o.localize_diagnosis_limit) {
        // dF/d(input) by finite differences, element by element.
        Array numeric = xt::zeros<double>(wrong.shape());
        Array delta = xt::zeros<double>(wrong.shape());
        for (std::size_t e = 0; e < wrong.size(); ++e) {
          numeric.data()[e] = finite_difference(
              [&](double t) {
                delta.data()[e] = t;
                return F(it->second, delta);
              },
              o.eps, o.richardson);
          delta.data()[e] = 0;
        }
        c.diagnosis = diagnose(wrong, numeric, {}, o.rtol, o.atol).str();
      }
      culprits.push_back(std::move(c));
    }
  }
  return culprits;
}

namespace {

// At most this many of each kind of candidate: a diagnosis stays quick on a large model.
constexpr std::size_t max_candidate_ops = 64;
// The chain with a Jacobian's diagonal only costs one reverse walk per element.
constexpr std::size_t max_diagonal_elements = 64;

// A constant factor is a scale: "scaled by a constant" names it.
bool constant(const Array& a) {
  return std::all_of(a.begin(), a.end(), [&](double v) { return v == *a.begin(); });
}

std::string op_str(const TapeProbe::Op& op) { return "#" + std::to_string(op.position) + " '" + op.name + "'"; }

std::string sign_str(std::size_t axis) { return std::to_string(axis); }

// The ways another checked tensor may have been read by mistake: two axes of one extent swapped,
// or a set of axes reversed (up to three axes at once).
std::vector<std::pair<std::string, Array>> rearranged(const Array& x) {
  std::vector<std::pair<std::string, Array>> out;
  const Shape shape = shape_of(x);
  const std::size_t rank = shape.size();
  for (std::size_t a = 0; a < rank; ++a)
    for (std::size_t b = a + 1; b < rank; ++b)
      if (shape[a] == shape[b] && shape[a] > 1) {
        std::vector<std::size_t> perm(rank);
        for (std::size_t q = 0; q < rank; ++q) perm[q] = q;
        std::swap(perm[a], perm[b]);
        out.emplace_back("transposed (axes " + sign_str(a) + " and " + sign_str(b) + ")", Array(xt::transpose(x, perm)));
      }
  std::vector<std::size_t> axes;
  for (std::size_t q = 0; q < rank; ++q)
    if (shape[q] > 1) axes.push_back(q);
  if (axes.size() <= 6)
    for (std::size_t set = 1; set < (std::size_t(1) << axes.size()); ++set) {
      Array y = x;
      std::string which;
      std::size_t count = 0;
      for (std::size_t q = 0; q < axes.size(); ++q)
        if (set >> q & 1) {
          y = xt::flip(y, axes[q]);
          which += (which.empty() ? "" : ", ") + sign_str(axes[q]);
          ++count;
        }
      if (count <= 3) out.emplace_back("flipped along axes (" + which + ")", std::move(y));
    }
  return out;
}

}  // namespace

DiagnosisCandidates tape_candidates(const GradcheckProblem& p, std::size_t k, const Array& seed) {
  DiagnosisCandidates c;
  const Shape target = shape_of(p.values[k]);
  Tape tape;
  std::vector<TapeProbe::Op> ops;
  std::vector<Tensor<double>> wrt;
  Tensor<double> y;
  {
    TapeProbe probe;
    y = p.checked_forward(p.values, wrt);
    ops = std::move(probe.ops);
  }
  if (y.is_leaf()) return c;
  if (ops.size() > max_candidate_ops) ops.erase(ops.begin(), ops.end() - max_candidate_ops);
  std::vector<Tensor<double>> xs;
  for (const auto& op : ops) xs.push_back(op.output);
  xs.insert(xs.end(), wrt.begin(), wrt.end());
  std::vector<Array> grads;
  for (const Tensor<double>& g : grad(y, xs, seed)) grads.push_back(g.value());

  // Wrong variable and wrong reduction axis: every gradient, as it is and summed over one axis.
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const bool is_op = i < ops.size();
    if (!is_op && i - ops.size() == k) continue;
    const std::string name =
        is_op ? "the gradient at " + op_str(ops[i]) + "'s output" : "the gradient of " + p.names[i - ops.size()];
    const Array& g = grads[i];
    if (shape_of(g) == target) c.other_gradients.emplace_back(name, g);
    for (std::size_t axis = 0; axis < g.dimension(); ++axis)
      for (bool keep : {false, true}) {
        Array r = keep ? Array(xt::sum(g, {axis}, xt::keep_dims)) : Array(xt::sum(g, {axis}));
        if (shape_of(r) == target) c.wrong_reductions.emplace_back(name + " summed over axis " + std::to_string(axis), std::move(r));
      }
  }
  // Missing or extra factor: the values around each op of the target's shape, and the local
  // derivative of each one-input op that keeps its input's shape.
  const Array ones = xt::ones<double>(target);
  for (const auto& op : ops) {
    const std::string at = op_str(op);
    if (shape_of(op.output.value()) == target) {
      const Array& v = op.output.value();
      c.factors.emplace_back("y of " + at, v);
      c.factors.emplace_back("(1 - y) of " + at, Array(1.0 - v));
      c.factors.emplace_back("(1 + y) of " + at, Array(1.0 + v));
      c.factors.emplace_back("y (1 - y) of " + at, Array(v * (1.0 - v)));
      c.factors.emplace_back("(1 - y^2) of " + at, Array(1.0 - v * v));
      if (op.inputs.size() == 1 && op.inputs[0].requires_grad() && shape_of(op.inputs[0].value()) == target)
        c.factors.emplace_back("the derivative of " + at, grad(op.output, {op.inputs[0]}, ones)[0].value());
    }
    for (std::size_t j = 0; j < op.inputs.size(); ++j)
      if (shape_of(op.inputs[j].value()) == target)
        c.factors.emplace_back("input " + std::to_string(j) + " of " + at, op.inputs[j].value());
  }
  // Only the diagonal: the chain through an op's output z of the target's size with dz/dx
  // reduced to its diagonal, (dF/dz)_i (dz_i/dx_i).
  const std::size_t n = p.values[k].size();
  if (n <= max_diagonal_elements)
    for (std::size_t i = 0; i < ops.size(); ++i) {
      const Tensor<double>& z = ops[i].output;
      if (z.size() != n || n < 2) continue;
      Array diagonal = xt::zeros<double>(target);
      for (std::size_t e = 0; e < n; ++e) {
        Array unit = xt::zeros<double>(z.shape());
        unit.data()[e] = 1;
        diagonal.data()[e] = grads[i].data()[e] * grad(z, {wrt[k]}, unit)[0].value().data()[e];
      }
      c.diagonal_only.emplace_back("the chain through " + op_str(ops[i]) + " with its Jacobian's diagonal only",
                                   std::move(diagonal));
    }
  c.factors.erase(std::remove_if(c.factors.begin(), c.factors.end(), [](const auto& f) { return constant(f.second); }),
                  c.factors.end());
  // Operand rearranged: the gradient with another checked tensor read transposed or flipped.
  for (std::size_t j = 0; j < p.values.size(); ++j) {
    if (j == k) continue;
    for (auto& [how, value] : rearranged(p.values[j])) {
      GradcheckProblem moved = p;
      moved.values[j] = value;
      c.operands_rearranged.emplace_back("with " + p.names[j] + " " + how, moved.autodiff({seed})[0][k]);
    }
  }
  return c;
}

}  // namespace tapegrad::detail
