// The same epoch with LibTorch (Debian's libtorch-dev): the same data, order, model and recipe.
#include <torch/torch.h>

#include <iostream>

#include "common.hpp"

namespace tg = tapegrad;

int main(int argc, char** argv) {
  bench::same_allocator_settings();
  const std::string dir = argc > 1 ? argv[1] : tg::fashion_mnist_default_dir;
  torch::set_num_threads(1);
  tg::set_num_threads(1);   // OpenBLAS, which LibTorch also calls
  const tg::ImageDataset train = tg::load_fashion_mnist(dir, true), test = tg::load_fashion_mnist(dir, false);
  const std::size_t n = train.labels.size(), batch = 64;
  auto to_tensor = [](const tg::ImageDataset& d) {
    return torch::from_blob(const_cast<float*>(d.images.data()), {long(d.labels.size()), 1, 28, 28}).clone();
  };
  auto to_labels = [](const tg::ImageDataset& d) {
    std::vector<long> l(d.labels.begin(), d.labels.end());
    return torch::tensor(l, torch::kLong);
  };
  const torch::Tensor x_train = to_tensor(train), y_train = to_labels(train);
  const torch::Tensor x_test = to_tensor(test), y_test = to_labels(test);
  torch::manual_seed(1);
  torch::nn::Sequential model(
      torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 6, 5).padding(2)), torch::nn::ReLU(), torch::nn::AvgPool2d(2),
      torch::nn::Conv2d(torch::nn::Conv2dOptions(6, 16, 5)), torch::nn::ReLU(), torch::nn::AvgPool2d(2),
      torch::nn::Flatten(), torch::nn::Linear(400, 120), torch::nn::ReLU(), torch::nn::Linear(120, 84), torch::nn::ReLU(),
      torch::nn::Linear(84, 10));
  torch::optim::SGD opt(model->parameters(), torch::optim::SGDOptions(0.05).momentum(0.9));
  const auto order = tg::shuffled_indices(n, 1000004);
  std::vector<long> idx(order.begin(), order.end());
  const torch::Tensor perm = torch::tensor(idx, torch::kLong);
  const auto start = std::chrono::steady_clock::now();
  for (std::size_t b = 0; b < n; b += batch) {
    const long e = long(std::min(n, b + batch));
    const torch::Tensor rows = perm.slice(0, long(b), e);
    const torch::Tensor x = x_train.index_select(0, rows), y = y_train.index_select(0, rows);
    const torch::Tensor loss = torch::nn::functional::cross_entropy(model->forward(x), y);
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  const double seconds = bench::seconds_since(start);
  torch::NoGradGuard no_grad;
  const double accuracy = model->forward(x_test).argmax(1).eq(y_test).to(torch::kDouble).mean().item<double>();
  std::cout << "libtorch epoch_seconds " << seconds << " test_accuracy " << accuracy << std::endl;
  return 0;
}
