// Per-op cost of recording and back-propagating a chain of small elementwise ops (16 floats):
// tapegrad against LibTorch in the same process, alternating, one thread each. Prints the median
// microseconds per op for each side and the ratio tapegrad / LibTorch.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include <tapegrad/tapegrad.hpp>

namespace tg = tapegrad;

namespace {
constexpr int chain = 100;   // ops per pass: 50 x (mul by a tensor, tanh)
constexpr int repetitions = 200;

double tapegrad_pass(const tg::Tensor<float>& x, const tg::Tensor<float>& w) {
  const auto start = std::chrono::steady_clock::now();
  {
    tg::Tape tape;
    tg::Tensor<float> y = x;
    for (int i = 0; i < chain / 2; ++i) y = tg::tanh(y * w);
    tg::sum(y).backward();
  }
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
}

double libtorch_pass(const torch::Tensor& x, const torch::Tensor& w) {
  const auto start = std::chrono::steady_clock::now();
  torch::Tensor y = x;
  for (int i = 0; i < chain / 2; ++i) y = torch::tanh(y * w);
  y.sum().backward();
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}
}  // namespace

int main() {
  torch::set_num_threads(1);
  tg::set_num_threads(1);
  const tg::Tensor<float> tx(xt::xarray<float>(xt::ones<float>({16}) * 0.5f), true), tw(xt::xarray<float>(xt::ones<float>({16}) * 0.9f));
  const torch::Tensor lx = torch::full({16}, 0.5f).requires_grad_(true), lw = torch::full({16}, 0.9f);
  for (int i = 0; i < 20; ++i) {   // warm-up
    tapegrad_pass(tx, tw);
    libtorch_pass(lx, lw);
  }
  std::vector<double> t, l;
  for (int i = 0; i < repetitions; ++i) {
    t.push_back(tapegrad_pass(tx, tw) / chain);
    l.push_back(libtorch_pass(lx, lw) / chain);
  }
  std::printf("elementwise op recorded + back-propagated (16 floats), median of %d passes of %d ops:\n", repetitions, chain);
  std::printf("  tapegrad %.2f us/op, LibTorch %.2f us/op, ratio tapegrad/LibTorch %.2f\n", median(t), median(l),
              median(t) / median(l));
  return 0;
}
