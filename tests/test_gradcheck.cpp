// gradcheck itself: it passes on correct gradients and fails, with a useful report, on wrong ones.
#include "helpers.hpp"

namespace {

// y = tanh(a) * b with a VJP that can be broken in chosen ways.
enum class Bug { none, sign_flip, dropped_term, transposed };

TD tanh_times(const TD& a, const TD& b, Bug bug) {
  const Arr t = xt::tanh(a.value());
  return tg::record<double>("tanh_times", {a, b}, Arr(t * b.value()), [a, b, t, bug](const tg::VjpArgs<double>& g) {
    const TD dt(Arr(1.0 - t * t));
    TD da = g.grad * b * dt;   // d/da = b (1 - tanh^2 a)
    TD db = g.grad * TD(t);    // d/db = tanh a
    if (bug == Bug::sign_flip) da = -da;
    if (bug == Bug::dropped_term) da = g.grad * b;   // the (1 - tanh^2) factor dropped
    if (bug == Bug::transposed) db = tg::reshape(tg::transpose(db), b.shape());
    return std::vector<TD>{da, db};
  });
}

tg::GradcheckReport check(Bug bug, tg::GradcheckOptions o = {}) {
  const TD a = leaf({2, 3}, 200), b = leaf({2, 3}, 201);
  return tg::gradcheck([bug](const Inputs& in) { return tg::sum(tanh_times(in[0], in[1], bug) * 1.5); },
                       {a, b}, o);
}

}  // namespace

TEST_CASE("gradcheck passes on a correct custom gradient") {
  const auto report = check(Bug::none);
  INFO(report.str());
  CHECK(report.ok());
  CHECK(report.comparisons.size() == 2);
  CHECK(report.str().find("gradcheck passed") == 0);
}

TEST_CASE("gradcheck fails on deliberately wrong gradients and names the culprit") {
  for (Bug bug : {Bug::sign_flip, Bug::dropped_term, Bug::transposed}) {
    for (auto mode : {tg::GradcheckOptions::Mode::full, tg::GradcheckOptions::Mode::projections}) {
      tg::GradcheckOptions o;
      o.mode = mode;
      o.names = {"a", "b"};
      const auto report = check(bug, o);
      const std::string text = report.str();
      INFO(text);
      CHECK_FALSE(report.ok());
      CHECK(text.find("gradcheck FAILED") == 0);
      // The broken input is the one reported failing; the other passes.
      const std::string culprit = bug == Bug::transposed ? "'b'" : "'a'";
      const std::string innocent = bug == Bug::transposed ? "'a'" : "'b'";
      for (const auto& c : report.comparisons) {
        CHECK(c.ok() == (c.input == innocent));
        if (!c.ok()) {
          CHECK(c.input == culprit);
          CHECK(!c.worst.empty());
          CHECK(c.worst.front().abs_error > 1e-3);
        }
      }
      if (mode == tg::GradcheckOptions::Mode::full) {
        // A worst-element table with multi-indices and both values.
        CHECK(text.find("index") != std::string::npos);
        CHECK(text.find("numeric") != std::string::npos);
        CHECK(text.find("(1, ") != std::string::npos);
      } else {
        CHECK(text.find("projection") != std::string::npos);
      }
    }
  }
}

TEST_CASE("gradcheck reports the exact element: a sign flip in one element") {
  // f(x) = sum(x^2) with the VJP wrong at element (1, 0) only.
  const TD x = leaf({2, 2}, 202);
  auto f = [](const Inputs& in) {
    const TD& v = in[0];
    return tg::sum(tg::record<double>("square", {v}, Arr(v.value() * v.value()), [v](const tg::VjpArgs<double>& g) {
      Arr d = 2.0 * v.value();
      d(1, 0) = -d(1, 0);
      return std::vector<TD>{g.grad * TD(d)};
    }));
  };
  const auto report = tg::gradcheck(f, {x});
  INFO(report.str());
  REQUIRE_FALSE(report.ok());
  REQUIRE(report.comparisons[0].worst.size() == 1);
  const auto& e = report.comparisons[0].worst[0];
  CHECK(e.index == "(1, 0)");
  CHECK(e.analytic == doctest::Approx(-2 * x.value()(1, 0)).epsilon(1e-13));
  CHECK(e.numeric == doctest::Approx(2 * x.value()(1, 0)).epsilon(1e-6));
  CHECK(e.abs_error == doctest::Approx(4 * std::abs(x.value()(1, 0))).epsilon(1e-6));
}

namespace {
// y = exp(x) * w with the VJP for x scaled by `factor` at element 2 only.
TD exp_times(const TD& x, const TD& w, double factor) {
  const Arr e = xt::exp(x.value());
  return tg::record<double>("exp_times", {x, w}, Arr(e * w.value()), [e, w, factor](const tg::VjpArgs<double>& g) {
    Arr d = e * w.value();
    d(2) *= factor;
    return std::vector<TD>{g.grad * TD(d), g.grad * TD(e)};
  });
}
}  // namespace

TEST_CASE("Richardson differences: error O(eps^4), and the tests' strict check catches a 0.1 % error") {
  // f(x) = sum(exp(x) * w): each difference's error against the closed form exp(x) * w.
  const TD x = leaf({5}, 209), w = leaf({5}, 210, 0.5, 2.0);
  const Arr exact = xt::exp(x.value()) * w.value();
  auto max_error = [&](bool richardson) {
    tg::GradcheckOptions o;
    o.eps = 1e-3;
    o.richardson = richardson;
    o.mode = tg::GradcheckOptions::Mode::full;
    o.atol = o.rtol = -1;   // every element fails, so each is listed with its numeric value
    o.localize = false;
    const auto r = tg::gradcheck([](const Inputs& in) { return tg::sum(exp_times(in[0], in[1], 1.0)); }, {x, w}, o);
    double worst = 0;
    REQUIRE(r.comparisons[0].worst.size() == 5);
    for (const auto& e : r.comparisons[0].worst) {
      const std::size_t i = std::size_t(e.index[1] - '0');
      worst = std::max(worst, std::abs(e.numeric - exact(i)));
    }
    return worst;
  };
  const double central = max_error(false), richardson = max_error(true);
  MESSAGE("difference errors at eps 1e-3: central ", central, ", Richardson ", richardson);
  CHECK(central > 1e-8);       // eps^2 / 6 times the third derivative: ~1e-7 here
  CHECK(richardson < 1e-11);   // eps^4 / 480 times the fifth: ~1e-15, plus rounding
  // A 0.1 % error in one element of the VJP: the strict options fail it, naming the element;
  // gradcheck's defaults (rtol 1e-3, as PyTorch's) let it through.
  auto f = [](double factor) {
    return [factor](const Inputs& in) { return tg::sum(exp_times(in[0], in[1], factor)); };
  };
  CHECK(tg::gradcheck(f(1.0), {x, w}, strict()).ok());
  const auto wrong = tg::gradcheck(f(1.001), {x, w}, strict());
  INFO(wrong.str());
  REQUIRE_FALSE(wrong.ok());
  REQUIRE(wrong.comparisons[0].worst.size() == 1);
  CHECK(wrong.comparisons[0].worst[0].index == "(2)");
  CHECK(wrong.comparisons[1].ok());
  CHECK(tg::gradcheck(f(1.001), {x, w}).ok());
  // And on random projections (what large inputs get).
  tg::GradcheckOptions projections = strict();
  projections.mode = tg::GradcheckOptions::Mode::projections;
  CHECK_FALSE(tg::gradcheck(f(1.001), {x, w}, projections).ok());
  CHECK(tg::gradcheck(f(1.0), {x, w}, projections).ok());
}

TEST_CASE("gradcheck: full Jacobian of a non-scalar output, and projections for large inputs") {
  check_gradients([](const Inputs& in) { return tg::matmul(in[0], tg::tanh(in[1])); }, {leaf({3, 4}, 203), leaf({4, 5}, 204)});
  tg::GradcheckOptions o;
  o.full_limit = 10;   // forces projections
  const auto report = tg::gradcheck([](const Inputs& in) { return tg::tanh(tg::matmul(in[0], in[1])); },
                                    {leaf({30, 40}, 205), leaf({40, 20}, 206)}, o);
  INFO(report.str());
  CHECK(report.ok());
  CHECK(report.summary.find("random projections") == 0);
  CHECK(report.comparisons[0].checked == o.projections);
  // Inputs without requires_grad are held constant; at least one must require grad.
  const TD constant(random_array({4}, 207));
  const auto partial = tg::gradcheck([](const Inputs& in) { return tg::sum(in[0] * in[1]); }, {leaf({4}, 208), constant});
  CHECK(partial.comparisons.size() == 1);
  CHECK_THROWS_AS(tg::gradcheck([](const Inputs& in) { return tg::sum(in[0]); }, {constant}), tg::ValueError);
}

TEST_CASE("three-way gradcheck: hand-written vs autodiff vs finite differences") {
  // f(x, w) = sum(sigmoid(x w)); hand gradient: dx = s' w^T, dw = x^T s'
  const TD x = leaf({3, 4}, 209), w = leaf({4, 2}, 210);
  auto f = [](const Inputs& in) { return tg::sum(tg::sigmoid(tg::matmul(in[0], in[1]))); };
  auto hand = [](const Inputs& in, const Arr& seed, bool wrong) {
    const Arr& xv = in[0].value();
    const Arr& wv = in[1].value();
    Arr z = xt::zeros<double>({3, 2});
    for (std::size_t i = 0; i < 3; ++i)
      for (std::size_t j = 0; j < 2; ++j)
        for (std::size_t k = 0; k < 4; ++k) z(i, j) += xv(i, k) * wv(k, j);
    const Arr s = 1.0 / (1.0 + xt::exp(-z));
    const Arr ds = s * (1.0 - s) * seed();
    Arr dx = xt::zeros<double>({3, 4}), dw = xt::zeros<double>({4, 2});
    for (std::size_t i = 0; i < 3; ++i)
      for (std::size_t j = 0; j < 2; ++j)
        for (std::size_t k = 0; k < 4; ++k) {
          dx(i, k) += ds(i, j) * wv(k, j);
          dw(k, j) += xv(i, k) * ds(i, j);
        }
    if (wrong) dw *= 2.0;   // a hand derivation off by a factor 2
    return std::vector<Arr>{dx, dw};
  };
  const auto good = tg::gradcheck(f, {x, w}, [&](const Inputs& in, const Arr& s) { return hand(in, s, false); });
  INFO(good.str());
  CHECK(good.ok());
  CHECK(good.comparisons.size() == 6);   // 3 comparisons x 2 inputs
  const auto bad = tg::gradcheck(f, {x, w}, [&](const Inputs& in, const Arr& s) { return hand(in, s, true); });
  INFO(bad.str());
  CHECK_FALSE(bad.ok());
  for (const auto& c : bad.comparisons) {
    const bool hand_on_w = c.input == "input 1" && c.what.find("hand-written") == 0;
    CHECK(c.ok() == !hand_on_w);   // the autodiff still agrees with finite differences
  }
  CHECK(bad.str().find("hand-written vs finite differences") != std::string::npos);
}

TEST_CASE("numeric_gradient: central differences of a function of a tensor, restored after") {
  TD x(Arr{0.5, -1.0, 2.0}, true);
  const Arr g = tg::numeric_gradient([&] { tg::NoGrad ng; return tg::sum(x * x * x).item(); }, x);
  CHECK(all_close(g, Arr(3.0 * x.value() * x.value()), 1e-8));
  CHECK(all_close(x.value(), Arr{0.5, -1.0, 2.0}, 0.0));
  int calls = 0;
  CHECK_THROWS(tg::numeric_gradient([&]() -> double { if (++calls == 2) throw std::runtime_error("boom"); return 0.0; }, x));
  CHECK(all_close(x.value(), Arr{0.5, -1.0, 2.0}, 0.0));   // restored after the throw
}

namespace {
// y = x^2 with a VJP that reads x detached: its first derivative is right, its second is not
// (the VJP's own derivative misses d(2x)/dx).  dx = grad * 2 x (x detached)
TD square_detached(const TD& x) {
  return tg::record<double>("square_detached", {x}, Arr(x.value() * x.value()), [](const tg::VjpArgs<double>& g) {
    return tg::Gradients<double>{g.grad * g.input(0).detach() * 2.0};
  });
}
}  // namespace

TEST_CASE("gradgradcheck checks second derivatives: a VJP that is right but not differentiable again fails") {
  const TD x = leaf({2, 3}, 940);
  auto right = [](const Inputs& in) { return tg::tanh(in[0] * in[0]) * 3.0; };
  const auto ok = tg::gradgradcheck(right, {x});
  INFO(ok.str());
  CHECK(ok.ok());
  CHECK(ok.summary.rfind("second derivatives", 0) == 0);
  auto detached = [](const Inputs& in) { return tg::tanh(square_detached(in[0])); };
  CHECK(tg::gradcheck(detached, {x}).ok());   // first derivatives: right
  const auto second = tg::gradgradcheck(detached, {x});
  INFO(second.str());
  CHECK_FALSE(second.ok());
  CHECK_THROWS_WITH_AS(tg::gradgradcheck(right, {TD(Arr{1.0})}),
                       "gradgradcheck: no input requires grad: mark the inputs to check with requires_grad",
                       tg::ValueError);
}

TEST_CASE("the Taylor test: slope 2 for a right gradient, 1 for a wrong one") {
  const TD x = leaf({3, 2}, 941, 0.5, 1.5);
  tg::GradcheckOptions o;
  o.taylor = true;
  auto f = [](const Inputs& in) { return tg::sum(tg::log(in[0]) * in[0]); };
  const auto report = tg::gradcheck(f, {x}, [](const Inputs& in, const Arr& s) {
    return std::vector<Arr>{Arr(s() * xt::log(in[0].value()))};   // the "+ 1" of d(x log x)/dx missing
  }, o);
  INFO(report.str());
  REQUIRE(report.taylor.size() == 2);
  CHECK(report.taylor[0].what == "autodiff");
  CHECK(report.taylor[0].slope == doctest::Approx(2.0).epsilon(0.05));
  CHECK(report.taylor[1].what == "hand-written");
  CHECK(report.taylor[1].slope == doctest::Approx(1.0).epsilon(0.05));
  CHECK(report.taylor[0].residuals.size() == 8);
  CHECK(report.taylor[0].str().find("input 0, autodiff: Taylor test slope 2.0") == 0);
  CHECK(report.taylor[0].str().find(": right (2 expected)") != std::string::npos);
  CHECK(report.taylor[1].str().find(": wrong (1: the gradient misses a first-order term)") != std::string::npos);
  CHECK(report.str().find(report.taylor[1].str()) != std::string::npos);
  // A function linear along the direction, with its right gradient: nothing above rounding.
  o.taylor = true;
  const auto linear = tg::gradcheck([](const Inputs& in) { return tg::sum(in[0] * 2.0); }, {x}, o);
  REQUIRE(linear.taylor.size() == 1);
  CHECK(std::isnan(linear.taylor[0].slope));
}
