// Built against an installed tapegrad: d/dx sum(x * x) = 2x, checked against the closed form.
#include <tapegrad/tapegrad.hpp>

#include <cmath>
#include <iostream>

namespace tg = tapegrad;

int main() {
  tg::Tensor<double> x(xt::xarray<double>{1.0, -2.0, 3.0}, true);
  tg::Tape tape;
  tg::sum(x * x).backward();
  for (std::size_t i = 0; i < 3; ++i)
    if (std::abs(x.grad()(i) - 2 * x.value()(i)) > 1e-12) {
      std::cerr << "consumer: wrong gradient at " << i << "\n";
      return 1;
    }
  std::cout << "consumer: installed tapegrad works\n";
  return 0;
}
