// Newton's method with tapegrad's function transforms: the gradient by reverse mode, the Hessian
// by forward mode over it (tg::hessian), on Rosenbrock's function from its classic start
// (-1.2, 1). Prints each step; exits 0 once the gradient is below 1e-10.
#include <cmath>
#include <cstdio>
#include <tapegrad/tapegrad.hpp>

namespace tg = tapegrad;
using TD = tg::Tensor<double>;

// f(x) = (1 - x0)^2 + 100 (x1 - x0^2)^2
TD rosenbrock(const std::vector<TD>& in) {
  const TD x0 = tg::slice(in[0], 0, 0, 1), x1 = tg::slice(in[0], 0, 1, 2);
  const TD a = 1.0 - x0, b = x1 - x0 * x0;
  return tg::sum(a * a + b * b * 100.0);
}

int main() {
  xt::xarray<double> x{-1.2, 1.0};
  for (int step = 0; step < 50; ++step) {
    TD leaf(x, true);
    xt::xarray<double> g;
    double f = 0;
    {
      tg::Tape tape;
      const TD y = rosenbrock({leaf});
      f = y.item();
      g = tg::grad(y, {leaf})[0].value();
    }
    const double norm = std::sqrt(g(0) * g(0) + g(1) * g(1));
    std::printf("step %2d  x = (%.12f, %.12f)  f = %.3e  |grad| = %.3e\n", step, x(0), x(1), f, norm);
    if (norm < 1e-10) {
      std::printf("converged to (%.12f, %.12f)\n", x(0), x(1));
      return 0;
    }
    const xt::xarray<double> H = tg::hessian<double>(rosenbrock, {leaf})[0][0].value();   // 2 x 2
    // Newton step: solve H d = -g (Cramer's rule for 2 x 2).
    const double det = H(0, 0) * H(1, 1) - H(0, 1) * H(1, 0);
    const double d0 = (-g(0) * H(1, 1) + g(1) * H(0, 1)) / det, d1 = (-g(1) * H(0, 0) + g(0) * H(1, 0)) / det;
    x = xt::xarray<double>{x(0) + d0, x(1) + d1};
  }
  std::printf("did not converge\n");
  return 1;
}
