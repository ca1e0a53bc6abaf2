// The first example: a small function of tensors, its value, its gradients, and a gradient check
// of those gradients against finite differences.
#include <tapegrad/tapegrad.hpp>

#include <iostream>
#include <xtensor/xio.hpp>

namespace tg = tapegrad;

// f(x, w, b) = mean(tanh(x w + b)^2) + sum(sqrt(w * w + 1))
template <class T>
tg::Tensor<T> f(const tg::Tensor<T>& x, const tg::Tensor<T>& w, const tg::Tensor<T>& b) {
  const tg::Tensor<T> h = tg::tanh(tg::matmul(x, w) + b);
  return tg::mean(h * h) + tg::sum(tg::sqrt(w * w + T(1)));
}

int main() {
  const tg::Tensor<double> x(xt::xarray<double>{{0.5, -1.0, 2.0}, {1.5, 0.25, -0.75}});
  tg::Tensor<double> w(xt::xarray<double>{{0.1, -0.2}, {0.4, 0.3}, {-0.5, 0.6}}, /*requires_grad=*/true);
  tg::Tensor<double> b(xt::xarray<double>{0.05, -0.1}, /*requires_grad=*/true);

  {
    tg::Tape tape;   // records every op on this thread while alive
    const tg::Tensor<double> y = f(x, w, b);
    y.backward();    // dy/dw and dy/db accumulate into w.grad() and b.grad()
    std::cout << "f(x, w, b) = " << y.item() << "\n\n";
    std::cout << "df/dw =\n" << w.grad() << "\n\ndf/db =\n" << b.grad() << "\n\n";
    std::cout << "the tape (" << tape.size() << " entries):\n" << tape.str() << '\n';
  }   // the tape's memory is released here

  // The same gradients checked against central finite differences.
  tg::GradcheckOptions options;
  options.names = {"w", "b"};
  const tg::GradcheckReport report =
      tg::gradcheck([&](const std::vector<tg::Tensor<double>>& in) { return f(x, in[0], in[1]); }, {w, b}, options);
  std::cout << report;
  return report.ok() ? 0 : 1;
}
