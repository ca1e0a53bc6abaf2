#include "graphs.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <set>
#include <sstream>

namespace tapegrad::fuzz {
namespace {

// Smallest distance kept from a kink (relu, abs at 0; ties of max): far above the
// finite-difference step (gradcheck_options().eps), so both sides of a difference see the same
// branch while the derivative of the kink's input is below 100.
constexpr double kink_margin = 1e-3;
// Operands of log, sqrt, fractional powers and divisors are made at least this large.
constexpr double positive_floor = 0.2;

using tapegrad::detail::shape_of;
std::size_t count(const Shape& s) {
  return std::accumulate(s.begin(), s.end(), std::size_t(1), std::multiplies<std::size_t>());
}
std::vector<std::pair<std::size_t, std::size_t>> pads_of(const Step& s) {
  std::vector<std::pair<std::size_t, std::size_t>> pads;
  for (std::size_t k = 0; k + 1 < s.ints.size(); k += 2) pads.emplace_back(s.ints[k], s.ints[k + 1]);
  return pads;
}
Axes axes_of(const Step& s) { return Axes(s.ints.begin(), s.ints.end()); }
std::vector<std::size_t> labels_of(const Step& s) { return std::vector<std::size_t>(s.ints.begin(), s.ints.end()); }
Reduction reduction_of(const Step& s) { return s.flag ? Reduction::sum : Reduction::mean; }
Index index_of(const Step& s) {
  Index index = Index::from_shape(s.shape);
  std::copy(s.ints.begin() + 1, s.ints.end(), index.begin());
  return index;
}
xt::xarray<bool> cond_of(const Step& s) {
  xt::xarray<bool> cond = xt::xarray<bool>::from_shape(s.shape);
  std::transform(s.ints.begin(), s.ints.end(), cond.begin(), [](std::ptrdiff_t c) { return c != 0; });
  return cond;
}

// The op of one step on the values of the steps before it.  Mirrors expression() below.
TD apply(const Step& s, const std::vector<TD>& v, const Graph& g, const std::vector<TD>& inputs,
         const GraphOptions& options) {
  auto a = [&](std::size_t k) -> const TD& { return v[s.args[k]]; };
  switch (s.op) {
    case Op::input: return inputs[s.ints[0]];
    case Op::constant: return TD(g.constants[s.ints[0]]);
    case Op::neg: return neg(a(0));
    case Op::exp: return exp(a(0));
    case Op::log: return log(a(0));
    case Op::sqrt: return sqrt(a(0));
    case Op::pow: return pow(a(0), s.scalar);
    case Op::abs: return abs(a(0));
    case Op::tanh: return tanh(a(0));
    case Op::sigmoid: return sigmoid(a(0));
    case Op::relu: return relu(a(0));
    case Op::sin: return sin(a(0));
    case Op::cos: return cos(a(0));
    case Op::log1p: return log1p(a(0));
    case Op::expm1: return expm1(a(0));
    case Op::softplus: return softplus(a(0));
    case Op::leaky_relu: return leaky_relu(a(0), s.scalar);
    case Op::elu: return elu(a(0), s.scalar);
    case Op::erf: return erf(a(0));
    case Op::gelu: return gelu(a(0));
    case Op::maximum: return maximum(a(0), a(1));
    case Op::minimum: return minimum(a(0), a(1));
    case Op::clamp: return clamp(a(0), -s.scalar, s.scalar);
    case Op::add: return add(a(0), a(1));
    case Op::sub: return sub(a(0), a(1));
    case Op::mul: return mul(a(0), a(1));
    case Op::div: return div(a(0), a(1));
    case Op::add_scalar: return add(a(0), s.scalar);
    case Op::mul_scalar: return mul(a(0), s.scalar);
    case Op::rdiv_scalar: return rdiv(s.scalar, a(0));
    case Op::sum: return sum(a(0), axes_of(s), s.flag);
    case Op::mean: return mean(a(0), axes_of(s), s.flag);
    case Op::max: return max(a(0), axes_of(s), s.flag);
    case Op::sum_all: return sum(a(0));
    case Op::mean_all: return mean(a(0));
    case Op::max_all: return max(a(0));
    case Op::reshape: return reshape(a(0), s.shape);
    case Op::transpose: return transpose(a(0), std::vector<std::size_t>(s.ints.begin(), s.ints.end()));
    case Op::broadcast_to: return broadcast_to(a(0), s.shape);
    case Op::slice: return slice(a(0), s.ints[0], s.ints[1], s.ints[2], s.ints[3]);
    case Op::concat: {
      std::vector<TD> xs;
      for (std::size_t k = 0; k < s.args.size(); ++k) xs.push_back(a(k));
      return concat(xs, s.ints[0]);
    }
    case Op::pad: return pad(a(0), pads_of(s), s.scalar);
    case Op::matmul: return matmul(a(0), a(1), s.ints[0] != 0, s.ints[1] != 0);
    case Op::conv2d:
      return conv2d(a(0), a(1), s.args.size() > 2 ? a(2) : TD(), Size2(s.ints[2], s.ints[2]),
                    Size2(s.ints[3], s.ints[3]));
    case Op::avg_pool2d:
      return avg_pool2d(a(0), Size2(s.ints[0], s.ints[1]), Size2(s.ints[2], s.ints[2]), Size2(s.ints[3], s.ints[3]));
    case Op::max_pool2d: return max_pool2d(a(0), Size2(s.ints[0], s.ints[1]), Size2(s.ints[2], s.ints[2]));
    case Op::softmax: return softmax(a(0), s.ints[0]);
    case Op::log_softmax: return log_softmax(a(0), s.ints[0]);
    case Op::mse_loss: return mse_loss(a(0), a(1), reduction_of(s));
    case Op::cross_entropy: return cross_entropy(a(0), labels_of(s), reduction_of(s));
    case Op::index_select: return index_select(a(0), s.ints[0], std::vector<std::int64_t>(s.ints.begin() + 1, s.ints.end()));
    case Op::take_along_axis: return take_along_axis(a(0), index_of(s), s.ints[0]);
    case Op::where: return tapegrad::where(cond_of(s), a(0), a(1));   // qualified: ADL on cond finds xt::where
    case Op::cumsum: return cumsum(a(0), s.ints[0]);
    case Op::gather: return gather(a(0), s.ints[0], index_of(s));
    case Op::stack: {
      std::vector<TD> xs;
      for (std::size_t k = 0; k < s.args.size(); ++k) xs.push_back(a(k));
      return stack(xs, s.ints[0]);
    }
    case Op::split: return split(a(0), std::vector<std::size_t>(s.ints.begin() + 2, s.ints.end()), s.ints[0])[std::size_t(s.ints[1])];
    case Op::chunk: return chunk(a(0), std::size_t(s.ints[1]), s.ints[0])[std::size_t(s.ints[2])];
    case Op::custom: return options.custom(a(0));
  }
  throw std::logic_error("fuzz: unknown op");
}

std::string list(const std::vector<std::ptrdiff_t>& xs) {
  std::string s = "{";
  for (std::size_t k = 0; k < xs.size(); ++k) s += (k ? ", " : "") + std::to_string(xs[k]);
  return s + "}";
}
std::string list(const Shape& xs) { return list(std::vector<std::ptrdiff_t>(xs.begin(), xs.end())); }
std::string number(double x) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", x);
  return buf;
}

// The C++ expression of one step, for reproducers.  Mirrors apply() above.
std::string expression(const Step& s) {
  auto a = [&](std::size_t k) { return "v" + std::to_string(s.args[k]); };
  const std::string reduction = s.flag ? "tg::Reduction::sum" : "tg::Reduction::mean";
  const std::string keep = s.flag ? "true" : "false";
  switch (s.op) {
    case Op::input: return "in[" + std::to_string(s.ints[0]) + "]";
    case Op::constant: return "TD(c" + std::to_string(s.ints[0]) + ")";
    case Op::pow: return "tg::pow(" + a(0) + ", " + number(s.scalar) + ")";
    case Op::add_scalar: return "tg::add(" + a(0) + ", " + number(s.scalar) + ")";
    case Op::mul_scalar: return "tg::mul(" + a(0) + ", " + number(s.scalar) + ")";
    case Op::rdiv_scalar: return "tg::rdiv(" + number(s.scalar) + ", " + a(0) + ")";
    case Op::leaky_relu: case Op::elu: return "tg::" + op_name(s.op) + "(" + a(0) + ", " + number(s.scalar) + ")";
    case Op::clamp: return "tg::clamp(" + a(0) + ", " + number(-s.scalar) + ", " + number(s.scalar) + ")";
    case Op::sum: case Op::mean: case Op::max:
      return "tg::" + op_name(s.op) + "(" + a(0) + ", tg::Axes" + list(s.ints) + ", " + keep + ")";
    case Op::sum_all: case Op::mean_all: case Op::max_all:
      return "tg::" + op_name(s.op).substr(0, op_name(s.op).size() - 4) + "(" + a(0) + ")";
    case Op::reshape: return "tg::reshape(" + a(0) + ", tg::Shape" + list(s.shape) + ")";
    case Op::transpose: return "tg::transpose(" + a(0) + ", std::vector<std::size_t>" + list(s.ints) + ")";
    case Op::broadcast_to: return "tg::broadcast_to(" + a(0) + ", tg::Shape" + list(s.shape) + ")";
    case Op::slice:
      return "tg::slice(" + a(0) + ", " + std::to_string(s.ints[0]) + ", " + std::to_string(s.ints[1]) + ", " +
             std::to_string(s.ints[2]) + ", " + std::to_string(s.ints[3]) + ")";
    case Op::concat: {
      std::string xs;
      for (std::size_t k = 0; k < s.args.size(); ++k) xs += (k ? ", " : "") + a(k);
      return "tg::concat(std::vector<TD>{" + xs + "}, " + std::to_string(s.ints[0]) + ")";
    }
    case Op::pad: {
      std::string pads;
      for (const auto& [lo, hi] : pads_of(s))
        pads += std::string(pads.empty() ? "" : ", ") + "{" + std::to_string(lo) + ", " + std::to_string(hi) + "}";
      return "tg::pad(" + a(0) + ", {" + pads + "}, " + number(s.scalar) + ")";
    }
    case Op::matmul:
      return "tg::matmul(" + a(0) + ", " + a(1) + ", " + (s.ints[0] ? "true" : "false") + ", " +
             (s.ints[1] ? "true" : "false") + ")";
    case Op::conv2d:
      return "tg::conv2d(" + a(0) + ", " + a(1) + ", " + (s.args.size() > 2 ? a(2) : "TD()") + ", " +
             std::to_string(s.ints[2]) + ", " + std::to_string(s.ints[3]) + ")";
    case Op::avg_pool2d:
      return "tg::avg_pool2d(" + a(0) + ", tg::Size2(" + std::to_string(s.ints[0]) + ", " + std::to_string(s.ints[1]) +
             "), " + std::to_string(s.ints[2]) + ", " + std::to_string(s.ints[3]) + ")";
    case Op::max_pool2d:
      return "tg::max_pool2d(" + a(0) + ", tg::Size2(" + std::to_string(s.ints[0]) + ", " + std::to_string(s.ints[1]) +
             "), " + std::to_string(s.ints[2]) + ")";
    case Op::softmax: case Op::log_softmax:
      return "tg::" + op_name(s.op) + "(" + a(0) + ", " + std::to_string(s.ints[0]) + ")";
    case Op::mse_loss: return "tg::mse_loss(" + a(0) + ", " + a(1) + ", " + reduction + ")";
    case Op::cross_entropy:
      return "tg::cross_entropy(" + a(0) + ", std::vector<std::size_t>" + list(s.ints) + ", " + reduction + ")";
    case Op::index_select:
      return "tg::index_select(" + a(0) + ", " + std::to_string(s.ints[0]) + ", {" +
             list(std::vector<std::ptrdiff_t>(s.ints.begin() + 1, s.ints.end())).substr(1) + ")";
    case Op::take_along_axis:
      return "tg::take_along_axis(" + a(0) + ", [] { tg::Index i = tg::Index" +
             list(std::vector<std::ptrdiff_t>(s.ints.begin() + 1, s.ints.end())) + "; i.reshape(" + list(s.shape) +
             "); return i; }(), " + std::to_string(s.ints[0]) + ")";
    case Op::where: {
      std::string cond;
      for (const std::ptrdiff_t c : s.ints) cond += std::string(cond.empty() ? "" : ", ") + (c ? "true" : "false");
      return "tg::where([] { xt::xarray<bool> c = xt::xarray<bool>{" + cond + "}; c.reshape(" + list(s.shape) +
             "); return c; }(), " + a(0) + ", " + a(1) + ")";
    }
    case Op::cumsum: return "tg::cumsum(" + a(0) + ", " + std::to_string(s.ints[0]) + ")";
    case Op::gather:
      return "tg::gather(" + a(0) + ", " + std::to_string(s.ints[0]) + ", [] { tg::Index i = tg::Index" +
             list(std::vector<std::ptrdiff_t>(s.ints.begin() + 1, s.ints.end())) + "; i.reshape(" + list(s.shape) +
             "); return i; }())";
    case Op::stack: {
      std::string xs;
      for (std::size_t k = 0; k < s.args.size(); ++k) xs += (k ? ", " : "") + a(k);
      return "tg::stack(std::vector<TD>{" + xs + "}, " + std::to_string(s.ints[0]) + ")";
    }
    case Op::split:
      return "tg::split(" + a(0) + ", std::vector<std::size_t>" + list(std::vector<std::ptrdiff_t>(s.ints.begin() + 2, s.ints.end())) +
             ", " + std::to_string(s.ints[0]) + ")[" + std::to_string(s.ints[1]) + "]";
    case Op::chunk:
      return "tg::chunk(" + a(0) + ", " + std::to_string(s.ints[1]) + ", " + std::to_string(s.ints[0]) + ")[" +
             std::to_string(s.ints[2]) + "]";
    case Op::custom: return "custom(" + a(0) + ")   // the test's injected op";
    default: break;
  }
  std::string args;
  for (std::size_t k = 0; k < s.args.size(); ++k) args += (k ? ", " : "") + a(k);
  return "tg::" + op_name(s.op) + "(" + args + ")";
}

// All values of a graph, in order, with recording as the caller set it.
std::vector<TD> run_all(const Graph& g, const std::vector<TD>& inputs, const GraphOptions& options) {
  std::vector<TD> v;
  v.reserve(g.steps.size());
  for (const Step& s : g.steps) v.push_back(apply(s, v, g, inputs, options));
  return v;
}

std::vector<TD> leaves_of(const Graph& g) {
  std::vector<TD> inputs;
  for (const Arr& a : g.inputs) inputs.emplace_back(a, true);
  return inputs;
}

// The smallest gap between the largest and second largest element over the reduced axes, for
// each position of the others (infinity when each group has one element).
double max_gap(const Arr& x, const std::vector<std::size_t>& reduced) {
  const Shape shape = shape_of(x);
  std::vector<std::size_t> strides(shape.size(), 1);   // of the kept axes' output index
  std::size_t out = 1;
  for (std::size_t k = shape.size(); k-- > 0;)
    if (std::find(reduced.begin(), reduced.end(), k) == reduced.end()) {
      strides[k] = out;
      out *= shape[k];
    } else {
      strides[k] = 0;
    }
  std::vector<double> top(out, -INFINITY), second(out, -INFINITY);
  Shape index(shape.size(), 0);
  for (std::size_t i = 0; i < x.size(); ++i) {
    std::size_t o = 0;
    for (std::size_t k = 0; k < shape.size(); ++k) o += index[k] * strides[k];
    const double value = x.data()[i];
    if (value > top[o]) {
      second[o] = top[o];
      top[o] = value;
    } else if (value > second[o]) {
      second[o] = value;
    }
    for (std::size_t k = shape.size(); k-- > 0;) {
      if (++index[k] < shape[k]) break;
      index[k] = 0;
    }
  }
  double gap = INFINITY;
  for (std::size_t o = 0; o < out; ++o) gap = std::min(gap, top[o] - second[o]);
  return gap;
}

// Builds a random graph one op at a time, evaluating every step as it goes (no tape), so that
// each op is drawn where it is defined and smooth.
class Builder {
 public:
  Builder(std::uint64_t seed, const GraphOptions& options) : rng_(seed), options_(options) {}

  Graph build() {
    const std::size_t first_inputs = 1 + pick(2);
    for (std::size_t k = 0; k < first_inputs; ++k) {
      Shape shape = random_shape(4);
      while (count(shape) > options_.max_size / 2) shape.pop_back();
      new_input(shape);
    }
    for (std::size_t drawn = 0, tries = 0; drawn < options_.ops && tries < options_.ops * 20; ++tries) {
      const Graph saved = graph_;
      const std::vector<TD> saved_values = values_;
      bool ok = false;
      try {
        ok = draw_op();
      } catch (const ShapeError&) {
      } catch (const ValueError&) {
      }
      if (ok) {
        ++drawn;
      } else {
        graph_ = saved;
        values_ = saved_values;
      }
    }
    finish();
    return graph_;
  }

 private:
  std::size_t pick(std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng_); }
  double uniform(double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng_); }
  bool chance(double p) { return uniform(0, 1) < p; }

  Shape random_shape(std::size_t max_rank) {
    Shape s(pick(max_rank + 1));
    for (auto& d : s) d = 1 + pick(options_.max_dim);
    return s;
  }
  Arr random_array(const Shape& shape, double lo, double hi) {
    Arr a = Arr::from_shape(shape);
    for (auto& x : a) x = uniform(lo, hi);
    return a;
  }

  std::size_t emit(Step step) {
    NoGrad no_grad;
    const TD out = apply(step, values_, graph_, leaves_of(graph_), options_);
    if (out.size() > options_.max_size) throw ValueError("fuzz: too large");
    for (double x : out.value())
      if (!std::isfinite(x) || std::abs(x) > 1e4) throw ValueError("fuzz: out of range");
    graph_.steps.push_back(std::move(step));
    values_.push_back(out);
    return values_.size() - 1;
  }
  std::size_t new_input(const Shape& shape) {
    graph_.inputs.push_back(random_array(shape, -2, 2));
    return emit(Step{Op::input, {}, {std::ptrdiff_t(graph_.inputs.size() - 1)}});
  }
  std::size_t new_constant(const Shape& shape, double lo = -2, double hi = 2) {
    graph_.constants.push_back(random_array(shape, lo, hi));
    return emit(Step{Op::constant, {}, {std::ptrdiff_t(graph_.constants.size() - 1)}});
  }
  // A value that depends on an input, recent ones more likely (long chains), any may repeat
  // (fan-out).
  std::size_t operand() {
    std::vector<std::size_t> candidates;
    for (std::size_t i = 0; i < graph_.steps.size(); ++i)
      if (graph_.steps[i].op != Op::constant) candidates.push_back(i);
    const std::size_t n = candidates.size();
    return chance(0.5) ? candidates[n - 1 - pick(std::min<std::size_t>(n, 2))] : candidates[pick(n)];
  }
  const Arr& value(std::size_t i) const { return values_[i].value(); }
  Shape shape(std::size_t i) const { return values_[i].shape(); }
  double min_value(std::size_t i) const {
    double m = INFINITY;
    for (double x : value(i)) m = std::min(m, x);
    return m;
  }
  double max_abs(std::size_t i) const {
    double m = 0;
    for (double x : value(i)) m = std::max(m, std::abs(x));
    return m;
  }
  double min_abs(std::size_t i) const {
    double m = INFINITY;
    for (double x : value(i)) m = std::min(m, std::abs(x));
    return m;
  }
  // x itself if it is at least positive_floor everywhere, else x*x + 0.5 (new steps).
  std::size_t positive(std::size_t x) {
    if (min_value(x) >= positive_floor) return x;
    const std::size_t sq = emit(Step{Op::mul, {x, x}});
    return emit(Step{Op::add_scalar, {sq}, {}, {}, 0.5});
  }
  // A shape that broadcasts with s: some dimensions set to 1, maybe fewer leading axes.
  Shape broadcastable(const Shape& s) {
    Shape b(s.begin() + (s.empty() ? 0 : pick(s.size() + 1) / 2), s.end());
    for (auto& d : b)
      if (chance(0.3)) d = 1;
    return b;
  }
  // x reshaped to 4-D (N, C, H, W) with H and W at least 2 where its size allows.
  std::size_t as_image(std::size_t x) {
    const Shape s = shape(x);
    if (s.size() == 4) return x;
    const std::size_t n = count(s);
    std::vector<std::size_t> divisors;
    for (std::size_t d = 1; d <= n; ++d)
      if (n % d == 0) divisors.push_back(d);
    const std::size_t h = divisors[pick(divisors.size())];
    const std::size_t rest = n / h;
    const std::size_t c = chance(0.3) && rest % 2 == 0 && rest > 2 ? 2 : 1;
    return emit(Step{Op::reshape, {x}, {}, {1, c, h, rest / c}});
  }

  bool draw_op() {
    static const Op ops[] = {Op::neg, Op::exp, Op::log, Op::sqrt, Op::pow, Op::abs, Op::tanh, Op::sigmoid,
                             Op::relu, Op::sin, Op::cos, Op::log1p, Op::expm1, Op::softplus, Op::leaky_relu,
                             Op::elu, Op::erf, Op::gelu, Op::maximum, Op::minimum, Op::clamp, Op::add, Op::sub, Op::mul, Op::div, Op::add_scalar, Op::mul_scalar,
                             Op::rdiv_scalar, Op::sum, Op::mean, Op::max, Op::sum_all, Op::mean_all,
                             Op::max_all, Op::reshape, Op::transpose, Op::broadcast_to, Op::slice, Op::concat,
                             Op::pad, Op::matmul, Op::conv2d, Op::avg_pool2d, Op::max_pool2d, Op::softmax,
                             Op::log_softmax, Op::mse_loss, Op::cross_entropy, Op::index_select,
                             Op::take_along_axis, Op::where, Op::cumsum, Op::gather, Op::stack, Op::split,
                             Op::chunk, Op::custom};
    const std::size_t choices = std::size(ops) - (options_.custom ? 0 : 1);
    const Op op = ops[pick(choices)];
    std::size_t x = operand();
    const Shape sx = shape(x);
    const std::size_t rank = sx.size();
    switch (op) {
      case Op::neg: case Op::tanh: case Op::sigmoid: case Op::custom: case Op::sin: case Op::cos: case Op::erf:
      case Op::gelu: case Op::softplus:
        emit(Step{op, {x}});
        return true;
      case Op::log1p:
        emit(Step{op, {positive(x)}});
        return true;
      case Op::leaky_relu: case Op::elu:
        if (min_abs(x) < kink_margin) return false;
        emit(Step{op, {x}, {}, {}, op == Op::leaky_relu ? uniform(0.05, 0.5) : uniform(0.5, 2)});
        return true;
      case Op::clamp: {
        // Bounds -c and c, every element away from both (the gradient steps there).
        const double c = uniform(0.2, 2);
        for (double v : value(x))
          if (std::abs(std::abs(v) - c) < kink_margin) return false;
        emit(Step{op, {x}, {}, {}, c});
        return true;
      }
      case Op::maximum: case Op::minimum: {
        std::size_t y = operand();
        if (shape(y) != sx || chance(0.5)) y = new_constant(broadcastable(sx));
        if (chance(0.5)) std::swap(x, y);
        if (xt::amin(xt::abs(value(x) - value(y)))() < kink_margin) return false;   // no ties
        emit(Step{op, {x, y}});
        return true;
      }
      case Op::exp: case Op::expm1:
        if (max_abs(x) > 4) return false;
        emit(Step{op, {x}});
        return true;
      case Op::log: case Op::sqrt:
        emit(Step{op, {positive(x)}});
        return true;
      case Op::pow: {
        static const double powers[] = {2, 3, -1, 0.5, 1.5};
        const double p = powers[pick(5)];
        emit(Step{op, {p == 2 || p == 3 ? x : positive(x)}, {}, {}, p});
        return true;
      }
      case Op::abs: case Op::relu:
        if (min_abs(x) < kink_margin) return false;
        emit(Step{op, {x}});
        return true;
      case Op::add: case Op::sub: case Op::mul: case Op::div: {
        std::size_t y;
        const double r = uniform(0, 1);
        if (r < 0.2) {
          y = x;   // the same tensor on both sides
        } else if (r < 0.6) {
          y = operand();
        } else {
          y = op == Op::div ? new_constant(broadcastable(sx), 0.5, 2) : new_constant(broadcastable(sx));
        }
        if (chance(0.5)) std::swap(x, y);
        if (op == Op::div) y = positive(y);
        emit(Step{op, {x, y}});
        return true;
      }
      case Op::add_scalar: case Op::mul_scalar:
        emit(Step{op, {x}, {}, {}, uniform(-2, 2)});
        return true;
      case Op::rdiv_scalar:
        emit(Step{op, {positive(x)}, {}, {}, uniform(-2, 2)});
        return true;
      case Op::sum: case Op::mean: case Op::max: {
        if (rank == 0) return false;
        std::vector<std::ptrdiff_t> axes;
        std::vector<std::size_t> reduced;
        for (std::size_t k = 0; k < rank; ++k)
          if (chance(0.5)) {
            axes.push_back(chance(0.3) ? std::ptrdiff_t(k) - std::ptrdiff_t(rank) : std::ptrdiff_t(k));
            reduced.push_back(k);
          }
        if (axes.empty()) {
          axes.push_back(std::ptrdiff_t(rank - 1));
          reduced.push_back(rank - 1);
        }
        if (op == Op::max && max_gap(value(x), reduced) < kink_margin) return false;
        emit(Step{op, {x}, axes, {}, 0, chance(0.5)});
        return true;
      }
      case Op::sum_all: case Op::mean_all:
        emit(Step{op, {x}});
        return true;
      case Op::max_all: {
        std::vector<std::size_t> all(rank);
        std::iota(all.begin(), all.end(), 0);
        if (max_gap(value(x), all) < kink_margin) return false;
        emit(Step{op, {x}});
        return true;
      }
      case Op::reshape: {
        std::size_t n = count(sx);
        Shape target;
        while (n > 1 && target.size() < 3) {
          std::vector<std::size_t> divisors;
          for (std::size_t d = 2; d <= n; ++d)
            if (n % d == 0) divisors.push_back(d);
          const std::size_t d = divisors[pick(divisors.size())];
          target.push_back(d);
          n /= d;
        }
        if (n > 1) target.back() *= n;
        if (chance(0.3)) target.insert(target.begin() + pick(target.size() + 1), 1);
        std::shuffle(target.begin(), target.end(), rng_);
        emit(Step{op, {x}, {}, target});
        return true;
      }
      case Op::transpose: {
        if (rank < 2) return false;
        std::vector<std::ptrdiff_t> perm(rank);
        std::iota(perm.begin(), perm.end(), 0);
        std::shuffle(perm.begin(), perm.end(), rng_);
        emit(Step{op, {x}, perm});
        return true;
      }
      case Op::broadcast_to: {
        Shape target = sx;
        for (auto& d : target)
          if (d == 1 && chance(0.7)) d = 1 + pick(3);
        if (chance(0.5) || target == sx) target.insert(target.begin(), 2 + pick(2));
        emit(Step{op, {x}, {}, target});
        return true;
      }
      case Op::slice: {
        std::vector<std::size_t> wide;
        for (std::size_t k = 0; k < rank; ++k)
          if (sx[k] >= 2) wide.push_back(k);
        if (wide.empty()) return false;
        const std::size_t axis = wide[pick(wide.size())];
        const std::ptrdiff_t d = std::ptrdiff_t(sx[axis]);
        const std::ptrdiff_t start = std::ptrdiff_t(pick(std::size_t(d)));
        const std::ptrdiff_t stop = start + 1 + std::ptrdiff_t(pick(std::size_t(d - start)));
        const std::ptrdiff_t step = 1 + std::ptrdiff_t(pick(2));
        emit(Step{op, {x}, {chance(0.3) ? std::ptrdiff_t(axis) - std::ptrdiff_t(rank) : std::ptrdiff_t(axis),
                            chance(0.3) ? start - d : start, stop, step}});
        return true;
      }
      case Op::concat: {
        if (rank == 0) return false;
        const std::size_t axis = pick(rank);
        std::vector<std::size_t> parts{x};
        Shape other = sx;
        other[axis] = 1 + pick(3);
        std::size_t match = x;
        for (std::size_t i = 0; i < values_.size(); ++i) {
          const Shape si = shape(i);
          if (i != x && si.size() == rank && graph_.steps[i].op != Op::constant) {
            Shape a = si, b = sx;
            a[axis] = b[axis] = 0;
            if (a == b) match = i;
          }
        }
        parts.push_back(chance(0.3) ? x : chance(0.5) ? match : new_constant(other));
        if (chance(0.3)) parts.push_back(x);
        std::shuffle(parts.begin(), parts.end(), rng_);
        emit(Step{op, parts, {std::ptrdiff_t(axis)}});
        return true;
      }
      case Op::pad: {
        std::vector<std::ptrdiff_t> pads;
        for (std::size_t k = 0; k < rank; ++k) {
          pads.push_back(std::ptrdiff_t(pick(2)));
          pads.push_back(std::ptrdiff_t(pick(3)));
        }
        emit(Step{op, {x}, pads, {}, chance(0.5) ? 0.0 : uniform(-1, 1)});
        return true;
      }
      case Op::matmul: {
        if (rank == 0) return false;
        const bool ta = rank >= 2 && chance(0.3), tb = chance(0.3);
        const std::size_t k = ta ? sx[rank - 2] : sx[rank - 1];
        const std::size_t m = 1 + pick(options_.max_dim);
        const Shape sb = tb ? Shape{m, k} : Shape{k, m};
        std::size_t y = x;
        if (chance(0.5)) {
          y = new_input(sb);
        } else {
          y = new_constant(sb);
          for (std::size_t i = 0; i < values_.size(); ++i)
            if (shape(i) == sb && graph_.steps[i].op != Op::constant && chance(0.5)) y = i;
        }
        emit(Step{op, {x, y}, {ta, tb}});
        return true;
      }
      case Op::conv2d: case Op::avg_pool2d: case Op::max_pool2d: {
        x = as_image(x);
        const Shape s4 = shape(x);
        const std::size_t padding = op == Op::max_pool2d ? 0 : pick(2);
        const std::size_t stride = 1 + pick(2);
        const std::size_t kh = 1 + pick(std::min<std::size_t>(s4[2] + 2 * padding, 3));
        const std::size_t kw = 1 + pick(std::min<std::size_t>(s4[3] + 2 * padding, 3));
        if (op == Op::conv2d) {
          const std::size_t out_channels = 1 + pick(3);
          std::vector<std::size_t> args{x, new_input({out_channels, s4[1], kh, kw})};
          const double r = uniform(0, 1);
          if (r < 0.5) args.push_back(new_input({out_channels}));
          else if (r < 0.75) args.push_back(new_constant({out_channels}));
          emit(Step{op, args, {std::ptrdiff_t(kh), std::ptrdiff_t(kw), std::ptrdiff_t(stride), std::ptrdiff_t(padding)}});
          return true;
        }
        if (op == Op::max_pool2d) {
          // The windows' elements, channel by channel, to keep ties away.
          NoGrad no_grad;
          const Arr cols = im2col(TD(value(x)), Size2(kh, kw), Size2(stride, stride)).value();
          const Arr grouped = xt::reshape_view(cols, {s4[0], s4[1], kh * kw, cols.shape()[2]});
          if (max_gap(grouped, {2}) < kink_margin) return false;
        }
        emit(Step{op, {x}, {std::ptrdiff_t(kh), std::ptrdiff_t(kw), std::ptrdiff_t(stride), std::ptrdiff_t(padding)}});
        return true;
      }
      case Op::softmax: case Op::log_softmax:
        if (rank == 0) return false;
        emit(Step{op, {x}, {std::ptrdiff_t(pick(rank)) - (chance(0.3) ? std::ptrdiff_t(rank) : 0)}});
        return true;
      case Op::mse_loss: {
        std::size_t target = new_constant(sx);
        for (std::size_t i = 0; i < values_.size(); ++i)
          if (i != x && shape(i) == sx && graph_.steps[i].op != Op::constant && chance(0.5)) target = i;
        emit(Step{op, {x, target}, {}, {}, 0, chance(0.5)});
        return true;
      }
      case Op::cross_entropy: {
        if (rank != 2) x = emit(Step{Op::reshape, {x}, {}, {1, count(sx)}});
        const Shape s2 = shape(x);
        std::vector<std::ptrdiff_t> labels;
        for (std::size_t n = 0; n < s2[0]; ++n) labels.push_back(std::ptrdiff_t(pick(s2[1])));
        emit(Step{op, {x}, labels, {}, 0, chance(0.5)});
        return true;
      }
      case Op::index_select: case Op::take_along_axis: {
        if (rank == 0) return false;
        const std::size_t axis = pick(rank);
        const auto n = std::ptrdiff_t(sx[axis]);
        std::vector<std::ptrdiff_t> ints{chance(0.3) ? std::ptrdiff_t(axis) - std::ptrdiff_t(rank) : std::ptrdiff_t(axis)};
        Shape index_shape = sx;
        index_shape[axis] = 1 + pick(4);   // repeats likely: several gradients added at one place
        if (op == Op::take_along_axis)
          for (std::size_t k = 0; k < rank; ++k)
            if (k != axis && chance(0.3)) index_shape[k] = 1;   // broadcast against x
        const std::size_t picks = op == Op::index_select ? index_shape[axis] : count(index_shape);
        if (count(sx) / std::max<std::size_t>(sx[axis], 1) * index_shape[axis] > options_.max_size) return false;
        for (std::size_t i = 0; i < picks; ++i) ints.push_back(std::ptrdiff_t(pick(std::size_t(n))) - (chance(0.3) ? n : 0));
        emit(Step{op, {x}, ints, op == Op::take_along_axis ? index_shape : Shape{}});
        return true;
      }
      case Op::where: {
        std::size_t y = operand();
        if (shape(y) != sx || chance(0.5)) y = new_constant(broadcastable(sx));
        if (chance(0.5)) std::swap(x, y);
        const Shape cond_shape = broadcastable(sx);
        std::vector<std::ptrdiff_t> cond;
        for (std::size_t i = 0; i < count(cond_shape); ++i) cond.push_back(chance(0.5));
        emit(Step{op, {x, y}, cond, cond_shape});
        return true;
      }
      case Op::cumsum:
        if (rank == 0) return false;
        emit(Step{op, {x}, {std::ptrdiff_t(pick(rank)) - (chance(0.3) ? std::ptrdiff_t(rank) : 0)}});
        return true;
      case Op::gather: {   // an index no larger than x outside the axis, repeated positions likely
        if (rank == 0) return false;
        const std::size_t axis = pick(rank);
        Shape index_shape = sx;
        for (std::size_t k = 0; k < rank; ++k) index_shape[k] = k == axis ? 1 + pick(4) : 1 + pick(sx[k]);
        if (count(index_shape) > options_.max_size) return false;
        std::vector<std::ptrdiff_t> ints{chance(0.3) ? std::ptrdiff_t(axis) - std::ptrdiff_t(rank) : std::ptrdiff_t(axis)};
        const auto n = std::ptrdiff_t(sx[axis]);
        for (std::size_t i = 0; i < count(index_shape); ++i) ints.push_back(std::ptrdiff_t(pick(sx[axis])) - (chance(0.3) ? n : 0));
        emit(Step{op, {x}, ints, index_shape});
        return true;
      }
      case Op::stack: {   // x with other values of its shape (x again, likely), along a new axis
        if (count(sx) * 3 > options_.max_size) return false;
        std::vector<std::size_t> parts{x};
        for (std::size_t i = 0; i < values_.size(); ++i)
          if (i != x && shape(i) == sx && graph_.steps[i].op != Op::constant && chance(0.5)) {
            parts.push_back(i);
            break;
          }
        parts.push_back(chance(0.3) ? x : new_constant(sx));
        std::shuffle(parts.begin(), parts.end(), rng_);
        emit(Step{op, parts, {std::ptrdiff_t(pick(rank + 1)) - (chance(0.3) ? std::ptrdiff_t(rank + 1) : 0)}});
        return true;
      }
      case Op::split: case Op::chunk: {   // one piece of x along an axis
        if (rank == 0) return false;
        const std::size_t axis = pick(rank), n = sx[axis];
        if (n < 2) return false;
        const std::ptrdiff_t signed_axis = chance(0.3) ? std::ptrdiff_t(axis) - std::ptrdiff_t(rank) : std::ptrdiff_t(axis);
        if (op == Op::chunk) {
          const std::size_t chunks = 1 + pick(n), size = (n + chunks - 1) / chunks, pieces = (n + size - 1) / size;
          emit(Step{op, {x}, {signed_axis, std::ptrdiff_t(chunks), std::ptrdiff_t(pick(pieces))}});
          return true;
        }
        std::vector<std::ptrdiff_t> sizes;
        for (std::size_t left = n; left > 0;) {
          const std::size_t size = 1 + pick(left);
          sizes.push_back(std::ptrdiff_t(size));
          left -= size;
        }
        std::vector<std::ptrdiff_t> ints{signed_axis, std::ptrdiff_t(pick(sizes.size()))};
        ints.insert(ints.end(), sizes.begin(), sizes.end());
        emit(Step{op, {x}, ints});
        return true;
      }
      case Op::input: case Op::constant: break;
    }
    return false;
  }

  // Values nothing reads join the output, each summed and weighted, so every op counts.
  void finish() {
    const Graph saved = graph_;
    try {
      join_unused();
    } catch (const ValueError&) {   // the sums grew out of range: the graph stays as drawn
      graph_ = saved;
    }
  }
  void join_unused() {
    std::vector<bool> used(graph_.steps.size(), false);
    for (const Step& s : graph_.steps)
      for (std::size_t a : s.args) used[a] = true;
    std::size_t out = graph_.steps.size() - 1;
    for (std::size_t i = 0; i + 1 < used.size(); ++i) {
      const Op op = graph_.steps[i].op;
      if (used[i] || op == Op::constant || op == Op::input) continue;
      const std::size_t total = emit(Step{Op::sum_all, {i}});
      const std::size_t weighted = emit(Step{Op::mul_scalar, {total}, {}, {}, uniform(0.5, 1.5)});
      out = emit(Step{Op::add, {out, weighted}});
    }
  }

  std::mt19937_64 rng_;
  GraphOptions options_;
  Graph graph_;
  std::vector<TD> values_;
};

// The second-order check's random seed u of the output and weights w_k of the inputs' gradients.
struct SecondOrderWeights {
  Arr seed;
  std::vector<Arr> weights;
};
SecondOrderWeights second_order_weights(const Graph& g, const GraphOptions& options) {
  std::mt19937_64 rng(g.steps.size());
  std::uniform_real_distribution<double> u(-1, 1);
  SecondOrderWeights w;
  NoGrad no_grad;
  w.seed = Arr::from_shape(run_all(g, leaves_of(g), options).back().shape());
  for (auto& x : w.seed) x = u(rng);
  for (const Arr& in : g.inputs) {
    Arr a = Arr::from_shape(in.shape());
    for (auto& x : a) x = u(rng);
    w.weights.push_back(a);
  }
  return w;
}

// The steps the output depends on, renumbered; inputs and constants no step reads are dropped.
Graph prune(const Graph& g, std::size_t output) {
  std::vector<bool> live(g.steps.size(), false);
  live[output] = true;
  for (std::size_t i = output + 1; i-- > 0;)
    if (live[i])
      for (std::size_t a : g.steps[i].args) live[a] = true;
  Graph out;
  std::vector<std::size_t> renumber(g.steps.size());
  for (std::size_t i = 0; i <= output; ++i) {
    if (!live[i]) continue;
    Step s = g.steps[i];
    for (auto& a : s.args) a = renumber[a];
    if (s.op == Op::input) {
      out.inputs.push_back(g.inputs[s.ints[0]]);
      s.ints[0] = std::ptrdiff_t(out.inputs.size() - 1);
    } else if (s.op == Op::constant) {
      out.constants.push_back(g.constants[s.ints[0]]);
      s.ints[0] = std::ptrdiff_t(out.constants.size() - 1);
    }
    renumber[i] = out.steps.size();
    out.steps.push_back(std::move(s));
  }
  return out;
}

// a without its last index along `axis`.
Arr drop_last(const Arr& a, std::size_t axis) {
  NoGrad no_grad;
  return slice(TD(a), std::ptrdiff_t(axis), 0, std::ptrdiff_t(a.shape()[axis]) - 1).value();
}

}  // namespace

std::string op_name(Op op) {
  static const char* names[] = {"input", "constant", "neg", "exp", "log", "sqrt", "pow", "abs", "tanh",
                                "sigmoid", "relu", "sin", "cos", "log1p", "expm1", "softplus", "leaky_relu", "elu",
                                "erf", "gelu", "maximum", "minimum", "clamp", "add", "sub", "mul", "div", "add_scalar", "mul_scalar",
                                "rdiv_scalar", "sum", "mean", "max", "sum_all", "mean_all", "max_all",
                                "reshape", "transpose", "broadcast_to", "slice", "concat", "pad", "matmul",
                                "conv2d", "avg_pool2d", "max_pool2d", "softmax", "log_softmax", "mse_loss",
                                "cross_entropy", "index_select", "take_along_axis", "where", "cumsum", "gather", "stack",
                                "split", "chunk", "custom"};
  return names[static_cast<std::size_t>(op)];
}

std::size_t op_count(const Graph& graph) {
  return std::count_if(graph.steps.begin(), graph.steps.end(),
                       [](const Step& s) { return s.op != Op::input && s.op != Op::constant; });
}

Graph generate(std::uint64_t seed, const GraphOptions& options) { return Builder(seed, options).build(); }

TD run(const Graph& graph, const std::vector<TD>& inputs, const GraphOptions& options) {
  return run_all(graph, inputs, options).back();
}

GradcheckOptions gradcheck_options() {
  GradcheckOptions o;
  o.forward = true;
  o.richardson = true;
  o.eps = 1e-5;
  o.rtol = 1e-4;
  o.atol = 1e-7;
  return o;
}

CheckResult check(const Graph& graph, bool second_order, const GraphOptions& options) {
  CheckResult result;
  try {
    GradcheckFunction f = [&](const std::vector<TD>& inputs) { return run(graph, inputs, options); };
    if (second_order) {
      // h = sum_k <dy/dx_k, w_k> with y = <f, u>: its gradient needs the second derivatives.
      f = [&graph, &options, w = second_order_weights(graph, options)](const std::vector<TD>& inputs) {
        const TD y = sum(run(graph, inputs, options) * TD(w.seed));
        const std::vector<TD> g = grad(y, inputs, true);
        TD h = sum(g[0] * TD(w.weights[0]));
        for (std::size_t k = 1; k < g.size(); ++k) h = h + sum(g[k] * TD(w.weights[k]));
        return h;
      };
    }
    Tape tape;
    // Forward mode too: <v, J u> against finite differences and reverse mode; over the second-order
    // function h, that is forward mode over a reverse-mode gradient.
    const GradcheckReport report = gradcheck(f, leaves_of(graph), gradcheck_options());
    result.report = report.str();
    if (!report.ok()) result.failure = "mismatch";
  } catch (const std::exception& e) {
    const std::string what = e.what();
    result.report = "exception: " + what;
    result.failure = "exception: " + what.substr(0, what.find(':'));
  }
  return result;
}

Graph shrink(Graph graph, const std::function<bool(const Graph&)>& fails) {
  for (bool changed = true; changed;) {
    changed = false;
    // An earlier output.
    for (std::size_t out = 0; out + 1 < graph.steps.size(); ++out) {
      const Graph candidate = prune(graph, out);
      if (op_count(candidate) > 0 && fails(candidate)) {
        graph = candidate;
        changed = true;
        break;
      }
    }
    // A step bypassed: its readers read one of its arguments of the same shape instead.
    for (std::size_t i = 0; i < graph.steps.size() && !changed; ++i) {
      for (std::size_t arg : graph.steps[i].args) {
        Graph candidate = graph;
        for (auto& s : candidate.steps)
          for (auto& a : s.args)
            if (a == i) a = arg;
        candidate = prune(candidate, candidate.steps.size() - 1);
        if (op_count(candidate) > 0 && op_count(candidate) < op_count(graph) && fails(candidate)) {
          graph = candidate;
          changed = true;
          break;
        }
      }
    }
    // Smaller inputs and constants (where every op still accepts the shapes).
    for (int source = 0; source < 2 && !changed; ++source) {
      auto& arrays = source == 0 ? graph.inputs : graph.constants;
      for (std::size_t k = 0; k < arrays.size() && !changed; ++k)
        for (std::size_t axis = 0; axis < arrays[k].dimension() && !changed; ++axis) {
          if (arrays[k].shape()[axis] < 2) continue;
          Graph candidate = graph;
          (source == 0 ? candidate.inputs : candidate.constants)[k] = drop_last(arrays[k], axis);
          if (fails(candidate)) {
            graph = candidate;
            changed = true;
          }
        }
    }
  }
  return graph;
}

std::string reproducer(const Graph& graph, bool second_order, const std::string& origin) {
  std::ostringstream os;
  auto array = [&](const Arr& a) {
    os << "arr(tg::Shape" << list(shape_of(a)) << ", {";
    for (std::size_t i = 0; i < a.size(); ++i) os << (i ? ", " : "") << number(a.data()[i]);
    os << "})";
  };
  os << "// " << origin << "\n"
     << "#include <tapegrad/tapegrad.hpp>\n\n#include <algorithm>\n#include <iostream>\n\n"
     << "namespace tg = tapegrad;\nusing TD = tg::Tensor<double>;\nusing Arr = xt::xarray<double>;\n\n"
     << "Arr arr(const tg::Shape& shape, const std::vector<double>& values) {\n"
     << "  Arr a = Arr::from_shape(shape);\n  std::copy(values.begin(), values.end(), a.begin());\n  return a;\n}\n\n"
     << "int main() {\n";
  for (std::size_t k = 0; k < graph.constants.size(); ++k) {
    os << "  const Arr c" << k << " = ";
    array(graph.constants[k]);
    os << ";\n";
  }
  os << "  const std::vector<TD> inputs = {\n";
  for (const Arr& a : graph.inputs) {
    os << "      TD(";
    array(a);
    os << ", true),\n";
  }
  os << "  };\n  auto f = [&](const std::vector<TD>& in) {\n";
  for (std::size_t i = 0; i < graph.steps.size(); ++i)
    os << "    const TD v" << i << " = " << expression(graph.steps[i]) << ";\n";
  os << "    return v" << graph.steps.size() - 1 << ";\n  };\n";
  if (second_order) {
    const SecondOrderWeights w = second_order_weights(graph, GraphOptions{});
    os << "  // Second derivatives: the gradient of h = sum_k <dy/dx_k, w_k>, y = <f, u>, through\n"
       << "  // create_graph.\n  const TD u(";
    array(w.seed);
    os << ");\n  const std::vector<TD> w = {\n";
    for (const Arr& a : w.weights) {
      os << "      TD(";
      array(a);
      os << "),\n";
    }
    os << "  };\n  auto h = [&](const std::vector<TD>& in) {\n"
       << "    const std::vector<TD> g = tg::grad(tg::sum(f(in) * u), in, true);\n"
       << "    TD total = tg::sum(g[0] * w[0]);\n"
       << "    for (std::size_t k = 1; k < g.size(); ++k) total = total + tg::sum(g[k] * w[k]);\n"
       << "    return total;\n  };\n";
  }
  os << "  tg::Tape tape;\n"
     << "  tg::GradcheckOptions checks;\n  checks.forward = true;\n  checks.richardson = true;\n"
     << "  checks.eps = " << number_str(gradcheck_options().eps) << ";\n  checks.rtol = " << number_str(gradcheck_options().rtol)
     << ";\n  checks.atol = " << number_str(gradcheck_options().atol)
     << ";\n"
     << "  const tg::GradcheckReport report = tg::gradcheck(" << (second_order ? "h" : "f") << ", inputs, checks);\n"
     << "  std::cout << report.str() << '\\n';\n  return report.ok() ? 0 : 1;\n}\n";
  return os.str();
}

}  // namespace tapegrad::fuzz
