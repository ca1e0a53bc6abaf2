// Forward mode: tangents through every op (tg::jvp), against finite differences and against
// reverse mode.
#include "helpers.hpp"

#include "fuzz/graphs.hpp"

namespace fz = tg::fuzz;

namespace {
// Central differences of f along t: (f(x + eps t) - f(x - eps t)) / 2 eps, each output.
std::vector<Arr> directional(const std::function<std::vector<TD>(const Inputs&)>& f, const Inputs& x, const Inputs& t,
                             double eps = 1e-6) {
  Inputs plus, minus;
  for (std::size_t i = 0; i < x.size(); ++i) {
    plus.push_back(TD(Arr(x[i].value() + eps * t[i].value())));
    minus.push_back(TD(Arr(x[i].value() - eps * t[i].value())));
  }
  tg::NoGrad no_grad;
  const auto fp = f(plus), fm = f(minus);
  std::vector<Arr> d;
  for (std::size_t j = 0; j < fp.size(); ++j) d.push_back((fp[j].value() - fm[j].value()) / (2 * eps));
  return d;
}
}  // namespace

TEST_CASE("jvp of a function of several tensors with several outputs matches finite differences") {
  const Inputs x{leaf({2, 3}, 960), leaf({3, 4}, 961), leaf({1, 2, 5, 5}, 962), leaf({3, 2, 3, 3}, 963)};
  const Inputs t{leaf({2, 3}, 964), leaf({3, 4}, 965), leaf({1, 2, 5, 5}, 966), leaf({3, 2, 3, 3}, 967)};
  auto f = [](const Inputs& in) {
    const TD h = tg::tanh(tg::matmul(in[0], in[1]));
    const TD c = tg::relu(tg::conv2d(in[2], in[3], TD()));
    return std::vector<TD>{tg::softmax(h, 1) * 2.0, tg::sum(tg::avg_pool2d(c, 2) * 0.5),
                           tg::log_softmax(tg::reshape(c, {3, 9}), 0)};
  };
  const auto r = tg::jvp<double>(f, x, t);
  const auto d = directional(f, x, t);
  REQUIRE(r.tangents.size() == 3);
  for (std::size_t j = 0; j < 3; ++j) {
    CAPTURE(j);
    CHECK(all_close(r.outputs[j].value(), f(x)[j].value(), 1e-14));
    CHECK(all_close(r.tangents[j].value(), d[j], 1e-7));
  }
}

TEST_CASE("forward and reverse mode agree on random graphs over every op family") {
  // <v, J t> from forward mode against <J^T v, t> from reverse mode, in double.
  double worst = 0;
  for (std::uint64_t seed = 1; seed <= 300; ++seed) {
    const fz::Graph graph = fz::generate(seed);
    Inputs x, t;
    for (std::size_t i = 0; i < graph.inputs.size(); ++i) {
      x.push_back(TD(graph.inputs[i], true));
      t.push_back(TD(random_array(tg::detail::shape_of(graph.inputs[i]), unsigned(seed * 31 + i))));
    }
    const auto f = [&](const Inputs& in) { return fz::run(graph, in); };
    const auto forward = tg::jvp<double>(f, x, t);
    tg::Tape tape;
    const TD y = f(x);
    const Arr v = random_array(tg::detail::shape_of(y.value()), unsigned(seed));
    const auto grads = tg::grad(y, x, v);
    double reverse = 0;
    for (std::size_t i = 0; i < x.size(); ++i) reverse += xt::sum(grads[i].value() * t[i].value())();
    const double fwd = xt::sum(v * forward.second.value())();
    const double error = std::abs(fwd - reverse) / (1 + std::abs(reverse));
    worst = std::max(worst, error);
    if (error > 1e-12) {
      INFO("graph seed ", seed, ": forward ", fwd, ", reverse ", reverse);
      CHECK(error <= 1e-12);
    }
  }
  MESSAGE("forward against reverse mode on 300 random graphs: worst relative difference ", worst);
}

TEST_CASE("jvp: zero tangents for outputs not derived from the primals, nothing on the caller's tape, bad input") {
  const TD x = leaf({3}, 970), t = leaf({3}, 971);
  tg::Tape tape;
  const TD before = x * 2.0;   // one entry on the caller's tape
  const std::size_t entries = tape.size();
  const auto r = tg::jvp<double>([](const Inputs& in) { return std::vector<TD>{tg::exp(in[0]), TD(Arr{1.0, 2.0})}; },
                                 {x}, {t});
  CHECK(tape.size() == entries);
  CHECK(all_close(r.tangents[0].value(), Arr(xt::exp(x.value()) * t.value()), 1e-14));
  CHECK(all_close(r.tangents[1].value(), Arr{0.0, 0.0}));
  CHECK_FALSE(r.outputs[0].requires_grad());
  // The identity: the tangent itself.
  CHECK(all_close(tg::jvp<double>([](const Inputs& in) { return in[0]; }, {x}, {t}).second.value(), t.value()));
  CHECK_THROWS_WITH_AS(tg::jvp<double>([](const Inputs& in) { return in[0]; }, {x}, {leaf({2}, 1)}),
                       "jvp: tangent 0 has shape (2) and its primal shape (3)", tg::ShapeError);
  CHECK_THROWS_WITH_AS(tg::jvp<double>([](const Inputs& in) { return in[0]; }, {x}, {}),
                       "jvp: got 0 tangents for 1 primals", tg::ValueError);
  (void)before;
}

namespace {
// A custom op with no JVP rule: y = x^3 with its VJP; forward mode derives the JVP from it.
TD cube(const TD& x) {
  return tg::record<double>("cube", {x}, Arr(x.value() * x.value() * x.value()), [](const tg::VjpArgs<double>& g) {
    return tg::Gradients<double>{g.grad * g.input(0) * g.input(0) * 3.0};
  });
}
}  // namespace

TEST_CASE("a custom op without a JVP rule gets forward mode from its VJP") {
  const TD x = leaf({4}, 972), t = leaf({4}, 973);
  const auto [y, ty] = tg::jvp<double>([](const Inputs& in) { return cube(in[0]); }, {x}, {t});
  (void)y;
  CHECK(all_close(ty.value(), Arr(3.0 * x.value() * x.value() * t.value()), 1e-13));
}

namespace {
// A custom op with its own JVP rule through the public record path: y = x^3, ty = 3 x^2 t.
// The rule is deliberately written differently from the VJP (t * x * x * 3 against g * 3x^2), and
// counted, to show it is the one forward mode runs.
int cube_rule_calls = 0;
TD cube_with_rule(const TD& x) {
  return tg::record<double>(
      "cube_with_rule", {x}, Arr(x.value() * x.value() * x.value()),
      [](const tg::VjpArgs<double>& g) { return tg::Gradients<double>{g.grad * g.input(0) * g.input(0) * 3.0}; },
      tg::Saved::inputs, [](const tg::JvpArgs<double>& j) {
        ++cube_rule_calls;
        return j.tangents[0] * j.inputs[0] * j.inputs[0] * 3.0;
      });
}
}  // namespace

TEST_CASE("a custom op's own JVP rule, through the public record path") {
  const TD x = leaf({4}, 974), t = leaf({4}, 975);
  cube_rule_calls = 0;
  const auto r = tg::jvp<double>([](const Inputs& in) { return tg::tanh(cube_with_rule(in[0])); }, {x}, {t});
  CHECK(cube_rule_calls == 1);
  const Arr y = x.value() * x.value() * x.value(), th = xt::tanh(y);
  CHECK(all_close(r.second.value(), Arr((1.0 - th * th) * 3.0 * x.value() * x.value() * t.value()), 1e-13));
  // Outside forward mode the rule is never built nor run.
  tg::Tape tape;
  const TD xx = leaf({4}, 976);
  tg::sum(cube_with_rule(xx)).backward();
  CHECK(cube_rule_calls == 1);
}

TEST_CASE("ops with a JVP rule run it: no tangent derived from a VJP through them") {
  const Inputs x{leaf({2, 3}, 977), leaf({3, 4}, 978), leaf({1, 2, 6, 6}, 979), leaf({3, 2, 3, 3}, 980), leaf({3}, 981)};
  const Inputs t{leaf({2, 3}, 982), leaf({3, 4}, 983), leaf({1, 2, 6, 6}, 984), leaf({3, 2, 3, 3}, 985), leaf({3}, 986)};
  auto ruled = [](const Inputs& in) {
    const TD m = tg::matmul(in[0], in[1]);                                      // matmul
    const TD e = tg::exp(m) + tg::log(tg::abs(m) + 1.0) * tg::tanh(m) - tg::sigmoid(m) / (tg::relu(m) + 2.0);
    const TD s = tg::sqrt(tg::pow(e, 2.0) + 1.0);
    const TD shaped = tg::transpose(tg::reshape(tg::broadcast_to(s, {2, 2, 4}), {4, 4}));
    const TD cut = tg::concat(Inputs{tg::slice(shaped, 0, 1, 3), tg::pad(shaped, {{1, 0}, {0, 0}}, 5.0)}, 0);
    const TD c = tg::avg_pool2d(tg::conv2d(in[2], in[3], in[4]), 2);             // conv2d, pooling
    return std::vector<TD>{tg::sum(cut, {0}), tg::sum(c) * 0.5, -tg::neg(1.0 / cut)};
  };
  const auto r = tg::jvp<double>(ruled, x, t);
  CHECK(r.derived_from_vjp == 0);
  // max has no rule yet: its tangent comes from its VJP, and says so.
  const auto m = tg::jvp<double>([](const Inputs& in) { return Inputs{tg::max(in[0])}; }, {x[0]}, {t[0]});
  CHECK(m.derived_from_vjp == 1);
}

namespace {
// y = x^2 with a right VJP and a wrong JVP rule (ty = x t, a factor 2 missing).
TD square_wrong_rule(const TD& x) {
  return tg::record<double>(
      "square_wrong_rule", {x}, Arr(x.value() * x.value()),
      [](const tg::VjpArgs<double>& g) { return tg::Gradients<double>{g.grad * g.input(0) * 2.0}; }, tg::Saved::inputs,
      [](const tg::JvpArgs<double>& j) { return j.tangents[0] * j.inputs[0]; });
}
}  // namespace

TEST_CASE("gradcheck checks forward mode too: against finite differences and against reverse mode") {
  tg::GradcheckOptions o;
  o.forward = true;
  const Inputs x{leaf({2, 3}, 990), leaf({3, 2}, 991)};
  const auto right = tg::gradcheck([](const Inputs& in) { return tg::tanh(tg::matmul(in[0], in[1])) * 2.0; }, x, o);
  INFO(right.str());
  CHECK(right.ok());
  std::size_t forward_checks = 0;
  for (const auto& c : right.comparisons)
    if (c.what.rfind("forward mode", 0) == 0) forward_checks += c.checked;
  CHECK(forward_checks == 2 * 2 * o.projections);
  // Same for a module's parameters.
  const TD w = leaf({3}, 992);
  CHECK(tg::gradcheck_parameters([&] { return tg::sum(tg::exp(w) * w); }, {{"w", w}}, o).ok());
  // A wrong JVP rule with a right VJP: only forward mode can see it.
  const TD z = leaf({4}, 993);
  const auto wrong = tg::gradcheck([](const Inputs& in) { return tg::sum(square_wrong_rule(in[0])); }, {z}, o);
  INFO(wrong.str());
  CHECK_FALSE(wrong.ok());
  for (const auto& c : wrong.comparisons) {
    CAPTURE(c.what);
    CHECK(c.ok() == (c.what.rfind("forward mode", 0) != 0));
  }
}
