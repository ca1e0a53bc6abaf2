// Function transforms: vjp, jacrev, jacfwd, hvp, hessian and grad of several outputs, against
// finite differences in double and closed forms.
#include "helpers.hpp"

#include <xtensor/xview.hpp>

namespace {
// Two inputs, two outputs: y0 = tanh(x0 @ x1) (2 x 4), y1 = sum(x0^2) * 3 (a scalar), and a
// constant output not derived from the inputs.
std::vector<TD> two_by_two(const Inputs& in) {
  return {tg::tanh(tg::matmul(in[0], in[1])), tg::sum(in[0] * in[0]) * 3.0, TD(Arr{1.0, 2.0})};
}

// The Jacobian block d y_j / d x_i by central differences, of shape y_j.shape + x_i.shape.
Arr numeric_block(const std::function<std::vector<TD>(const Inputs&)>& f, const Inputs& x, std::size_t j, std::size_t i) {
  tg::NoGrad no_grad;
  const Arr y = f(x)[j].value();
  tg::Shape shape(y.shape().begin(), y.shape().end());
  const tg::Shape input_shape = x[i].shape();
  shape.insert(shape.end(), input_shape.begin(), input_shape.end());
  Arr block = xt::zeros<double>(shape);
  const std::size_t n = x[i].size();
  for (std::size_t e = 0; e < n; ++e) {
    Inputs plus = x, minus = x;
    Arr p = x[i].value(), m = x[i].value();
    p.data()[e] += 1e-6;
    m.data()[e] -= 1e-6;
    plus[i] = TD(p);
    minus[i] = TD(m);
    const Arr d = (f(plus)[j].value() - f(minus)[j].value()) / 2e-6;
    for (std::size_t o = 0; o < d.size(); ++o) block.data()[o * n + e] = d.data()[o];
  }
  return block;
}
}  // namespace

TEST_CASE("jacrev and jacfwd give the same full Jacobians as finite differences") {
  const Inputs x{leaf({2, 3}, 980), leaf({3, 4}, 981)};
  const auto rev = tg::jacrev<double>(two_by_two, x);
  const auto fwd = tg::jacfwd<double>(two_by_two, x);
  REQUIRE(rev.size() == 3);
  REQUIRE(fwd.size() == 3);
  for (std::size_t j = 0; j < 3; ++j)
    for (std::size_t i = 0; i < 2; ++i) {
      CAPTURE(j);
      CAPTURE(i);
      const Arr numeric = numeric_block(two_by_two, x, j, i);
      CHECK(all_close(rev[j][i].value(), numeric, 1e-7));
      CHECK(all_close(fwd[j][i].value(), rev[j][i].value(), 1e-12));
    }
  CHECK(rev[0][1].shape() == tg::Shape{2, 4, 3, 4});
  CHECK(all_close(rev[2][0].value(), Arr(xt::zeros<double>({2, 2, 3}))));   // the constant output
}

TEST_CASE("hvp and hessian: forward over reverse, against a closed form and finite differences") {
  // f(x, w) = sum(w * x^3) + sum(x * w): d2f/dx2 = diag(6 w x), d2f/dxdw = diag(3 x^2 + 1), d2f/dw2 = 0.
  const Inputs p{leaf({4}, 982), leaf({4}, 983)};
  auto f = [](const Inputs& in) { return tg::sum(in[1] * in[0] * in[0] * in[0]) + tg::sum(in[0] * in[1]); };
  const Arr x = p[0].value(), w = p[1].value();
  const auto h = tg::hessian<double>(f, p);
  REQUIRE(h.size() == 2);
  Arr xx = xt::zeros<double>({4, 4}), xw = xt::zeros<double>({4, 4});
  for (std::size_t i = 0; i < 4; ++i) {
    xx(i, i) = 6 * w(i) * x(i);
    xw(i, i) = 3 * x(i) * x(i) + 1;
  }
  CHECK(all_close(h[0][0].value(), xx, 1e-12));
  CHECK(all_close(h[0][1].value(), xw, 1e-12));
  CHECK(all_close(h[1][0].value(), xw, 1e-12));
  CHECK(all_close(h[1][1].value(), Arr(xt::zeros<double>({4, 4})), 1e-12));
  // hvp of a function whose Hessian is full: softmax cross-entropy of x @ W, against finite
  // differences of its gradient.
  const Inputs q{leaf({3, 4}, 984), leaf({4, 5}, 985)};
  auto loss = [](const Inputs& in) { return tg::cross_entropy(tg::matmul(in[0], in[1]), {1, 4, 0}); };
  const Inputs v{leaf({3, 4}, 986), leaf({4, 5}, 987)};
  const auto hv = tg::hvp<double>(loss, q, v);
  auto gradient_at = [&](double s) {
    tg::Tape tape;
    Inputs moved{TD(Arr(q[0].value() + s * v[0].value()), true), TD(Arr(q[1].value() + s * v[1].value()), true)};
    return tg::grad(loss(moved), moved);
  };
  const auto gp = gradient_at(1e-6), gm = gradient_at(-1e-6);
  for (std::size_t i = 0; i < 2; ++i) CHECK(all_close(hv[i].value(), Arr((gp[i].value() - gm[i].value()) / 2e-6), 1e-7));
  CHECK_THROWS_WITH_AS(tg::hvp<double>([](const Inputs& in) { return in[0] * 2.0; }, {leaf({3}, 1)}, {leaf({3}, 2)}),
                       "hvp: the function must return a scalar, got shape (3)", tg::ShapeError);
  // A scalar not derived from the inputs (a constant), or one of the inputs itself: zeros.
  const TD s = leaf({}, 3), u = leaf({}, 4);
  CHECK(all_close(tg::hvp<double>([](const Inputs&) { return TD(Arr(2.0)); }, {s}, {u})[0].value(), Arr(0.0)));
  CHECK(all_close(tg::hvp<double>([](const Inputs& in) { return in[0]; }, {s}, {u})[0].value(), Arr(0.0)));
  CHECK(all_close(tg::hessian<double>([](const Inputs& in) { return in[0]; }, {s})[0][0].value(), Arr(0.0)));
}

TEST_CASE("vjp's pullback, called twice, and grad of several outputs with their seeds") {
  const Inputs x{leaf({2, 3}, 988), leaf({3, 4}, 989)};
  const auto r = tg::vjp<double>(two_by_two, x);
  REQUIRE(r.outputs.size() == 3);
  const auto jac = tg::jacrev<double>(two_by_two, x);
  for (unsigned s : {990u, 991u}) {
    const std::vector<Arr> c{random_array({2, 4}, s), Arr(0.7), random_array({2}, s + 1)};
    const auto g = r.pullback(c);
    // J^T c from the Jacobians: sum over outputs of c_j . J[j][i].
    for (std::size_t i = 0; i < 2; ++i) {
      Arr expected = xt::zeros<double>(x[i].value().shape());
      for (std::size_t j = 0; j < 3; ++j) {
        const Arr& J = jac[j][i].value();
        const std::size_t n = x[i].size();
        for (std::size_t o = 0; o < c[j].size(); ++o)
          for (std::size_t e = 0; e < n; ++e) expected.data()[e] += c[j].data()[o] * J.data()[o * n + e];
      }
      CHECK(all_close(g[i].value(), expected, 1e-12));
    }
  }
  // grad of several outputs at once equals the sum of each output's own.
  tg::Tape tape;
  const auto ys = two_by_two(x);
  const Arr s0 = random_array({2, 4}, 992);
  const auto both = tg::grad<double>({ys[0], ys[1]}, x, {s0, Arr(2.0)});
  const auto first = tg::grad(ys[0], x, s0), second = tg::grad(ys[1], x, Arr(2.0));
  for (std::size_t i = 0; i < 2; ++i) CHECK(all_close(both[i].value(), Arr(first[i].value() + second[i].value()), 1e-12));
  CHECK_THROWS_WITH_AS(tg::grad<double>(std::vector<TD>{ys[0]}, x, std::vector<Arr>{Arr(1.0)}),
                       "grad: seed 0 has shape () and output 0 shape (2, 4)", tg::ShapeError);
}

TEST_CASE("jacfwd, jacrev and hessian over more seeds than one batch holds") {
  // 600 inputs and outputs: more unit seeds than fit in one batch (2^18 elements of tangents),
  // so each transform runs two; against closed forms.
  const std::size_t n = 600;
  const TD x = leaf({n}, 1300);
  const Arr t = xt::tanh(x.value()), slope = 1.0 - t * t;
  const double total = xt::sum(t)();
  // f(x) = tanh(x) * sum(tanh(x)):  J = diag(slope) total + t slope^T
  const auto f = [](const Inputs& in) { return Inputs{tg::tanh(in[0]) * tg::sum(tg::tanh(in[0]))}; };
  Arr jac = xt::zeros<double>({n, n});
  for (std::size_t o = 0; o < n; ++o)
    for (std::size_t e = 0; e < n; ++e) jac(o, e) = (o == e ? slope(o) * total : 0.0) + t(o) * slope(e);
  CHECK(all_close(tg::jacfwd<double>(f, {x})[0][0].value(), jac, 1e-12));
  CHECK(all_close(tg::jacrev<double>(f, {x})[0][0].value(), jac, 1e-12));
  // s(x) = sum(tanh(x))^2:  H = 2 slope slope^T + 2 total diag(-2 t slope)
  const auto s = [](const Inputs& in) { return tg::pow(tg::sum(tg::tanh(in[0])), 2.0); };
  Arr h = xt::zeros<double>({n, n});
  for (std::size_t o = 0; o < n; ++o)
    for (std::size_t e = 0; e < n; ++e) h(o, e) = 2 * slope(o) * slope(e) + (o == e ? -4 * total * t(o) * slope(o) : 0.0);
  CHECK(all_close(tg::hessian<double>(s, {x})[0][0].value(), h, 1e-11));
}

TEST_CASE("the transforms record nothing on the caller's tape") {
  // (tg::jvp with tg::record_on_tape does: reverse over forward, in test_forward.)
  const TD x = leaf({3}, 1400), v = leaf({3}, 1401);
  tg::Tape tape;
  const TD before = x * 2.0;   // one entry on the caller's tape
  const std::size_t entries = tape.size();
  const tg::Function<double> f = [](const Inputs& in) { return Inputs{tg::exp(in[0]) * in[0]}; };
  const auto s = [](const Inputs& in) { return tg::sum(tg::exp(in[0]) * in[0]); };
  tg::jacrev<double>(f, {x});
  tg::jacfwd<double>(f, {x});
  tg::hvp<double>(s, {x}, {v});
  tg::hessian<double>(s, {x});
  tg::vjp<double>(f, {x}).pullback({Arr(v.value())});
  tg::jvp<double>(f, {x}, {v});
  CHECK(tape.size() == entries);
  (void)before;
}

TEST_CASE("batches of tangents inside batches of tangents through the index ops and max_pool2d") {
  // Second directional derivatives: an outer batch of 3 seeds over an inner batch of 2, so that
  // each selection op's rule runs on a batch inside a batch, against nested jvp seed by seed.
  const std::vector<std::function<TD(const TD&)>> fs = {
      [](const TD& x) { return tg::index_select(x * x * x, 1, {2, 0, 2}); },
      [](const TD& x) { return tg::take_along_axis(x * x * x, tg::Index{{1, 1, 0}}, 1); },
      [](const TD& x) { return tg::max_pool2d(tg::reshape(x * x * x, {1, 1, 2, 3}), 2, 1); },
  };
  const Arr inner_seeds = random_array({2, 2, 3}, 3960), outer_seeds = random_array({3, 2, 3}, 3961);
  for (std::size_t i = 0; i < fs.size(); ++i) {
    CAPTURE(i);
    const auto& f = fs[i];
    const Inputs x{leaf({2, 3}, 3950 + unsigned(i))};
    const auto inner = [&f, &inner_seeds](const Inputs& in) {
      return Inputs{tg::detail::batched_jvp<double>([&f](const Inputs& v) { return Inputs{f(v[0])}; }, in,
                                                    {TD(inner_seeds)}, 2).tangents[0]};
    };
    const TD both = tg::detail::batched_jvp<double>(inner, x, {TD(outer_seeds)}, 3).tangents[0];
    REQUIRE(both.shape()[0] == 3);
    REQUIRE(both.shape()[1] == 2);
    for (std::size_t a = 0; a < 3; ++a)
      for (std::size_t b = 0; b < 2; ++b) {
        const TD tb(Arr(xt::view(inner_seeds, b))), ta(Arr(xt::view(outer_seeds, a)));
        const auto once = [&f, &tb](const Inputs& in) {
          return Inputs{tg::jvp<double>([&f](const Inputs& v) { return Inputs{f(v[0])}; }, in, {tb}).tangents[0]};
        };
        const Arr expected = tg::jvp<double>(once, x, {ta}).tangents[0].value();
        CHECK(all_close(Arr(xt::view(both.value(), a, b)), expected, 1e-12));
      }
  }
}
