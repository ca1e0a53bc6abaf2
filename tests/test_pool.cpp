#include "helpers.hpp"

#include <tuple>

namespace {
// Per-window loops. mode 0: mean (the zero padding counted in it), 1: max (over the elements
// inside the input).
Arr naive_pool(const Arr& x, tg::Size2 k, tg::Size2 s, int mode, tg::Size2 p = 0) {
  const std::size_t N = x.shape(0), C = x.shape(1), H = x.shape(2), W = x.shape(3);
  const std::size_t Ho = (H + 2 * p.h - k.h) / s.h + 1, Wo = (W + 2 * p.w - k.w) / s.w + 1;
  Arr y = xt::zeros<double>({N, C, Ho, Wo});
  for (std::size_t n = 0; n < N; ++n)
    for (std::size_t c = 0; c < C; ++c)
      for (std::size_t i = 0; i < Ho; ++i)
        for (std::size_t j = 0; j < Wo; ++j) {
          double acc = mode == 0 ? 0.0 : -1e300;
          for (std::size_t u = 0; u < k.h; ++u)
            for (std::size_t v = 0; v < k.w; ++v) {
              const long r = long(i * s.h + u) - long(p.h), q = long(j * s.w + v) - long(p.w);
              if (r < 0 || r >= long(H) || q < 0 || q >= long(W)) continue;
              const double e = x(n, c, std::size_t(r), std::size_t(q));
              acc = mode == 0 ? acc + e : std::max(acc, e);
            }
          y(n, c, i, j) = mode == 0 ? acc / double(k.h * k.w) : acc;
        }
  return y;
}
}  // namespace

TEST_CASE("avg_pool2d and max_pool2d equal per-window loops; windows that do not fit are dropped") {
  const Arr x = random_array({2, 3, 7, 6}, 500);
  for (auto [k, s] : std::vector<std::pair<tg::Size2, tg::Size2>>{{2, 2}, {3, 2}, {{2, 3}, {1, 2}}, {1, 1}}) {
    CHECK(all_close(tg::avg_pool2d(TD(x), k, s).value(), naive_pool(x, k, s, 0), 1e-12));
    CHECK(all_close(tg::max_pool2d(TD(x), k, s).value(), naive_pool(x, k, s, 1), 1e-12));
  }
  // 7x6 with a 2x2 kernel: 3x3 output, the last row dropped.
  CHECK(tg::avg_pool2d(TD(x), 2).shape() == tg::Shape{2, 3, 3, 3});
  CHECK(tg::max_pool2d(TD(x), 2).shape() == tg::Shape{2, 3, 3, 3});
}

TEST_CASE("pooling with a different padding per axis: values against per-window loops, gradients") {
  const Arr x = random_array({2, 2, 5, 6}, 504);
  for (auto [k, s, p] : std::vector<std::tuple<tg::Size2, tg::Size2, tg::Size2>>{
           {{3, 2}, {2, 1}, {1, 0}}, {{2, 4}, {1, 3}, {0, 2}}, {3, {1, 2}, {1, 0}}}) {
    CAPTURE(p.h);
    CAPTURE(p.w);
    CHECK(all_close(tg::avg_pool2d(TD(x), k, s, p).value(), naive_pool(x, k, s, 0, p), 1e-14));
    CHECK(all_close(tg::max_pool2d(TD(x), k, s, p).value(), naive_pool(x, k, s, 1, p), 0));
    check_gradients([=](const Inputs& v) { return tg::avg_pool2d(v[0], k, s, p); }, {leaf({1, 2, 5, 6}, 505)}, forward_too());
    check_gradients([=](const Inputs& v) { return tg::max_pool2d(v[0] * v[0], k, s, p); }, {leaf({1, 2, 5, 6}, 506)},
                    forward_too());
  }
}

TEST_CASE("avg_pool2d with zero padding counts the padding in the mean") {
  const TD x(Arr(xt::ones<double>({1, 1, 2, 2})));
  const Arr y = tg::avg_pool2d(x, 2, 2, 1).value();   // corners see one element of four
  CHECK(all_close(y, Arr{{{{0.25, 0.25}, {0.25, 0.25}}}}));
}

TEST_CASE("pooling gradients") {
  const TD x = leaf({2, 2, 5, 6}, 501);
  check_gradients([](const Inputs& v) { return tg::avg_pool2d(v[0], 2); }, {x});
  check_gradients([](const Inputs& v) { return tg::avg_pool2d(v[0], 3, 2); }, {x});
  check_gradients([](const Inputs& v) { return tg::avg_pool2d(v[0], 3, 2, 1); }, {x});
  // Tiling windows (stride = kernel) that leave the last rows and columns out.
  const TD odd = leaf({2, 2, 5, 7}, 503);
  check_gradients([](const Inputs& v) { return tg::avg_pool2d(v[0], 2); }, {odd});
  check_gradients([](const Inputs& v) { return tg::avg_pool2d(v[0], 3); }, {odd});
  check_gradients([](const Inputs& v) { return tg::avg_pool2d(v[0], {2, 3}, {2, 3}); }, {odd});
  check_gradients([](const Inputs& v) { return tg::max_pool2d(v[0], 2); }, {x});
  check_gradients([](const Inputs& v) { return tg::max_pool2d(v[0], {3, 2}, {1, 2}); }, {x});
}

TEST_CASE("max_pool2d ties send the gradient to the first element of the window") {
  const TD x(Arr{{{{1., 1.}, {1., 1.}}}}, true);
  tg::Tape tape;
  tg::sum(tg::max_pool2d(x, 2)).backward();
  CHECK(all_close(x.grad(), Arr{{{{1., 0.}, {0., 0.}}}}));
}

TEST_CASE("pooling differentiates to second order (its backward ops are primitives with VJPs)") {
  // The gradient of sum(pool(x)^3) is itself differentiated: checked against finite differences.
  const TD x = leaf({1, 2, 4, 6}, 502);
  check_gradients([](const Inputs& v) {
    const TD y = tg::avg_pool2d(v[0], 2, 2, 1);
    return tg::grad(tg::sum(y * y * y), {v[0]}, true)[0];
  }, {x});
  check_gradients([](const Inputs& v) {
    const TD y = tg::max_pool2d(v[0], 2);
    return tg::grad(tg::sum(y * y * y), {v[0]}, true)[0];
  }, {x});
}

TEST_CASE("pooling an empty batch gives an empty batch") {
  const TD x(Arr::from_shape({0, 2, 4, 4}), true);
  CHECK(tg::avg_pool2d(x, 2).shape() == tg::Shape{0, 2, 2, 2});
  CHECK(tg::max_pool2d(x, 2).shape() == tg::Shape{0, 2, 2, 2});
}

TEST_CASE("max_pool2d with padding: the maximum of each window's elements inside the input, against a naive loop") {
  const Arr a = random_array({2, 2, 5, 4}, 3700);
  const TD y = tg::max_pool2d(TD(a), {3, 2}, {2, 1}, {1, 1});
  // Ho = (5 + 2 - 3) / 2 + 1 = 3, Wo = (4 + 2 - 2) / 1 + 1 = 5
  REQUIRE(y.shape() == tg::Shape{2, 2, 3, 5});
  CHECK(y.value() == naive_pool(a, {3, 2}, {2, 1}, 1, {1, 1}));
  // All-negative input: padding is no zero that would win.
  CHECK(xt::amax(tg::max_pool2d(TD(Arr(-1.0 - xt::abs(a))), 2, 1, 1).value())() < 0);
  check_gradients([](const Inputs& x) { return tg::max_pool2d(x[0] * x[0], {3, 2}, {2, 1}, {1, 1}); },
                  {leaf({1, 2, 5, 4}, 3701)}, forward_too());
  CHECK(tg::MaxPool2d<double>(3, 1, 1)(TD(a)).shape() == tg::Shape{2, 2, 5, 4});
  CHECK_THROWS_WITH_AS(tg::max_pool2d(TD(a), 2, 2, 2), "max_pool2d: padding (2, 2) must be at most half the kernel (2, 2)",
                       tg::ValueError);
}

TEST_CASE("max_pool2d: padded windows over an empty spatial axis are an error, not windows without a maximum") {
  CHECK_THROWS_WITH_AS(tg::max_pool2d(TD(Arr(xt::zeros<double>({1, 1, 0, 4}))), 2, 2, 1),
                       "max_pool2d: input shape (1, 1, 0, 4) has an empty spatial axis: its padded windows hold no element",
                       tg::ShapeError);
  CHECK(tg::max_pool2d(TD(Arr(xt::zeros<double>({0, 1, 4, 4}))), 2, 2, 1).shape() == tg::Shape{0, 1, 3, 3});
}
