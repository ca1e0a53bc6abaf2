// Forward mode: tangents through every op (tg::jvp), against finite differences and against
// reverse mode.
#include "every_op.hpp"
#include "helpers.hpp"

#include "fuzz/graphs.hpp"

#include <xtensor/xview.hpp>

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
  const TD x = leaf({3}, 970).detach(), t = leaf({3}, 971).detach();   // nothing the caller's tape records
  tg::Tape tape;
  const TD before = leaf({3}, 969) * 2.0;   // one entry on the caller's tape
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
  // Under a tape that records x, reverse mode would have to differentiate the derived tangent:
  // an error naming the op, not a silently wrong gradient.
  tg::Tape tape;
  const std::size_t entries = tape.size();
  CHECK_THROWS_WITH_AS(tg::jvp<double>([](const Inputs& in) { return cube(in[0] * 1.0); }, {x}, {t.detach()},
                                       tg::record_on_tape),
                       doctest::Contains("cube: reverse mode over forward mode (a jvp with tg::record_on_tape) "
                                "needs the op's own JVP rule"),
                       tg::UsageError);
  CHECK(tape.size() == entries + 2);   // the primal's copy and the product: cube's entry never appended
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
  // An op without a rule (a custom op) has its tangent derived from its VJP, and says so.
  const auto m = tg::jvp<double>([](const Inputs& in) { return Inputs{tg::exp(cube(in[0]))}; }, {x[0]}, {t[0]});
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

namespace {
double dot(const Inputs& a, const Inputs& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += xt::sum(a[i].value() * b[i].value())();
  return s;
}
}  // namespace

TEST_CASE("every public op has a JVP rule of its own, right in forward mode, forward over reverse and forward over forward") {
  // Per op, in double: forward mode derives no tangent from a VJP; <v, J t> from forward mode
  // equals <J^T v, t> from reverse mode to 1e-12; J t matches central differences; and forward
  // over reverse (H t of <f, v>, whose tangents run through the VJPs' own ops) derives none either
  // and equals reverse over reverse to 1e-12, as does forward over forward (the rules' own ops
  // differentiated by forward mode).
  unsigned seed = 2000;
  for (const OpCase<double>& c : every_op<double>()) {
    const std::string name = c.name;
    CAPTURE(name);
    Inputs x, t;
    for (const tg::Shape& s : c.shapes) {
      x.push_back(leaf(s, ++seed, c.lo, c.hi));
      t.push_back(leaf(s, ++seed));
    }
    const auto forward = tg::jvp<double>(
        [&c](const Inputs& in) { return Inputs{c.f(in)}; }, x, t);
    CHECK(forward.derived_from_vjp == 0);
    const Arr v = random_array(forward.outputs[0].shape(), ++seed);
    Inputs reverse;
    {
      tg::Tape tape;
      reverse = tg::grad(c.f(x), x, v);
    }
    const double fwd = xt::sum(v * forward.tangents[0].value())(), rev = dot(reverse, t);
    CHECK(std::abs(fwd - rev) <= 1e-12 * (1 + std::abs(rev)));
    const Arr fd = directional([&c](const Inputs& in) { return Inputs{c.f(in)}; }, x, t)[0];
    CHECK(all_close(forward.tangents[0].value(), fd, 1e-7 * (1 + xt::amax(xt::abs(fd))())));

    // Forward over reverse: the tangent of g(x) = J(x)^T v along t.
    const tg::Function<double> gradient = [&c, &v](const Inputs& in) {
      for (TD xi : in) xi.set_requires_grad(true);
      tg::Tape tape;
      return tg::grad(c.f(in), in, v, /*create_graph=*/true);
    };
    const auto second = tg::jvp<double>(gradient, x, t);
    CHECK(second.derived_from_vjp == 0);
    // Reverse over reverse: d/dx <g(x), w> for a random w, against <w, dg t> both ways.
    Inputs w;
    for (const tg::Shape& s : c.shapes) w.push_back(TD(random_array(s, ++seed)));
    double reverse_twice = 0;
    {
      tg::Tape tape;
      const Inputs g = tg::grad(c.f(x), x, v, true);
      TD inner;
      for (std::size_t i = 0; i < g.size(); ++i) {
        if (!g[i].requires_grad()) continue;   // linear in this input: no second derivative
        const TD term = tg::sum(g[i] * w[i]);
        inner = inner.defined() ? inner + term : term;
      }
      if (inner.defined()) reverse_twice = dot(tg::grad(inner, x), t);
    }
    const double forward_twice = dot(second.tangents, w);
    CHECK(std::abs(forward_twice - reverse_twice) <= 1e-12 * (1 + std::abs(reverse_twice)));

    // Forward over forward: <v, d2f[t, w]>, the jvp along w of the jvp along t, is w^T H t too.
    const auto along_t = [&c, &t](const Inputs& in) {
      return tg::jvp<double>([&c](const Inputs& z) { return Inputs{c.f(z)}; }, in, t).tangents;
    };
    const auto nested = tg::jvp<double>(along_t, x, w);
    const double forward_forward = xt::sum(v * nested.tangents[0].value())();
    CHECK(std::abs(forward_forward - reverse_twice) <= 1e-12 * (1 + std::abs(reverse_twice)));

    // A batch of three tangents at once (what jacfwd, jacrev and hessian carry): every rule takes
    // it (none runs seed by seed), and each seed's result is the single jvp's, in forward mode and
    // in forward over reverse.
    const std::size_t batch = 3;
    Inputs seeds;
    for (const tg::Shape& s : c.shapes) {
      tg::Shape batched = s;
      batched.insert(batched.begin(), batch);
      seeds.push_back(TD(random_array(batched, ++seed)));
    }
    const auto seed_of = [](const TD& t, std::size_t b) { return TD(Arr(xt::view(t.value(), b))); };
    for (const bool over_reverse : {false, true}) {
      CAPTURE(over_reverse);
      const tg::Function<double> g =
          over_reverse ? gradient : tg::Function<double>([&c](const Inputs& in) { return Inputs{c.f(in)}; });
      const auto all = tg::detail::batched_jvp<double>(g, x, seeds, batch);
      CHECK(all.derived_from_vjp == 0);
      CHECK(all.looped_over_batch == 0);
      for (std::size_t b = 0; b < batch; ++b) {
        Inputs one;
        for (const TD& t : seeds) one.push_back(seed_of(t, b));
        const auto single = tg::jvp<double>(g, x, one);
        for (std::size_t k = 0; k < single.tangents.size(); ++k)
          CHECK(all_close(seed_of(all.tangents[k], b).value(), single.tangents[k].value(),
                          1e-12 * (1 + xt::amax(xt::abs(single.tangents[k].value()))())));
      }
    }
  }
}

TEST_CASE("reverse over forward: a jvp with tg::record_on_tape is differentiated by reverse mode") {
  // s(x) = sum(w * tanh(A x) * exp(x)) with A a matrix: d/dx <grad s, v> = H v, by reverse mode
  // over the jvp, against forward over reverse (hvp) and central differences of the gradient.
  const TD x = leaf({4}, 1110), v = leaf({4}, 1111).detach(), w = leaf({4}, 1112).detach();
  const TD a = leaf({4, 4}, 1113).detach();
  const auto s = [w, a](const Inputs& in) {
    return tg::sum(w * tg::tanh(tg::matmul(a, tg::reshape(in[0], {4, 1}))) * tg::reshape(tg::exp(in[0]), {4, 1}));
  };
  const auto directional = [&](const TD& at) {
    tg::Tape tape;
    const TD xs = at.detach().set_requires_grad(true);
    const auto [y, ty] = tg::jvp<double>(s, {xs}, {v}, tg::record_on_tape);
    CHECK(y.requires_grad());
    CHECK(ty.requires_grad());
    CHECK(tape.size() > 0);   // recorded on the caller's tape
    return std::pair<double, Arr>{ty.item(), tg::grad(ty, {xs})[0].value()};
  };
  const auto [first, hv] = directional(x);
  CHECK(std::abs(first - tg::jvp<double>(s, {x.detach()}, {v}).second.item()) <= 1e-15);
  const Arr by_hvp = tg::hvp<double>(s, {x}, {v})[0].value();
  CHECK(all_close(hv, by_hvp, 1e-13));
  const auto gradient = [&](const Arr& at) {
    const TD xs(at, true);
    tg::Tape tape;
    return Arr(tg::grad(s({xs}), {xs})[0].value());
  };
  const double eps = 1e-5;
  const Arr fd = (gradient(x.value() + eps * v.value()) - gradient(x.value() - eps * v.value())) / (2 * eps);
  CHECK(all_close(hv, fd, 1e-8));

  // A primal that depends on another leaf through recorded ops, the same tensor given twice (two
  // tangents), and a tangent the tape records: y = p * q with p = q = exp(c), tangents (1, u):
  // ty = u p + p = (u + 1) exp(c); d ty / dc = (u + 1) exp(c), d ty / du = exp(c).
  const TD c(Arr{0.3, -0.7}, true), u(Arr{2.0, -1.0}, true);
  tg::Tape tape;
  const TD p = tg::exp(c);
  const auto [y, ty] = tg::jvp<double>([](const Inputs& in) { return in[0] * in[1]; }, {p, p},
                                      {TD(Arr{1.0, 1.0}), u}, tg::record_on_tape);
  CHECK(all_close(ty.value(), Arr((u.value() + 1.0) * xt::exp(c.value())), 1e-15));
  const auto g = tg::grad(tg::sum(ty), {c, u});
  CHECK(all_close(g[0].value(), Arr((u.value() + 1.0) * xt::exp(c.value())), 1e-15));
  CHECK(all_close(g[1].value(), Arr(xt::exp(c.value())), 1e-15));
  (void)y;

  // The same tensor twice, the second tangent undefined (zero); and f capturing its primal: the
  // tangent enters through the primal only, as without a tape (t * p, not 2 t * p).
  {
    const TD q = tg::exp(c);
    const auto [qy, qty] = tg::jvp<double>([](const Inputs& in) { return in[0] * in[1]; }, {q, q},
                                          {TD(Arr{1.0, 1.0}), TD()}, tg::record_on_tape);
    CHECK(all_close(qty.value(), Arr(xt::exp(c.value())), 1e-15));
    const auto [cy, cty] =
        tg::jvp<double>([q](const Inputs& in) { return in[0] * q; }, {q}, {TD(Arr{1.0, 1.0})}, tg::record_on_tape);
    CHECK(all_close(cty.value(), Arr(xt::exp(c.value())), 1e-15));
    (void)qy;
    (void)cy;
  }

  // Reverse over forward over forward: y = x^4 under a tape, two nested jvps (tangents 1) give
  // 12 x^2, whose gradient is 24 x.
  {
    const TD z(Arr{0.5, -1.5}, true), ones(Arr{1.0, 1.0});
    const auto first = [&](const Inputs& in) {
      return tg::jvp<double>([](const Inputs& w) { return tg::pow(w[0], 4.0); }, in, {ones}, tg::record_on_tape).second;
    };
    const TD second = tg::jvp<double>(first, {z}, {ones}, tg::record_on_tape).second;
    CHECK(all_close(second.value(), Arr(12.0 * z.value() * z.value()), 1e-12));
    CHECK(all_close(tg::grad(tg::sum(second), {z})[0].value(), Arr(24.0 * z.value()), 1e-12));
  }

  // A tensor f captures, the primal a constant: ty = d/dz sin(z k)|_{z=2} = k cos(2k), whose
  // derivative in k is cos(2k) - 2k sin(2k).
  const TD k(Arr{0.4}, true);
  const auto [sy, sty] = tg::jvp<double>([k](const Inputs& in) { return tg::sin(in[0] * k); }, {TD(Arr{2.0})},
                                        {TD(Arr{1.0})}, tg::record_on_tape);
  const double kv = 0.4;
  CHECK(std::abs(sty.item() - kv * std::cos(2 * kv)) <= 1e-15);
  CHECK(std::abs(tg::grad(sty, {k})[0].value()(0) - (std::cos(2 * kv) - 2 * kv * std::sin(2 * kv))) <= 1e-15);
  (void)sy;
}

TEST_CASE("forward over forward: a jvp inside a jvp, to third order") {
  // s(x) = sum(w * tanh(x) * exp(x)): the second directional derivative u^T H v by forward over
  // forward equals <u, H v> by forward over reverse (hvp) and central differences of the first.
  const TD x = leaf({5}, 1100), u = leaf({5}, 1101), v = leaf({5}, 1102), w = leaf({5}, 1103);
  const auto s = [w](const Inputs& in) { return tg::sum(w * tg::tanh(in[0]) * tg::exp(in[0])); };
  const auto directional = [&](const Inputs& in) { return tg::jvp<double>(s, in, {v}).second; };
  const auto [first, second] = tg::jvp<double>(directional, {x}, {u});
  CHECK(std::abs(first.value()() - tg::jvp<double>(s, {x}, {v}).second.value()()) <= 1e-15);
  const double hvp = xt::sum(tg::hvp<double>(s, {x}, {v})[0].value() * u.value())();
  CHECK(std::abs(second.value()() - hvp) <= 1e-12 * (1 + std::abs(hvp)));
  const double eps = 1e-6;
  const double fd = (directional({TD(Arr(x.value() + eps * u.value()))}).value()() -
                     directional({TD(Arr(x.value() - eps * u.value()))}).value()()) / (2 * eps);
  CHECK(std::abs(second.value()() - fd) <= 1e-7 * (1 + std::abs(fd)));

  // Third order of y = x^4 (pow) through three nested jvps: 24 x (all tangents 1).
  const TD a(Arr{0.5, -1.5}), ones(Arr{1.0, 1.0});
  const auto d1 = [&](const Inputs& in) {
    return tg::jvp<double>([](const Inputs& z) { return tg::pow(z[0], 4.0); }, in, {ones}).second;
  };
  const auto d2 = [&](const Inputs& in) { return tg::jvp<double>(d1, in, {ones}).second; };
  const auto [d2a, d3a] = tg::jvp<double>(d2, {a}, {ones});
  CHECK(all_close(d2a.value(), Arr(12.0 * a.value() * a.value()), 1e-12));
  CHECK(all_close(d3a.value(), Arr(24.0 * a.value()), 1e-12));

  // A custom op without a rule: fine in one level, a clear error under two.
  CHECK(all_close(tg::jvp<double>([](const Inputs& in) { return cube(in[0]); }, {a}, {ones}).second.value(),
                  Arr(3.0 * a.value() * a.value()), 1e-13));
  const auto nested = [&](const Inputs& in) {
    return tg::jvp<double>([](const Inputs& z) { return cube(z[0]); }, in, {ones}).second;
  };
  CHECK_THROWS_WITH_AS(tg::jvp<double>(nested, {a}, {ones}),
                       doctest::Contains("cube: forward mode over forward mode (a jvp inside a jvp) needs the op's own JVP rule"),
                       tg::UsageError);
}

TEST_CASE("a batch of tangents through custom ops: a rule that takes the batch, one that does not, none") {
  const TD x = leaf({4}, 1200);
  const TD seeds(random_array({2, 4}, 1201));
  const Arr x2 = x.value() * x.value();
  const Arr expected = 3.0 * seeds.value() * x2;   // (2, 4): 3 x^2 t, per seed
  // No rule: derived from the VJP, seed by seed.
  const auto derived = tg::detail::batched_jvp<double>([](const Inputs& in) { return Inputs{cube(in[0])}; }, {x}, {seeds}, 2);
  CHECK(derived.derived_from_vjp == 1);
  CHECK(derived.looped_over_batch == 1);
  CHECK(all_close(derived.tangents[0].value(), expected, 1e-13));
  // A rule that takes one seed: called once per seed.
  cube_rule_calls = 0;
  const auto looped =
      tg::detail::batched_jvp<double>([](const Inputs& in) { return Inputs{cube_with_rule(in[0])}; }, {x}, {seeds}, 2);
  CHECK(cube_rule_calls == 2);
  CHECK(looped.looped_over_batch == 1);
  CHECK(all_close(looped.tangents[0].value(), expected, 1e-13));
  // A rule given through tg::takes_batch: once for the batch (its tangent is (2, 4); x broadcasts).
  int batch_rule_calls = 0;
  const auto cube_batched = [&batch_rule_calls](const TD& v) {
    return tg::record<double>(
        "cube_batched", {v}, Arr(v.value() * v.value() * v.value()),
        [](const tg::VjpArgs<double>& g) { return tg::Gradients<double>{g.grad * g.input(0) * g.input(0) * 3.0}; },
        tg::Saved::inputs, tg::takes_batch([&batch_rule_calls](const tg::JvpArgs<double>& j) {
          ++batch_rule_calls;
          return j.tangents[0] * j.inputs[0] * j.inputs[0] * 3.0;
        }));
  };
  const auto batched =
      tg::detail::batched_jvp<double>([&](const Inputs& in) { return Inputs{cube_batched(in[0])}; }, {x}, {seeds}, 2);
  CHECK(batch_rule_calls == 1);
  CHECK(batched.looped_over_batch == 0);
  CHECK(all_close(batched.tangents[0].value(), expected, 1e-13));
  // jacfwd and jacrev through all three agree with the closed form diag(3 x^2).
  const Arr jac = xt::diag(Arr(3.0 * x2));
  for (const auto& f : {tg::Function<double>([](const Inputs& in) { return Inputs{cube(in[0])}; }),
                        tg::Function<double>([](const Inputs& in) { return Inputs{cube_with_rule(in[0])}; }),
                        tg::Function<double>([&](const Inputs& in) { return Inputs{cube_batched(in[0])}; })}) {
    CHECK(all_close(tg::jacfwd<double>(f, {x})[0][0].value(), jac, 1e-13));
    CHECK(all_close(tg::jacrev<double>(f, {x})[0][0].value(), jac, 1e-13));
  }
  // A batch of the wrong shape names both.
  CHECK_THROWS_WITH_AS(tg::detail::batched_jvp<double>([](const Inputs& in) { return in; }, {x}, {TD(Arr{1.0})}, 2),
                       "jvp: tangent 0 has shape (1) and should be (2, 4) (a batch of 2 of its primal's shape)",
                       tg::ShapeError);
}
