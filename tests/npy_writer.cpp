// Writes files for tests/numpy_reads.py, which checks that NumPy reads them as written.
#include <tapegrad/tapegrad.hpp>

#include <iostream>
#include <xtensor/xbuilder.hpp>

namespace tg = tapegrad;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: npy_writer DIR\n";
    return 2;
  }
  const std::string dir = argv[1];
  tg::Sequential<double> model(tg::Linear<double>(3, 2));
  auto params = model.named_parameters();   // "0.weight", "0.bias"
  params[0].second.assign(xt::reshape_view(xt::arange(6.0), {3, 2}) / 10);
  params[1].second.assign(xt::xarray<double>{0.5, -0.5});
  tg::save_parameters(model, dir + "/model.npz");
  tg::save_npy(dir + "/f4.npy", xt::xarray<float>(xt::reshape_view(xt::arange(12.0f), {3, 4})));
  tg::save_npy(dir + "/scalar.npy", xt::xarray<double>(2.5));
  return 0;
}
