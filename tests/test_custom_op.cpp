// A custom op defined the way a user would: forward on values, VJP with tapegrad's own ops,
// recorded through tg::record, the same path every built-in op takes.
#include "helpers.hpp"

namespace {

// softplus(x) = log(1 + exp(x)), computed stably;  dx = grad * sigmoid(x) (tg::softplus is
// built in: this one is the user's own, and the test compares the two)
template <class T>
tg::Tensor<T> my_softplus(const tg::Tensor<T>& x) {
  xt::xarray<T> y = xt::log1p(xt::exp(-xt::abs(x.value()))) + xt::maximum(x.value(), T(0));
  return tg::record<T>("my_softplus", {x}, std::move(y),
                       [x](const tg::VjpArgs<T>& g) { return std::vector<tg::Tensor<T>>{g.grad * tg::sigmoid(x)}; });
}

}  // namespace

TEST_CASE("a user's custom op: values, gradients, second derivative") {
  const TD x = leaf({3, 4}, 300, -3.0, 3.0);
  CHECK(all_close(my_softplus(x).value(), Arr(xt::log(1.0 + xt::exp(x.value()))), 1e-12));
  CHECK(all_close(my_softplus(x).value(), tg::softplus(x).value(), 1e-15));
  CHECK(my_softplus(TD(Arr{1000.0})).item() == doctest::Approx(1000.0).epsilon(1e-13));
  check_gradients([](const Inputs& in) { return my_softplus(in[0]) * in[0]; }, {x});
  // The VJP is written with tapegrad ops, so it differentiates again: softplus'' = s (1 - s).
  tg::Tape tape;
  const TD g = tg::grad(tg::sum(my_softplus(x)), {x}, true)[0];
  const TD h = tg::grad(tg::sum(g), {x})[0];
  const Arr s = 1.0 / (1.0 + xt::exp(-x.value()));
  CHECK(all_close(h.value(), Arr(s * (1.0 - s)), 1e-12));
  // And it appears on the tape under its own name.
  CHECK(tape.str().find("my_softplus") != std::string::npos);
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

TEST_CASE("a custom op with four inputs: its VJP's std::vector becomes tg::Gradients") {
  // y = a b + c d;  da = grad b, db = grad a, dc = grad d, dd = grad c
  auto two_products = [](const TD& a, const TD& b, const TD& c, const TD& d) {
    Arr y = a.value() * b.value() + c.value() * d.value();
    return tg::record<double>("two_products", {a, b, c, d}, std::move(y), [](const tg::VjpArgs<double>& g) {
      return std::vector<TD>{g.grad * g.input(1), g.grad * g.input(0), g.grad * g.input(3), g.grad * g.input(2)};
    });
  };
  check_gradients([&](const Inputs& in) { return two_products(in[0], in[1], in[2], in[3]); },
                  {leaf({2, 3}, 320), leaf({2, 3}, 321), leaf({2, 3}, 322), leaf({2, 3}, 323)});
  tg::Gradients<double> grads{TD(Arr{1.0}), TD(), TD(Arr{3.0})};
  grads.push_back(TD(Arr{4.0}));
  grads.push_back(TD(Arr{5.0}));
  REQUIRE(grads.size() == 5);
  CHECK(grads[0].item() == 1.0);
  CHECK_FALSE(grads[1].defined());
  CHECK(grads[2].item() == 3.0);
  CHECK(grads[4].item() == 5.0);
}

TEST_CASE("a VJP reads the saved inputs through g.input(i), and only when they were saved") {
  // y = a * b^2 with a captureless VJP: da = grad b^2, db = 2 grad a b
  auto product = [](const TD& a, const TD& b, tg::Saved saved) {
    Arr y = a.value() * b.value() * b.value();
    return tg::record<double>("a_b2", {a, b}, std::move(y), [](const tg::VjpArgs<double>& g) {
      const TD& a = g.input(0);
      const TD& b = g.input(1);
      return std::vector<TD>{g.grad * b * b, g.grad * a * b * 2.0};
    }, saved);
  };
  check_gradients([&](const Inputs& in) { return product(in[0], in[1], tg::Saved::inputs); },
                  {leaf({2, 3}, 310), leaf({2, 3}, 311)});
  // Second order through the saved inputs: d2/da db sum(a b^2) = 2b.
  const TD a = leaf({3}, 312), b = leaf({3}, 313);
  tg::Tape tape;
  const TD da = tg::grad(tg::sum(product(a, b, tg::Saved::inputs_and_output)), {a}, true)[0];
  CHECK(all_close(tg::grad(tg::sum(da), {b})[0].value(), Arr(2.0 * b.value()), 1e-12));
  // An op that said it saves nothing has no inputs to read: a clear error, not a crash.
  const TD y = product(a, b, tg::Saved::nothing);
  CHECK_THROWS_WITH_AS(tg::sum(y).backward(),
                       "backward: a VJP read input 0 of an op that saved 0 inputs (record it with Saved::inputs to read them)",
                       tg::UsageError);
}

TEST_CASE("a VJP reads each input's shape as recorded, of any rank, and converts it to tg::Shape") {
  // y = a * b, b of rank 0 broadcast over a of rank 5;  da = grad * b,  db = sum(grad * a)
  const std::string name = "scale_a_rank_5_tensor_by_a_scalar_named_at_length";   // past any inline string
  std::vector<tg::Shape> seen;
  auto scale = [&](const TD& a, const TD& b) {
    Arr y = a.value() * b.value();
    return tg::record<double>(name, {a, b}, std::move(y), [&seen](const tg::VjpArgs<double>& g) {
      seen = {g.input_shape(0), g.input_shape(1)};
      const tg::Shape scalar = g.input_shape(1);
      return std::vector<TD>{g.grad * g.input(1), tg::sum_to(g.grad * g.input(0), scalar)};
    });
  };
  const TD a = leaf({2, 1, 3, 1, 2}, 330), b(Arr(2.5), true);
  check_gradients([&](const Inputs& in) { return scale(in[0], in[1]); }, {a, b});
  REQUIRE(seen.size() == 2);
  CHECK(seen[0] == tg::Shape{2, 1, 3, 1, 2});
  CHECK(seen[1] == tg::Shape{});
  tg::Tape tape;
  scale(a, b);
  CHECK(tape.str().find("#0 " + name + " (2, 1, 3, 1, 2) () -> (2, 1, 3, 1, 2)") != std::string::npos);
}
