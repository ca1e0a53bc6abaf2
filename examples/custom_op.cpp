// A custom op written in user code: softplus(x) = log(1 + e^x), with its vector-Jacobian product,
// recorded through tg::record (the path every built-in op takes), then gradient-checked.
#include <tapegrad/tapegrad.hpp>

#include <iostream>
#include <xtensor/xio.hpp>

namespace tg = tapegrad;

// y = softplus(x);  dx = grad * sigmoid(x)
template <class T>
tg::Tensor<T> softplus(const tg::Tensor<T>& x) {
  // Forward on values: log1p(e^-|x|) + max(x, 0) does not overflow for large x.
  xt::xarray<T> y = xt::log1p(xt::exp(-xt::abs(x.value()))) + xt::maximum(x.value(), T(0));
  // The VJP uses tapegrad ops, so it can itself be recorded (second derivatives). It reads x
  // through g.input(0) (the entry saved its inputs: Saved::inputs, the default) rather than
  // capturing it.
  return tg::record<T>("softplus", {x}, std::move(y), [](const tg::VjpArgs<T>& g) {
    return std::vector<tg::Tensor<T>>{g.grad * tg::sigmoid(g.input(0))};
  });
}

int main() {
  tg::Tensor<double> x(xt::xarray<double>{-30.0, -1.0, 0.0, 2.0, 40.0}, true);
  tg::Tape tape;
  const tg::Tensor<double> y = tg::sum(softplus(x));
  y.backward();
  std::cout << "softplus(x) summed = " << y.item() << "\ngradient = " << x.grad() << "\n";

  // Second derivative through the custom VJP: softplus'' = sigmoid(x) (1 - sigmoid(x)).
  const tg::Tensor<double> g = tg::grad(y, {x}, /*create_graph=*/true)[0];
  std::cout << "second derivative = " << tg::grad(tg::sum(g), {x})[0].value() << "\n";

  const auto report = tg::gradcheck(
      [](const std::vector<tg::Tensor<double>>& in) { return softplus(in[0]) * in[0]; }, {x});
  std::cout << report;
  return report.ok() ? 0 : 1;
}
