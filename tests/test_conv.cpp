#include "helpers.hpp"

namespace {

struct Case {
  tg::Shape x, w;
  tg::Size2 stride, padding;
  bool bias;
};

const Case cases[] = {
    {{2, 3, 7, 7}, {4, 3, 3, 3}, 1, 0, true},        // batch > 1, several channels
    {{1, 2, 6, 5}, {3, 2, 3, 3}, 2, 1, true},        // stride 2, padding 1, odd width
    {{2, 1, 5, 5}, {2, 1, 5, 5}, 1, 2, false},       // 5x5 kernel, padding 2, no bias
    {{1, 3, 4, 6}, {5, 3, 1, 1}, 1, 0, true},        // 1x1 kernel
    {{2, 2, 9, 8}, {3, 2, 3, 2}, {2, 3}, {1, 0}, true},  // per-axis stride and padding, odd sizes
    {{1, 2, 5, 6}, {2, 2, 1, 2}, 3, 2, true},        // stride beyond the kernel: rows clipped, no padded copy
    // 16 rows of columns or more: the weight gradient takes them transposed (these without a padded copy)
    {{2, 4, 5, 6}, {2, 4, 2, 2}, 3, 2, true},
};

}  // namespace

TEST_CASE("conv2d equals a direct convolution") {
  unsigned seed = 400;
  for (const Case& c : cases) {
    const Arr x = random_array(c.x, seed++), w = random_array(c.w, seed++), b = random_array({c.w[0]}, seed++);
    const TD y = tg::conv2d(TD(x), TD(w), c.bias ? TD(b) : TD(), c.stride, c.padding);
    const Arr expected = naive_conv(x, w, c.bias ? &b : nullptr, c.stride, c.padding);
    CHECK(all_close(y.value(), expected, 1e-12));
    // float too, to float rounding
    const TF yf = tg::conv2d(TF(xt::xarray<float>(xt::cast<float>(x))), TF(xt::xarray<float>(xt::cast<float>(w))),
                             c.bias ? TF(xt::xarray<float>(xt::cast<float>(b))) : TF(), c.stride, c.padding);
    CHECK(all_close(yf.value(), expected, 1e-5));
  }
}

TEST_CASE("conv2d gradients for input, weight and bias") {
  unsigned seed = 420;
  for (const Case& c : cases) {
    CAPTURE(tg::shape_str(c.x));
    CAPTURE(tg::shape_str(c.w));
    Inputs in{leaf(c.x, seed++), leaf(c.w, seed++)};
    if (c.bias) in.push_back(leaf({c.w[0]}, seed++));
    check_gradients(
        [c](const Inputs& v) { return tg::conv2d(v[0], v[1], c.bias ? v[2] : TD(), c.stride, c.padding); }, in);
  }
}

TEST_CASE("im2col equals a naive patch extraction") {
  struct Im2colCase {
    tg::Shape x;
    tg::Size2 kernel, stride, padding;
  };
  for (const Im2colCase& c : {Im2colCase{{2, 3, 5, 4}, {3, 2}, {2, 1}, {1, 1}}, Im2colCase{{1, 2, 4, 4}, 3, 1, 1},
                              Im2colCase{{1, 1, 6, 5}, {1, 2}, {4, 3}, {3, 2}}, Im2colCase{{2, 2, 3, 3}, 3, 1, 0}}) {
    CAPTURE(tg::shape_str(c.x));
    const Arr x = random_array(c.x, 446);
    const std::size_t N = c.x[0], C = c.x[1], H = c.x[2], W = c.x[3], kh = c.kernel.h, kw = c.kernel.w;
    const std::size_t Ho = (H + 2 * c.padding.h - kh) / c.stride.h + 1, Wo = (W + 2 * c.padding.w - kw) / c.stride.w + 1;
    Arr expected = xt::zeros<double>({N, C * kh * kw, Ho * Wo});
    for (std::size_t n = 0; n < N; ++n)
      for (std::size_t ch = 0; ch < C; ++ch)
        for (std::size_t u = 0; u < kh; ++u)
          for (std::size_t v = 0; v < kw; ++v)
            for (std::size_t i = 0; i < Ho; ++i)
              for (std::size_t j = 0; j < Wo; ++j) {
                const long r = long(i * c.stride.h + u) - long(c.padding.h), q = long(j * c.stride.w + v) - long(c.padding.w);
                if (r >= 0 && r < long(H) && q >= 0 && q < long(W))
                  expected(n, (ch * kh + u) * kw + v, i * Wo + j) = x(n, ch, std::size_t(r), std::size_t(q));
              }
    CHECK(tg::im2col(TD(x), c.kernel, c.stride, c.padding).value() == expected);   // copies: exact
  }
}

TEST_CASE("im2col and col2im are adjoint, and differentiate to second order") {
  // <im2col(x), c> == <x, col2im(c)> for any x, c
  const Arr x = random_array({2, 3, 5, 4}, 440);
  const TD cols = tg::im2col(TD(x), {3, 2}, {2, 1}, {1, 1});
  const Arr c = random_array(cols.shape(), 441);
  const TD back = tg::col2im(TD(c), {2, 3, 5, 4}, {3, 2}, {2, 1}, {1, 1});
  CHECK(xt::sum(cols.value() * c)() == doctest::Approx(xt::sum(x * back.value())()).epsilon(1e-13));
  // The same where the padding is far larger than the windows the stride visits.
  const TD sparse = tg::im2col(TD(x), {1, 2}, {4, 3}, {3, 2});
  const Arr d = random_array(sparse.shape(), 445);
  const TD sparse_back = tg::col2im(TD(d), {2, 3, 5, 4}, {1, 2}, {4, 3}, {3, 2});
  CHECK(xt::sum(sparse.value() * d)() == doctest::Approx(xt::sum(x * sparse_back.value())()).epsilon(1e-13));
  check_gradients([](const Inputs& v) { return tg::col2im(v[0], {1, 2, 4, 4}, 3, 1, 1); }, {leaf({1, 18, 16}, 442)});
  // d2/dx2 of sum(conv(x, w)^2) / 2 applied to v is conv^T(conv(v)): checked by finite differences
  // of the first derivative, which is itself a recorded graph.
  const TD w = leaf({2, 1, 3, 3}, 443);
  check_gradients(
      [w](const Inputs& v) {
        const TD y = tg::conv2d(v[0], w, TD(), 1, 1);
        return tg::grad(tg::sum(y * y * 0.5), {v[0]}, true)[0];
      },
      {leaf({1, 1, 4, 4}, 444)});
}

TEST_CASE("conv2d's input and weight gradients differentiate again, in both arguments") {
  // The gradients of sum(conv(x, w, b)^3) / 3 with respect to x and to w are each checked as
  // functions of x, w and b: every branch of the three convolution ops' VJPs is taken.
  const Inputs in{leaf({2, 2, 5, 4}, 446), leaf({3, 2, 3, 2}, 447), leaf({3}, 448)};
  for (const std::size_t which : {0, 1, 2}) {
    CAPTURE(which);
    check_gradients(
        [which](const Inputs& v) {
          const TD y = tg::conv2d(v[0], v[1], v[2], {2, 1}, {1, 1});
          return tg::grad(tg::sum(y * y * y) / 3.0, {v[0], v[1], v[2]}, true)[which];
        },
        in);
  }
}

TEST_CASE("conv2d with an empty batch, no input channels or no output channels") {
  tg::Tape tape;
  // No images: an empty output, and a weight gradient of zeros.
  const TD x0(Arr::from_shape({0, 2, 5, 5}), true), w(Arr(random_array({3, 2, 3, 3}, 450))), b(Arr{1.0, 2.0, 3.0});
  const TD wg(w.value(), true), bg(b.value(), true);
  const TD y0 = tg::conv2d(x0, wg, bg, 1, 1);
  CHECK(y0.shape() == tg::Shape{0, 3, 5, 5});
  tg::sum(y0).backward();
  CHECK(all_close(wg.grad(), Arr(xt::zeros<double>({3, 2, 3, 3}))));
  CHECK(all_close(bg.grad(), Arr(xt::zeros<double>({3}))));
  CHECK(same_shape(x0.grad(), {0, 2, 5, 5}));
  // No input channels: the output is the bias alone; the weight gradient is empty.
  const TD xc(Arr::from_shape({2, 0, 4, 4}), true), wc(Arr::from_shape({3, 0, 3, 3}), true);
  const TD yc = tg::conv2d(xc, wc, b);
  CHECK(all_close(yc.value(), Arr(xt::ones<double>({2, 3, 2, 2}) * xt::reshape_view(b.value(), {1, 3, 1, 1}))));
  tg::sum(yc).backward();
  CHECK(same_shape(wc.grad(), {3, 0, 3, 3}));
  CHECK(same_shape(xc.grad(), {2, 0, 4, 4}));
  // No output channels: an empty output; the input gradient is zeros.
  const TD xk(Arr(random_array({2, 2, 4, 4}, 451)), true), wk(Arr::from_shape({0, 2, 3, 3}), true);
  const TD yk = tg::conv2d(xk, wk, TD());
  CHECK(yk.shape() == tg::Shape{2, 0, 2, 2});
  tg::sum(yk).backward();
  CHECK(all_close(xk.grad(), Arr(xt::zeros<double>({2, 2, 4, 4}))));
}

TEST_CASE("Conv2d with groups (depthwise too): values against a naive loop, gradients, bad groups") {
  tg::ManualSeed seed(31);
  for (const std::size_t groups : {std::size_t(2), std::size_t(4)}) {
    CAPTURE(groups);
    tg::Conv2dOptions o;
    o.groups = groups;
    o.padding = 1;
    o.stride = {1, 2};
    tg::Conv2d<double> conv(4, 4 * (groups == 4 ? 2 : 1), 3, o);   // groups 4: depthwise with 2 filters per channel
    const Arr x = random_array({2, 4, 5, 6}, 3900 + unsigned(groups));
    const Arr y = conv(TD(x)).value();
    const Arr w = conv.weight().value(), b = conv.bias().value();
    const std::size_t out = w.shape(0), in_g = 4 / groups, out_g = out / groups;
    REQUIRE(w.shape(1) == in_g);
    REQUIRE(y.shape(2) == 5);
    REQUIRE(y.shape(3) == 3);
    for (std::size_t n = 0; n < 2; ++n)
      for (std::size_t k = 0; k < out; ++k)
        for (std::size_t i = 0; i < 5; ++i)
          for (std::size_t j = 0; j < 3; ++j) {
            double sum = b(k);
            const std::size_t g = k / out_g;
            for (std::size_t c = 0; c < in_g; ++c)
              for (std::size_t u = 0; u < 3; ++u)
                for (std::size_t v = 0; v < 3; ++v) {
                  const std::ptrdiff_t r = std::ptrdiff_t(i + u) - 1, q = std::ptrdiff_t(2 * j + v) - 1;
                  if (r >= 0 && r < 5 && q >= 0 && q < 6) sum += w(k, c, u, v) * x(n, g * in_g + c, std::size_t(r), std::size_t(q));
                }
            CHECK(y(n, k, i, j) == doctest::Approx(sum).epsilon(1e-13));
          }
    const TD input(x);
    CHECK(tg::gradcheck_parameters([&] { return tg::sum(tg::tanh(conv(input))); }, conv.named_parameters(), strict()).ok());
    check_gradients([&](const Inputs& v) { return conv(v[0]); }, {leaf({1, 4, 4, 4}, 3910)});
  }
  tg::Conv2dOptions bad;
  bad.groups = 3;
  CHECK_THROWS_WITH_AS(tg::Conv2d<double>(4, 6, 3, bad), "Conv2d: groups=3 must divide in_channels=4 and out_channels=6",
                       tg::ValueError);
}
