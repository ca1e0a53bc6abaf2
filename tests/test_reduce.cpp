#include "helpers.hpp"

TEST_CASE("sum and mean: values over each axis, with and without keepdims") {
  const Arr a = random_array({2, 3, 4}, 20);
  const TD x(a);
  CHECK(tg::sum(x).item() == doctest::Approx(xt::sum(a)()).epsilon(1e-13));
  CHECK(tg::sum(x).shape() == tg::Shape{});
  CHECK(tg::mean(x).item() == doctest::Approx(xt::mean(a)()).epsilon(1e-13));
  for (std::ptrdiff_t axis = -3; axis < 3; ++axis) {
    const std::size_t k = static_cast<std::size_t>(axis < 0 ? axis + 3 : axis);
    const Arr expected = xt::sum(a, {k});
    CHECK(all_close(tg::sum(x, {axis}).value(), expected, 1e-12));
    const TD kept = tg::sum(x, {axis}, true);
    tg::Shape ks = {2, 3, 4};
    ks[k] = 1;
    CHECK(kept.shape() == ks);
    CHECK(all_close(tg::mean(x, {axis}).value(), Arr(xt::mean(a, {k})), 1e-12));
  }
  CHECK(all_close(tg::sum(x, {0, 2}).value(), Arr(xt::sum(a, {0, 2})), 1e-12));
}

TEST_CASE("float sums accumulate in double") {
  // 2^24 + 8 ones: a float accumulator would stop at 16,777,216.
  const TF ones(xt::xarray<float>(xt::ones<float>({(1u << 24) + 8u})));
  CHECK(tg::sum(ones).item() == 16777224.f);
}

TEST_CASE("max: values, first of ties, over all elements") {
  const Arr a{{1., 5., 5.}, {7., -2., 0.}};
  const TD x(a, true);
  CHECK(all_close(tg::max(x, 1).value(), Arr{5., 7.}));
  CHECK(all_close(tg::max(x, 0, true).value(), Arr{{7., 5., 5.}}));
  CHECK(tg::max(x).item() == 7.);
  tg::Tape tape;
  tg::sum(tg::max(x, 1)).backward();
  // The tie in row 0 sends the gradient to its first maximum only.
  CHECK(all_close(x.grad(), Arr{{0., 1., 0.}, {1., 0., 0.}}));
}

TEST_CASE("reductions: gradients over each axis, keepdims, one element, size zero") {
  const TD x = leaf({2, 3, 4}, 21);
  check_gradients([](const Inputs& in) { return tg::sum(in[0]); }, {x});
  check_gradients([](const Inputs& in) { return tg::mean(in[0]); }, {x});
  for (std::ptrdiff_t axis : {0, 1, 2, -1})
    for (bool keep : {false, true}) {
      CAPTURE(axis);
      CAPTURE(keep);
      check_gradients([=](const Inputs& in) { return tg::sum(in[0], {axis}, keep); }, {x});
      check_gradients([=](const Inputs& in) { return tg::mean(in[0], {axis}, keep); }, {x});
      check_gradients([=](const Inputs& in) { return tg::max(in[0], axis, keep); }, {x});
    }
  check_gradients([](const Inputs& in) { return tg::sum(in[0], {0, 2}, true); }, {x});
  check_gradients([](const Inputs& in) { return tg::max(in[0]); }, {x});
  check_gradients([](const Inputs& in) { return tg::sum(in[0]) * tg::mean(in[0]); }, {leaf({1}, 22)});
  // The sum of nothing is 0 and its gradient an empty array.
  const TD empty(Arr::from_shape({0, 2}), true);
  CHECK(tg::sum(empty).item() == 0.0);
  CHECK(tg::sum(empty, {0}).shape() == tg::Shape{2});
}

TEST_CASE("sum_to reduces broadcast dimensions") {
  const TD x = leaf({2, 3, 4}, 23);
  Arr expected = xt::sum(x.value(), {0, 2});
  expected.reshape({3, 1});
  CHECK(all_close(tg::sum_to(x, {3, 1}).value(), expected, 1e-12));
  check_gradients([](const Inputs& in) { return tg::sum_to(in[0], {1, 4}); }, {x});
  check_gradients([](const Inputs& in) { return tg::sum_to(in[0], {}); }, {x});
}

TEST_CASE("max over several axes") {
  const Arr a = random_array({2, 3, 4}, 24);
  const TD x(a, true);
  CHECK(all_close(tg::max(x, tg::Axes{0, 2}).value(), Arr(xt::amax(a, {0, 2})), 0.0));
  CHECK(tg::max(x, tg::Axes{1, 2}, true).shape() == tg::Shape{2, 1, 1});
  check_gradients([](const Inputs& in) { return tg::max(in[0], tg::Axes{0, -1}); }, {x});
  check_gradients([](const Inputs& in) { return tg::max(in[0], tg::Axes{1}, true); }, {x});
}
