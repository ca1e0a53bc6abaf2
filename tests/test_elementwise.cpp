#include "helpers.hpp"

#include <limits>

#include <tapegrad/ops/vector_math.hpp>

TEST_CASE("binary ops: values against a naive loop, with broadcasting") {
  const Arr a = random_array({3, 1}, 1), b = random_array({1, 4}, 2, 0.5, 2.0);
  const TD ta(a), tb(b);
  const Arr add = (ta + tb).value(), sub = (ta - tb).value(), mul = (ta * tb).value(), div = (ta / tb).value();
  REQUIRE(same_shape(add, {3, 4}));
  for (std::size_t i = 0; i < 3; ++i)
    for (std::size_t j = 0; j < 4; ++j) {
      CHECK(add(i, j) == doctest::Approx(a(i, 0) + b(0, j)).epsilon(1e-13));
      CHECK(sub(i, j) == doctest::Approx(a(i, 0) - b(0, j)).epsilon(1e-13));
      CHECK(mul(i, j) == doctest::Approx(a(i, 0) * b(0, j)).epsilon(1e-13));
      CHECK(div(i, j) == doctest::Approx(a(i, 0) / b(0, j)).epsilon(1e-13));
    }
  // A rank-1 operand lines up with the last axis.
  const Arr row = (TD(random_array({2, 3}, 3)) + TD(Arr{10., 20., 30.})).value();
  CHECK(row(1, 2) == doctest::Approx(random_array({2, 3}, 3)(1, 2) + 30.).epsilon(1e-13));
}

TEST_CASE("tensor-scalar ops") {
  const Arr a = random_array({2, 3}, 4, 0.5, 2.0);
  const TD x(a);
  CHECK(all_close((x + 2.0).value(), Arr(a + 2.0)));
  CHECK(all_close((2.0 + x).value(), Arr(a + 2.0)));
  CHECK(all_close((x - 2.0).value(), Arr(a - 2.0)));
  CHECK(all_close((2.0 - x).value(), Arr(2.0 - a)));
  CHECK(all_close((x * 3.0).value(), Arr(a * 3.0)));
  CHECK(all_close((3.0 * x).value(), Arr(a * 3.0)));
  CHECK(all_close((x / 4.0).value(), Arr(a / 4.0)));
  CHECK(all_close((4.0 / x).value(), Arr(4.0 / a)));
  // Works for float without a cast of the literal.
  const TF f(xt::xarray<float>{1.f, 2.f});
  CHECK((f * 2.0f).value()(1) == 4.f);
}

TEST_CASE("unary ops: values against std:: functions") {
  const Arr a = random_array({7}, 5, 0.1, 3.0);
  const Arr s = random_array({7}, 6, -3.0, 3.0);
  for (std::size_t i = 0; i < 7; ++i) {
    CHECK(tg::exp(TD(a)).value()(i) == doctest::Approx(std::exp(a(i))).epsilon(1e-13));
    CHECK(tg::log(TD(a)).value()(i) == doctest::Approx(std::log(a(i))).epsilon(1e-13));
    CHECK(tg::sqrt(TD(a)).value()(i) == doctest::Approx(std::sqrt(a(i))).epsilon(1e-13));
    CHECK(tg::pow(TD(a), 2.5).value()(i) == doctest::Approx(std::pow(a(i), 2.5)).epsilon(1e-13));
    CHECK(tg::neg(TD(s)).value()(i) == -s(i));
    CHECK(tg::abs(TD(s)).value()(i) == std::abs(s(i)));
    CHECK(tg::tanh(TD(s)).value()(i) == doctest::Approx(std::tanh(s(i))).epsilon(1e-13));
    CHECK(tg::sigmoid(TD(s)).value()(i) == doctest::Approx(1 / (1 + std::exp(-s(i)))).epsilon(1e-13));
    CHECK(tg::relu(TD(s)).value()(i) == (s(i) > 0 ? s(i) : 0.0));
  }
}

namespace {

// A kernel table's exp, log, tanh and sigmoid against the C library over a wide sweep of values,
// to within `ulps` units in the last place; special values exactly as the C library gives them.
template <class T>
void check_vector_math(const tg::detail::VectorMath<T>& kernels, double ulps) {
  const T inf = std::numeric_limits<T>::infinity(), nan = std::numeric_limits<T>::quiet_NaN();
  const T denorm = std::numeric_limits<T>::denorm_min(), tiny = std::numeric_limits<T>::min();
  std::vector<T> values{0, T(-0.0), inf, -inf, nan, denorm, tiny / 4, tiny, T(1e-30), T(0.5), T(1), T(-1),
                        T(20), T(-20), T(80), T(-80), T(88.5), T(-87.5), T(-95), T(-103.5), T(700), T(-700),
                        T(709.5), T(709.7), T(-708.5), T(-720), T(-740), T(-745), T(745), T(-746),
                        std::numeric_limits<T>::max()};
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> u(-40, 40);
  for (int i = 0; i < 2000; ++i) values.push_back(static_cast<T>(u(rng)));
  for (int i = 0; i < 500; ++i) values.push_back(static_cast<T>(std::exp(u(rng))));   // positive, many scales
  using Kernel = void (*)(const T*, T*, std::size_t);
  const auto check = [&](const char* name, Kernel kernel, T (*reference)(T)) {
    std::vector<T> got(values.size());
    kernel(values.data(), got.data(), values.size());
    for (std::size_t i = 0; i < values.size(); ++i) {
      const T want = reference(values[i]);
      INFO(std::string(name), "(", values[i], ") = ", got[i], ", C library ", want);
      if (std::isnan(want)) {
        CHECK(std::isnan(got[i]));
      } else if (std::isinf(want) || want == 0) {
        CHECK(got[i] == want);
      } else {
        // Subnormal results carry fewer digits: one unit of the smallest subnormal is allowed.
        CHECK(std::abs(got[i] - want) <= ulps * std::numeric_limits<T>::epsilon() * std::abs(want) + denorm);
      }
      // The same element alone (the padded tail of the vector code) gives the same result.
      if (i % 97 == 0) {
        T alone;
        kernel(&values[i], &alone, 1);
        CHECK((alone == got[i] || (std::isnan(alone) && std::isnan(got[i]))));
      }
    }
  };
  check("exp", kernels.exp, [](T v) { return std::exp(v); });
  check("log", kernels.log, [](T v) { return std::log(v); });
  check("tanh", kernels.tanh, [](T v) { return std::tanh(v); });
  check("sigmoid", kernels.sigmoid, [](T v) {
    const long double e = std::exp(-std::abs(static_cast<long double>(v)));
    return static_cast<T>((v >= 0 ? 1.0L : e) / (1.0L + e));
  });
}

}  // namespace

TEST_CASE("exp, log, tanh, sigmoid: every kernel table this CPU runs, within a few ulp of the C library") {
  const auto tables = tg::detail::vector_math_tables();
  REQUIRE(!tables.empty());
  std::string names;
  for (const auto& table : tables) {
    CAPTURE(table.name);
    names += (names.empty() ? "" : ", ") + table.name;
    check_vector_math<double>(table.table.d, 4);
    check_vector_math<float>(table.table.f, 4);
  }
  MESSAGE("kernel tables checked: ", names);
  // The ops run the table chosen at start-up, the first, or an override's while it lives: here
  // a table whose tanh writes 42 everywhere, for float and double.
  CHECK((tables.front().table.d.exp == tg::detail::vector_math_table().d.exp));
  tg::detail::VectorMathTable sentinel = tg::detail::vector_math_table();
  sentinel.f.tanh = [](const float*, float* y, std::size_t n) { std::fill(y, y + n, 42.f); };
  sentinel.d.tanh = [](const double*, double* y, std::size_t n) { std::fill(y, y + n, 42.0); };
  const Arr x{-3.0, 0.25, 40.0};
  {
    const tg::detail::VectorMathOverride kernels(sentinel);
    CHECK(tg::tanh(TD(x)).value() == Arr{42.0, 42.0, 42.0});
    CHECK(tg::tanh(TF(xt::xarray<float>(xt::cast<float>(x)))).value() == xt::xarray<float>{42.f, 42.f, 42.f});
  }
  CHECK(all_close(tg::tanh(TD(x)).value(), Arr(xt::tanh(x)), 1e-15));
}

TEST_CASE("x * x: the gradient is 2x, and the second derivative 2") {
  const TD x(Arr{0.5, -1.5, 3.0}, true);
  tg::Tape tape;
  const TD dx = tg::grad(tg::sum(x * x), {x}, true)[0];
  CHECK(all_close(dx.value(), Arr{1.0, -3.0, 6.0}, 1e-15));
  const TD ddx = tg::grad(tg::sum(dx), {x})[0];
  CHECK(all_close(ddx.value(), Arr{2.0, 2.0, 2.0}, 1e-15));
  check_gradients([](const Inputs& v) { return v[0] * v[0] * v[1]; }, {leaf({2, 3}, 620), leaf({3}, 621)});
}

TEST_CASE("sigmoid is finite for large inputs") {
  const TD x(Arr{-1e4, -800., 0., 800., 1e4});
  const Arr y = tg::sigmoid(x).value();
  CHECK(y(0) == 0.0);
  CHECK(y(2) == 0.5);
  CHECK(y(4) == 1.0);
  for (double v : y) CHECK(std::isfinite(v));
}

TEST_CASE("binary ops: gradients, broadcasting (3,1) op (1,4) and (2,3) op scalar") {
  const TD a = leaf({3, 1}, 7), b = leaf({1, 4}, 8, 0.5, 2.0);
  check_gradients([](const Inputs& x) { return x[0] + x[1]; }, {a, b});
  check_gradients([](const Inputs& x) { return x[0] - x[1]; }, {a, b});
  check_gradients([](const Inputs& x) { return x[0] * x[1]; }, {a, b});
  check_gradients([](const Inputs& x) { return x[0] / x[1]; }, {a, b});
  const TD m = leaf({2, 3}, 9), s = TD(Arr(1.7), true);   // s has shape (): a true scalar tensor
  check_gradients([](const Inputs& x) { return x[0] * x[1]; }, {m, s});
  check_gradients([](const Inputs& x) { return x[1] / x[0]; }, {TD(random_array({2, 3}, 10, 1, 2), true), s});
  check_gradients([](const Inputs& x) { return x[0] * 3.0 + 2.0 - x[0] / 4.0; }, {m});
  check_gradients([](const Inputs& x) { return 2.0 - x[0] + 3.0 / x[0]; }, {TD(random_array({2, 3}, 11, 1, 2), true)});
  // Rank-1 against rank-3 and one-element tensors.
  check_gradients([](const Inputs& x) { return x[0] * x[1]; }, {leaf({2, 3, 4}, 12), leaf({4}, 13)});
  check_gradients([](const Inputs& x) { return x[0] + x[1]; }, {leaf({1}, 14), leaf({1, 1}, 15)});
}

TEST_CASE("unary ops: gradients") {
  const TD pos = leaf({2, 3}, 16, 0.2, 2.0), any = leaf({2, 3}, 17, -2.0, 2.0);
  check_gradients([](const Inputs& x) { return tg::neg(x[0]); }, {any});
  check_gradients([](const Inputs& x) { return tg::exp(x[0]); }, {any});
  check_gradients([](const Inputs& x) { return tg::log(x[0]); }, {pos});
  check_gradients([](const Inputs& x) { return tg::sqrt(x[0]); }, {pos});
  check_gradients([](const Inputs& x) { return tg::pow(x[0], 3.0); }, {any});
  check_gradients([](const Inputs& x) { return tg::pow(x[0], -1.5); }, {pos});
  check_gradients([](const Inputs& x) { return tg::pow(x[0], 0.0); }, {pos});
  check_gradients([](const Inputs& x) { return tg::tanh(x[0]); }, {any});
  check_gradients([](const Inputs& x) { return tg::sigmoid(x[0]); }, {any});
  // abs and relu away from their kink at 0.
  const TD away(Arr{{-1.5, -0.3, 0.4}, {0.9, -2.0, 1.1}}, true);
  check_gradients([](const Inputs& x) { return tg::abs(x[0]); }, {away});
  check_gradients([](const Inputs& x) { return tg::relu(x[0]); }, {away});
}

TEST_CASE("size-zero tensors pass through elementwise ops") {
  const TD e(Arr::from_shape({0, 3}), true);
  tg::Tape tape;
  const TD y = tg::exp(e) * 2.0 + e;
  CHECK(y.shape() == tg::Shape{0, 3});
  tg::sum(y).backward();
  CHECK(same_shape(e.grad(), {0, 3}));
}

TEST_CASE("float ops give float results close to double") {
  const Arr a = random_array({3, 4}, 18, 0.5, 1.5);
  const TF f(xt::xarray<float>(xt::cast<float>(a)), true);
  tg::Tape tape;
  const TF y = tg::sum(tg::log(f) * tg::sigmoid(f));
  y.backward();
  const Arr expected = xt::log(a) * (1 / (1 + xt::exp(-a)));
  CHECK(double(y.item()) == doctest::Approx(double(xt::sum(expected)())).epsilon(1e-5));
  CHECK(same_shape(Arr(xt::cast<double>(f.grad())), {3, 4}));
}

TEST_CASE("sin, cos, log1p, expm1, softplus, leaky_relu, elu, erf, gelu: values against the C library, float and double") {
  const Arr x{-30.0, -2.5, -1.0, -1e-9, 0.0, 1e-9, 0.5, 3.0, 40.0};
  const auto each = [&x](double (*f)(double)) {
    Arr y = x;
    for (auto& v : y) v = f(v);
    return y;
  };
  const TD t(x);
  CHECK(all_close(tg::sin(t).value(), each([](double v) { return std::sin(v); }), 0.0));
  CHECK(all_close(tg::cos(t).value(), each([](double v) { return std::cos(v); }), 0.0));
  CHECK(all_close(tg::expm1(t).value(), each([](double v) { return std::expm1(v); }), 0.0));
  CHECK(all_close(tg::erf(t).value(), each([](double v) { return std::erf(v); }), 0.0));
  const Arr above = xt::maximum(x, -0.999);   // log1p's domain
  CHECK(all_close(tg::log1p(TD(above)).value(), Arr(xt::log1p(above)), 0.0));
  // softplus: log(1 + e^x) without overflow at 40 (and exact where e^x is negligible).
  CHECK(all_close(tg::softplus(t).value(), each([](double v) { return std::log(1 + std::exp(v)); }), 1e-15));
  CHECK(tg::softplus(TD(Arr{1000.0})).value()(0) == 1000.0);
  CHECK(all_close(tg::leaky_relu(t, 0.1).value(), each([](double v) { return v > 0 ? v : 0.1 * v; }), 0.0));
  CHECK(all_close(tg::elu(t, 2.0).value(), each([](double v) { return v > 0 ? v : 2.0 * std::expm1(v); }), 0.0));
  // gelu, the erf form: x Phi(x).
  CHECK(all_close(tg::gelu(t).value(), each([](double v) { return v * 0.5 * std::erfc(-v / std::sqrt(2.0)); }), 1e-15));
  // float runs the same formulas in float.
  const TF f(xt::xarray<float>(xt::cast<float>(x)));
  CHECK(all_close(tg::gelu(f).value(), tg::gelu(t).value(), 1e-6));
  CHECK(all_close(tg::softplus(f).value(), tg::softplus(t).value(), 1e-5));
  // Gradients in double against finite differences (the every-op forward-mode test checks second
  // derivatives and both modes).
  check_gradients([](const Inputs& in) {
    return tg::sin(in[0]) + tg::cos(in[0]) * tg::erf(in[0]) + tg::gelu(in[0]) + tg::softplus(in[0]) * tg::expm1(in[0]) +
           tg::elu(in[0]) + tg::leaky_relu(in[0]) + tg::log1p(in[0] * in[0]);
  }, {leaf({3, 4}, 1500, -2.0, 2.0)});
}

TEST_CASE("maximum, minimum and clamp: values, NaN, ties that split the gradient, bad bounds") {
  const TD a(Arr{1.0, -2.0, 3.0, 0.5}, true), b(Arr{0.5, -1.0, 3.0, 0.5}, true);
  CHECK(all_close(tg::maximum(a, b).value(), Arr{1.0, -1.0, 3.0, 0.5}, 0.0));
  CHECK(all_close(tg::minimum(a, b).value(), Arr{0.5, -2.0, 3.0, 0.5}, 0.0));
  {
    // Where a and b tie, each gets half of the gradient.
    tg::Tape tape;
    tg::sum(tg::maximum(a, b) * TD(Arr{1.0, 2.0, 4.0, 8.0})).backward();
    CHECK(all_close(a.grad(), Arr{1.0, 0.0, 2.0, 4.0}, 0.0));
    CHECK(all_close(b.grad(), Arr{0.0, 2.0, 2.0, 4.0}, 0.0));
  }
  // NaN propagates from either side.
  const double nan = std::nan("");
  const Arr m = tg::maximum(TD(Arr{nan, 1.0}), TD(Arr{1.0, nan})).value();
  CHECK((std::isnan(m(0)) && std::isnan(m(1))));
  // Broadcasting, and the gradients against finite differences (no ties).
  check_gradients([](const Inputs& in) { return tg::maximum(in[0], in[1]) * tg::minimum(in[1], in[0] * 2.0); },
                  {leaf({2, 3}, 1600), leaf({3}, 1601)});
  // clamp: the gradient passes where lo <= x <= hi (the bounds included, as PyTorch's).
  const TD x(Arr{-2.0, -1.0, 0.0, 1.0, 2.0}, true);
  CHECK(all_close(tg::clamp(x, -1.0, 1.0).value(), Arr{-1.0, -1.0, 0.0, 1.0, 1.0}, 0.0));
  {
    tg::Tape tape;
    tg::sum(tg::clamp(x, -1.0, 1.0)).backward();
    CHECK(all_close(x.grad(), Arr{0.0, 1.0, 1.0, 1.0, 0.0}, 0.0));
  }
  CHECK_THROWS_WITH_AS(tg::clamp(x, 1.0, -1.0), doctest::Contains("clamp: the lower bound 1 is above the upper bound -1"),
                       tg::ValueError);
  CHECK_THROWS_WITH_AS(tg::maximum(TD(Arr{1.0, 2.0}), TD(Arr{1.0, 2.0, 3.0})),
                       doctest::Contains("maximum: shapes (2) and (3) do not broadcast"), tg::ShapeError);
}
