// A custom op defined the way a user would: forward on values, VJP with tapegrad's own ops,
// recorded through tg::record, the same path every built-in op takes.
#include "helpers.hpp"

namespace {

// softplus(x) = log(1 + exp(x)), computed stably;  dx = grad * sigmoid(x)
template <class T>
tg::Tensor<T> softplus(const tg::Tensor<T>& x) {
  xt::xarray<T> y = xt::log1p(xt::exp(-xt::abs(x.value()))) + xt::maximum(x.value(), T(0));
  return tg::record<T>("softplus", {x}, std::move(y),
                       [x](const tg::VjpArgs<T>& g) { return std::vector<tg::Tensor<T>>{g.grad * tg::sigmoid(x)}; });
}

}  // namespace

TEST_CASE("a user's custom op: values, gradients, second derivative") {
  const TD x = leaf({3, 4}, 300, -3.0, 3.0);
  CHECK(all_close(softplus(x).value(), Arr(xt::log(1.0 + xt::exp(x.value()))), 1e-12));
  CHECK(softplus(TD(Arr{1000.0})).item() == doctest::Approx(1000.0));
  check_gradients([](const Inputs& in) { return softplus(in[0]) * in[0]; }, {x});
  // The VJP is written with tapegrad ops, so it differentiates again: softplus'' = s (1 - s).
  tg::Tape tape;
  const TD g = tg::grad(tg::sum(softplus(x)), {x}, true)[0];
  const TD h = tg::grad(tg::sum(g), {x})[0];
  const Arr s = 1.0 / (1.0 + xt::exp(-x.value()));
  CHECK(all_close(h.value(), Arr(s * (1.0 - s)), 1e-12));
  // And it appears on the tape under its own name.
  CHECK(tape.str().find("softplus") != std::string::npos);
}

TEST_CASE("a custom op with two inputs where one needs no gradient") {
  // huber(r) with a constant delta tensor
  const TD r = TD(Arr{-3.0, -0.4, 0.2, 2.5}, true), delta(Arr{1.0});
  auto huber = [](const TD& x, const TD& d) {
    const double dv = d.item();
    Arr y = xt::where(xt::abs(x.value()) <= dv, 0.5 * x.value() * x.value(), dv * (xt::abs(x.value()) - 0.5 * dv));
    return tg::record<double>("huber", {x, d}, std::move(y), [x, dv](const tg::VjpArgs<double>& g) {
      CHECK_FALSE(g.needs_grad(1));
      const TD slope(Arr(xt::clip(x.value(), -dv, dv)));
      return std::vector<TD>{g.grad * slope, TD()};
    });
  };
  check_gradients([&](const Inputs& in) { return tg::sum(huber(in[0], delta)); }, {r});
}
