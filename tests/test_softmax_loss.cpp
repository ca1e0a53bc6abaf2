#include "helpers.hpp"

TEST_CASE("softmax and log_softmax equal a per-row reference") {
  const Arr x = random_array({3, 5}, 600, -3, 3);
  const Arr s = tg::softmax(TD(x), 1).value(), ls = tg::log_softmax(TD(x), -1).value();
  for (std::size_t i = 0; i < 3; ++i) {
    double z = 0;
    for (std::size_t j = 0; j < 5; ++j) z += std::exp(x(i, j));
    for (std::size_t j = 0; j < 5; ++j) {
      CHECK(s(i, j) == doctest::Approx(std::exp(x(i, j)) / z));
      CHECK(ls(i, j) == doctest::Approx(x(i, j) - std::log(z)));
    }
  }
  // Along axis 0 the columns sum to 1.
  CHECK(all_close(xt::sum(tg::softmax(TD(x), 0).value(), {0}), Arr(xt::ones<double>({5})), 1e-12));
}

TEST_CASE("softmax, log_softmax and cross_entropy are finite for logits of +-1e4") {
  const Arr x{{1e4, -1e4, 0.0}, {-1e4, -1e4, 1e4}};
  for (double v : tg::softmax(TD(x), 1).value()) CHECK(std::isfinite(v));
  for (double v : tg::log_softmax(TD(x), 1).value()) CHECK(std::isfinite(v));
  const TD logits(x, true);
  tg::Tape tape;
  const TD loss = tg::cross_entropy(logits, {1, 2});
  CHECK(loss.item() == doctest::Approx(1e4));   // row 0 puts all mass on class 0, label 1: -log p = 2e4; row 1: 0
  loss.backward();
  for (double v : logits.grad()) CHECK(std::isfinite(v));
  const TF lf(xt::xarray<float>{{1e4f, -1e4f}}, true);
  CHECK(std::isfinite(tg::cross_entropy(lf, {1}).item()));
}

TEST_CASE("softmax, log_softmax, losses: gradients") {
  const TD x = leaf({3, 4}, 601, -2, 2);
  check_gradients([](const Inputs& v) { return tg::softmax(v[0], 1); }, {x});
  check_gradients([](const Inputs& v) { return tg::softmax(v[0], 0); }, {x});
  check_gradients([](const Inputs& v) { return tg::log_softmax(v[0], -1); }, {x});
  check_gradients([](const Inputs& v) { return tg::softmax(v[0], 1); }, {leaf({2, 3, 4}, 602)});
  const TD target(random_array({3, 4}, 603));
  check_gradients([&](const Inputs& v) { return tg::mse_loss(v[0], target); }, {x});
  check_gradients([&](const Inputs& v) { return tg::mse_loss(v[0], v[1], tg::Reduction::sum); }, {x, leaf({3, 4}, 604)});
  check_gradients([](const Inputs& v) { return tg::cross_entropy(v[0], {3, 0, 2}); }, {x});
  check_gradients([](const Inputs& v) { return tg::cross_entropy(v[0], {1, 1, 0}, tg::Reduction::sum); }, {x});
}

TEST_CASE("logsumexp: values against the direct formula, shapes, large inputs, gradients") {
  const Arr x = random_array({3, 4}, 605, -3, 3);
  const Arr rows = tg::logsumexp(TD(x), 1).value(), cols = tg::logsumexp(TD(x), 0, true).value();
  CHECK(same_shape(rows, {3}));
  CHECK(same_shape(cols, {1, 4}));
  for (std::size_t i = 0; i < 3; ++i) {
    double z = 0;
    for (std::size_t j = 0; j < 4; ++j) z += std::exp(x(i, j));
    CHECK(rows(i) == doctest::Approx(std::log(z)).epsilon(1e-14));
  }
  for (std::size_t j = 0; j < 4; ++j)
    CHECK(cols(0, j) == doctest::Approx(std::log(std::exp(x(0, j)) + std::exp(x(1, j)) + std::exp(x(2, j)))).epsilon(1e-14));
  // exp(1000) overflows; the shifted form does not.
  CHECK(tg::logsumexp(TD(Arr{1000., 1000.}), 0).item() == doctest::Approx(1000. + std::log(2.)).epsilon(1e-15));
  const TD a = leaf({3, 4}, 606, -2, 2);
  check_gradients([](const Inputs& v) { return tg::logsumexp(v[0], 1); }, {a});
  check_gradients([](const Inputs& v) { return tg::logsumexp(v[0], -2, true); }, {a});
  check_gradients([](const Inputs& v) { return tg::logsumexp(v[0], 0); }, {leaf({5}, 607)});
}

TEST_CASE("losses: values against closed forms") {
  const Arr p{{1., 2.}, {3., 4.}}, t{{0., 2.}, {5., 3.}};
  CHECK(tg::mse_loss(TD(p), TD(t)).item() == doctest::Approx((1. + 0. + 4. + 1.) / 4.));
  // The notes' E = 1/2 sum (o - l)^2
  CHECK((0.5 * tg::mse_loss(TD(p), TD(t), tg::Reduction::sum)).item() == doctest::Approx(3.0));
  const Arr logits{{2., 1., 0.}, {0., 0., 0.}};
  const double ce0 = -std::log(std::exp(2.) / (std::exp(2.) + std::exp(1.) + 1.));
  const double ce1 = std::log(3.);
  CHECK(tg::cross_entropy(TD(logits), {0, 2}).item() == doctest::Approx((ce0 + ce1) / 2));
}
