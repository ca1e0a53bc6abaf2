#include "helpers.hpp"

namespace {
// f(p) = 1/2 sum(a * p^2) with gradient a * p: one step from p0 has a closed form.
struct Quadratic {
  Arr a{1.0, 2.0, 0.5}, p0{1.0, -2.0, 3.0};
  TD p{p0, true};
  void gradient() {
    tg::Tape tape;
    p.zero_grad();
    tg::sum(TD(a) * p * p * 0.5).backward();
  }
};
}  // namespace

TEST_CASE("SGD: one step on a quadratic equals the closed-form update") {
  Quadratic q;
  tg::SGD<double> sgd({q.p}, 0.1);
  q.gradient();
  sgd.step();
  CHECK(all_close(q.p.value(), Arr(q.p0 - 0.1 * q.a * q.p0), 1e-15));
}

TEST_CASE("SGD with momentum, Nesterov and weight decay against hand-computed steps") {
  for (bool nesterov : {false, true}) {
    Quadratic q;
    const double lr = 0.1, mu = 0.9, wd = 0.01;
    tg::SGD<double> sgd({q.p}, lr, mu, wd, nesterov);
    Arr p = q.p0, v = xt::zeros<double>({3});
    for (int t = 0; t < 3; ++t) {
      q.gradient();
      sgd.step();
      const Arr g = q.a * p + wd * p;
      v = t == 0 ? g : Arr(mu * v + g);
      p = p - lr * (nesterov ? Arr(g + mu * v) : v);
      CHECK(all_close(q.p.value(), p, 1e-14));
    }
  }
}

TEST_CASE("Adam: bias correction over three steps against hand-computed values") {
  Quadratic q;
  const double lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8;
  tg::Adam<double> adam({q.p}, lr, b1, b2, eps);
  // Hand-computed for element 0 (a = 1, p0 = 1): g = p.
  // t=1: m = 0.1 g, v = 0.001 g^2, mhat = g, vhat = g^2 -> step lr * g / (|g| + eps) = lr (sign g)
  double p = 1.0, m = 0, v = 0;
  for (int t = 1; t <= 3; ++t) {
    q.gradient();
    adam.step();
    const double g = p;
    m = b1 * m + (1 - b1) * g;
    v = b2 * v + (1 - b2) * g * g;
    const double mhat = m / (1 - std::pow(b1, t)), vhat = v / (1 - std::pow(b2, t));
    p -= lr * mhat / (std::sqrt(vhat) + eps);
    CHECK(q.p.value()(0) == doctest::Approx(p).epsilon(1e-12));
  }
  // The first step moves every element by lr against its gradient's sign.
  Quadratic fresh;
  tg::Adam<double> one({fresh.p}, lr);
  fresh.gradient();
  one.step();
  CHECK(all_close(fresh.p.value(), Arr(fresh.p0 - lr * xt::sign(fresh.a * fresh.p0)), 1e-9));
}

TEST_CASE("optimizers skip parameters without a gradient and reject bad settings") {
  TD used(Arr{1.0}, true), unused(Arr{5.0}, true);
  tg::SGD<double> sgd({used, unused}, 0.5);
  {
    tg::Tape tape;
    tg::sum(used * used).backward();
  }
  sgd.step();
  CHECK(used.value()(0) == doctest::Approx(0.0));
  CHECK(unused.value()(0) == 5.0);
  sgd.zero_grad();
  CHECK_FALSE(used.has_grad());
  // After zero_grad a parameter the loss does not reach is not moved, even with weight decay.
  tg::SGD<double> decaying({used, unused}, 0.5, 0.9, 0.1);
  decaying.zero_grad();
  {
    tg::Tape tape;
    tg::sum(used * 2.0).backward();
  }
  decaying.step();
  CHECK(unused.value()(0) == 5.0);
  CHECK(used.value()(0) == doctest::Approx(-1.0));
  CHECK_THROWS_WITH_AS(tg::SGD<double>({used}, -1.0), doctest::Contains("SGD: lr must be in [0"), tg::ValueError);
  CHECK_THROWS_WITH_AS(tg::SGD<double>({used}, 0.1, 1.0), doctest::Contains("SGD: momentum must be in [0"), tg::ValueError);
  CHECK_THROWS_WITH_AS(tg::SGD<double>({used}, 0.1, 0.0, 0.0, true), "SGD: nesterov needs momentum > 0", tg::ValueError);
  CHECK_THROWS_WITH_AS(tg::Adam<double>({used}, 0.1, 1.5), doctest::Contains("Adam: beta1 must be in [0"), tg::ValueError);
  CHECK_THROWS_WITH_AS(tg::Adam<double>({used}, 0.1, 0.9, 0.999, 0.0), doctest::Contains("Adam: eps must be > 0"),
                       tg::ValueError);
}

TEST_CASE("a step whose gradient no longer fits a reshaped parameter changes no parameter") {
  TD a(Arr{1.0, 2.0}, true), b(Arr{3.0, 4.0}, true);
  {
    tg::Tape tape;
    tg::sum(a * b).backward();
  }
  b.mutable_value() = Arr{3.0, 4.0, 5.0};   // reshaped after backward
  tg::SGD<double> sgd({a, b}, 0.1);
  tg::Adam<double> adam({a, b}, 0.1);
  CHECK_THROWS_WITH_AS(sgd.step(), "SGD: parameter 1 of shape (3) no longer matches its gradient's 2 elements",
                       tg::ShapeError);
  CHECK_THROWS_WITH_AS(adam.step(), "Adam: parameter 1 of shape (3) no longer matches its gradient's 2 elements",
                       tg::ShapeError);
  CHECK(all_close(a.value(), Arr{1.0, 2.0}, 0.0));   // parameter 0 was not stepped either
}
