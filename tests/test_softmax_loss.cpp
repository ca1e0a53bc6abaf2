#include "helpers.hpp"

TEST_CASE("softmax and log_softmax equal a per-row reference") {
  const Arr x = random_array({3, 5}, 600, -3, 3);
  const Arr s = tg::softmax(TD(x), 1).value(), ls = tg::log_softmax(TD(x), -1).value();
  for (std::size_t i = 0; i < 3; ++i) {
    double z = 0;
    for (std::size_t j = 0; j < 5; ++j) z += std::exp(x(i, j));
    for (std::size_t j = 0; j < 5; ++j) {
      CHECK(s(i, j) == doctest::Approx(std::exp(x(i, j)) / z).epsilon(1e-13));
      CHECK(ls(i, j) == doctest::Approx(x(i, j) - std::log(z)).epsilon(1e-13));
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
  CHECK(loss.item() == doctest::Approx(1e4).epsilon(1e-13));   // row 0 puts all mass on class 0, label 1: -log p = 2e4; row 1: 0
  loss.backward();
  for (double v : logits.grad()) CHECK(std::isfinite(v));
  const TF lf(xt::xarray<float>{{1e4f, -1e4f}}, true);
  CHECK(std::isfinite(tg::cross_entropy(lf, {1}).item()));
}

TEST_CASE("softmax, log_softmax and cross_entropy at logits of +-1e4 equal their closed forms") {
  // Differences of 1e4 or more: exp(-1e4) is 0 in double, so the closed forms are exact.
  const Arr x{{1e4, -1e4, 0.0}, {-1e4, -1e4, 1e4}};
  CHECK(tg::softmax(TD(x), 1).value() == Arr{{1.0, 0.0, 0.0}, {0.0, 0.0, 1.0}});
  CHECK(tg::log_softmax(TD(x), 1).value() == Arr{{0.0, -2e4, -1e4}, {-2e4, -2e4, 0.0}});
  const TD logits(x, true);
  {
    tg::Tape tape;
    const TD loss = tg::cross_entropy(logits, {1, 2});
    CHECK(loss.item() == 1e4);   // (2e4 + 0) / 2
    loss.backward();
  }
  // d/dx = (softmax - one-hot) / N.
  CHECK(logits.grad() == Arr{{0.5, -0.5, 0.0}, {0.0, 0.0, 0.0}});
  // Near each other at 1e4: softmax_k = exp(-d_k) / sum_j exp(-d_j) for the offsets d from the top
  // logit, log_softmax_k = -d_k - log(sum_j exp(-d_j)); for float too (1e4 - 2 is exact in float).
  const Arr d{0.0, 1.0, 2.0, 0.5};
  const double z = std::exp(0.0) + std::exp(-1.0) + std::exp(-2.0) + std::exp(-0.5);
  const Arr near = Arr(xt::reshape_view(1e4 - d, {1, 4}));
  const Arr want_log = Arr(xt::reshape_view(-d - std::log(z), {1, 4}));
  CHECK(all_close(tg::log_softmax(TD(near), 1).value(), want_log, 1e-12));
  CHECK(all_close(tg::softmax(TD(near), 1).value(), Arr(xt::exp(want_log)), 1e-14));
  const xt::xarray<float> near_f = xt::cast<float>(near);
  CHECK(all_close(tg::log_softmax(TF(near_f), 1).value(), want_log, 1e-6));
  CHECK(all_close(tg::softmax(TF(near_f), 1).value(), Arr(xt::exp(want_log)), 1e-7));
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
  // Second derivatives: the Hessian of logsumexp is diag(p) - p p^T (p the softmax), checked by
  // gradgradcheck and, along a direction t, against that closed form.
  const auto second = tg::gradgradcheck([](const Inputs& v) { return tg::logsumexp(v[0], 1); }, {a}, strict());
  INFO(second.str());
  CHECK(second.ok());
  const TD row = leaf({4}, 608, -2, 2);
  const Arr t = random_array({4}, 609);
  tg::Tape tape;
  const TD g = tg::grad(tg::logsumexp(row, 0), {row}, true)[0];
  const TD hessian_t = tg::grad(tg::sum(g * TD(t)), {row})[0];
  const Arr p = xt::exp(row.value() - std::log(xt::sum(xt::exp(row.value()))()));
  CHECK(all_close(hessian_t.value(), Arr(p * t - p * xt::sum(p * t)()), 1e-14));
}

TEST_CASE("logsumexp: every axis, its JVP rule, long rows in float, infinities, NaN, empty axes") {
  // Along the middle axis the op reduces rows of several elements at once; along the last, one
  // contiguous row.
  const TD cube = leaf({2, 3, 4}, 610, -3, 3);
  for (const std::ptrdiff_t axis : {0, 1, 2, -1}) {
    INFO("axis " << axis);
    check_gradients([axis](const Inputs& v) { return tg::logsumexp(v[0], axis); }, {cube}, forward_too());
  }
  check_gradients([](const Inputs& v) { return tg::logsumexp(v[0], 1, true); }, {cube}, forward_too());
  const Arr& c = cube.value();
  const Arr middle = tg::logsumexp(cube, 1).value();
  REQUIRE(same_shape(middle, {2, 4}));
  for (std::size_t o = 0; o < 2; ++o)
    for (std::size_t i = 0; i < 4; ++i)
      CHECK(middle(o, i) == doctest::Approx(std::log(std::exp(c(o, 0, i)) + std::exp(c(o, 1, i)) + std::exp(c(o, 2, i))))
                                .epsilon(1e-14));
  // The batched JVP rule (jacfwd) against the closed form: d y_i / d x_kj = [i = k] p_ij.
  const TD m = leaf({3, 4}, 611, -2, 2);
  const TD jac = tg::jacfwd<double>([](const Inputs& v) { return Inputs{tg::logsumexp(v[0], 1)}; }, {m})[0][0];
  REQUIRE(same_shape(jac.value(), {3, 3, 4}));
  const Arr lse_rows = tg::logsumexp(m, 1, true).value();
  for (std::size_t i = 0; i < 3; ++i)
    for (std::size_t k = 0; k < 3; ++k)
      for (std::size_t j = 0; j < 4; ++j)
        CHECK(jac.value()(i, k, j) == doctest::Approx(i == k ? std::exp(m.value()(k, j) - lse_rows(k, 0)) : 0.0)
                                          .epsilon(1e-14));
  // The batch axis in front of every reduced axis of the cube: jacfwd against jacrev.
  for (const std::ptrdiff_t axis : {0, 1}) {
    INFO("axis " << axis);
    const auto f = [axis](const Inputs& v) { return Inputs{tg::logsumexp(v[0], axis)}; };
    const TD forward = tg::jacfwd<double>(f, {cube})[0][0], reverse = tg::jacrev<double>(f, {cube})[0][0];
    CHECK(all_close(forward.value(), reverse.value(), 1e-13));
  }
  // A float row longer than one block of the kernel's exponentials, against a sum in double; its
  // gradient (the plain backward, from the kept exponentials) against the softmax in double.
  const Arr long_row = random_array({3000}, 612, -20, 20);
  double total = 0;
  for (const double v : long_row) total += std::exp(v);
  const tg::Tensor<float> as_float(xt::cast<float>(long_row), true);
  {
    tg::Tape tape;
    const tg::Tensor<float> y = tg::logsumexp(as_float, 0);
    CHECK(y.item() == doctest::Approx(std::log(total)).epsilon(1e-6));
    y.backward();
  }
  const Arr softmax = xt::exp(long_row - std::log(total));
  CHECK(all_close(Arr(xt::cast<double>(as_float.grad())), softmax, 1e-6));
  // No finite shift exists where the maximum is infinite or NaN: the result is that maximum.
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  CHECK(tg::logsumexp(TD(Arr{1., inf, 2.}), 0).item() == inf);
  CHECK(tg::logsumexp(TD(Arr{-inf, -inf}), 0).item() == -inf);
  CHECK(std::isnan(tg::logsumexp(TD(Arr{1., nan, 2.}), 0).item()));
  CHECK(std::isnan(tg::logsumexp(TD(Arr{nan, inf}), 0).item()));
  // log of an empty sum.
  const Arr empty = tg::logsumexp(TD(Arr::from_shape({2, 0})), 1).value();
  REQUIRE(same_shape(empty, {2}));
  CHECK(empty(0) == -inf);
  CHECK(empty(1) == -inf);
}

TEST_CASE("losses: values against closed forms") {
  const Arr p{{1., 2.}, {3., 4.}}, t{{0., 2.}, {5., 3.}};
  CHECK(tg::mse_loss(TD(p), TD(t)).item() == doctest::Approx((1. + 0. + 4. + 1.) / 4.).epsilon(1e-13));
  // The notes' E = 1/2 sum (o - l)^2
  CHECK((0.5 * tg::mse_loss(TD(p), TD(t), tg::Reduction::sum)).item() == doctest::Approx(3.0).epsilon(1e-13));
  const Arr logits{{2., 1., 0.}, {0., 0., 0.}};
  const double ce0 = -std::log(std::exp(2.) / (std::exp(2.) + std::exp(1.) + 1.));
  const double ce1 = std::log(3.);
  CHECK(tg::cross_entropy(TD(logits), {0, 2}).item() == doctest::Approx((ce0 + ce1) / 2).epsilon(1e-13));
}

namespace {
// PyTorch 1.13's values (float64), printed by tests/torch_reference.py ("losses").
const Reference ce_plain{{}, {1.104712740498905}};
const Reference ce_weighted_smoothed{{}, {1.3204830544983692}};
const Reference ce_weighted_smoothed_sum{{}, {5.281932217993477}};
const Reference ce_smoothed_none{{4}, {1.5599659267460293, 0.4865535980437573, 0.0, 1.3180252034091142}};
const Reference nll_weighted{{}, {1.3142074548809946}};
const Reference bce_logits{{}, {1.0742342896823505}};
const Reference bce_logits_pos_weight_sum{{}, {29.07994604208931}};
const Reference huber{{}, {1.2663153731492116}};
const Reference huber_none{{4, 3}, {1.7272107719522953, 1.6174403935869166, 1.1730696737708035, 0.44106665199574735, 4.459249173172672e-07, 0.5335117051740097, 1.5259795307748463, 2.3434108467885797, 2.866847289642341, 3.01144732544104, 2.7413960747468606, 2.0787297722554765}};
}  // namespace

TEST_CASE("class losses and the losses of values: PyTorch's results with weights, ignored labels, smoothing, every reduction") {
  const TD logits(Arr(filled({4, 3}, input_at) * 3.0));
  const std::vector<std::int64_t> labels{2, 0, -100, 1};
  tg::CrossEntropyOptions o;
  o.weight = {0.5, 2.0, 1.5};
  o.label_smoothing = 0.2;
  CHECK(matches(tg::cross_entropy(logits, labels), ce_plain));
  CHECK(matches(tg::cross_entropy(logits, labels, o), ce_weighted_smoothed));
  o.reduction = tg::Reduction::sum;
  CHECK(matches(tg::cross_entropy(logits, labels, o), ce_weighted_smoothed_sum));
  tg::CrossEntropyOptions none(tg::Reduction::none);
  none.label_smoothing = 0.1;
  CHECK(matches(tg::cross_entropy(logits, labels, none), ce_smoothed_none));
  tg::CrossEntropyOptions weighted;
  weighted.weight = {0.5, 2.0, 1.5};
  CHECK(matches(tg::nll_loss(tg::log_softmax(logits, 1), labels, weighted), nll_weighted));
  // Labels of any integer type; every label ignored gives 0 and no gradient.
  CHECK(tg::cross_entropy(logits, std::vector<int>{2, 0, -100, 1}).item() == tg::cross_entropy(logits, labels).item());
  CHECK(tg::cross_entropy(logits, std::vector<unsigned char>{2, 0, 1, 1}).item() ==
        tg::cross_entropy(logits, std::vector<std::int64_t>{2, 0, 1, 1}).item());
  {
    tg::Tape tape;
    const TD x(logits.value(), true);
    const TD none_kept = tg::cross_entropy(x, {-100, -100, -100, -100});
    CHECK(none_kept.item() == 0.0);
    none_kept.backward();
    CHECK(xt::all(xt::equal(x.grad(), 0.0)));
  }

  const TD targets(Arr(filled({4, 3}, state_at) + 0.5));
  CHECK(matches(tg::binary_cross_entropy_with_logits(logits, targets), bce_logits));
  CHECK(matches(tg::binary_cross_entropy_with_logits(logits, targets, tg::Reduction::sum, 3.0), bce_logits_pos_weight_sum));
  CHECK(matches(tg::huber_loss(logits, targets, 0.7), huber));
  CHECK(matches(tg::huber_loss(logits, targets, 1.0, tg::Reduction::none), huber_none));
  // Stable where the naive formula overflows: log(1 + exp(1000)) = 1000.
  CHECK(tg::binary_cross_entropy_with_logits(TD(Arr{-1000.0}), TD(Arr{1.0})).item() == doctest::Approx(1000.0).epsilon(1e-13));

  check_gradients([&](const Inputs& x) { return tg::cross_entropy(x[0], labels, o); }, {leaf({4, 3}, 3400)}, forward_too());
  check_gradients([&](const Inputs& x) { return tg::cross_entropy(x[0], labels, none); }, {leaf({4, 3}, 3401)}, forward_too());
  check_gradients([&](const Inputs& x) { return tg::binary_cross_entropy_with_logits(x[0] * 3.0, x[1], tg::Reduction::mean, 2.0); },
                  {leaf({4, 3}, 3402), leaf({4, 3}, 3403, 0.0, 1.0)}, forward_too());
  // Away from the kink |d| = delta, where the second derivative jumps.
  check_gradients([&](const Inputs& x) { return tg::huber_loss(x[0], x[1], 0.3, tg::Reduction::sum); },
                  {TD(Arr{0.1, 0.9, -0.5}, true), TD(Arr{0.0, 0.1, 0.3}, true)}, forward_too());
}
