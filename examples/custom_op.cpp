// A custom op written in user code: softsign(x) = x / (1 + |x|), with its vector-Jacobian product,
// recorded through tg::record (the path every built-in op takes), then gradient-checked.
#include <tapegrad/tapegrad.hpp>

#include <iostream>
#include <xtensor/xio.hpp>

namespace tg = tapegrad;

// y = softsign(x) = x / (1 + |x|);  dx = grad / (1 + |x|)^2
template <class T>
tg::Tensor<T> softsign(const tg::Tensor<T>& x) {
  // Forward on values.
  xt::xarray<T> y = x.value() / (T(1) + xt::abs(x.value()));
  // The VJP uses tapegrad ops, so it can itself be recorded (second derivatives). It reads x
  // through g.input(0) (the entry saved its inputs: Saved::inputs, the default) rather than
  // capturing it.
  return tg::record<T>("softsign", {x}, std::move(y), [](const tg::VjpArgs<T>& g) {
    const tg::Tensor<T> d = tg::abs(g.input(0)) + T(1);
    return std::vector<tg::Tensor<T>>{g.grad / (d * d)};
  });
}

int main() {
  tg::Tensor<double> x(xt::xarray<double>{-30.0, -1.0, 0.5, 2.0, 40.0}, true);
  tg::Tape tape;
  const tg::Tensor<double> y = tg::sum(softsign(x));
  y.backward();
  std::cout << "softsign(x) summed = " << y.item() << "\ngradient = " << x.grad() << "\n";

  // Second derivative through the custom VJP: softsign'' = -2 sign(x) / (1 + |x|)^3.
  const tg::Tensor<double> g = tg::grad(y, {x}, /*create_graph=*/true)[0];
  std::cout << "second derivative = " << tg::grad(tg::sum(g), {x})[0].value() << "\n";

  const auto report = tg::gradcheck(
      [](const std::vector<tg::Tensor<double>>& in) { return softsign(in[0]) * in[0]; }, {x});
  std::cout << report;
  return report.ok() ? 0 : 1;
}
