// One epoch of LeNet-5 on Fashion-MNIST with tapegrad (SGD lr 0.05, momentum 0.9, batch 64):
// prints the epoch time and the test accuracy. See bench/lenet_epoch/run.
#include <cstdlib>
#include <iostream>

#include "common.hpp"

namespace tg = tapegrad;

int main(int argc, char** argv) {
  bench::same_allocator_settings();
  const std::string dir = argc > 1 ? argv[1] : tg::fashion_mnist_default_dir;
  tg::set_num_threads(1);
  const tg::ImageDataset train = tg::load_fashion_mnist(dir, true), test = tg::load_fashion_mnist(dir, false);
  tg::ManualSeed seed(1);
  tg::Sequential<float> model(tg::Conv2d<float>(1, 6, 5, 1, 2), tg::ReLU<float>(), tg::AvgPool2d<float>(2),
                              tg::Conv2d<float>(6, 16, 5), tg::ReLU<float>(), tg::AvgPool2d<float>(2), tg::Flatten<float>(),
                              tg::Linear<float>(400, 120), tg::ReLU<float>(), tg::Linear<float>(120, 84), tg::ReLU<float>(),
                              tg::Linear<float>(84, 10));
  tg::SGD<float> opt(model.parameters(), 0.05, 0.9);
  const std::size_t n = train.labels.size(), batch = 64, pixels = 28 * 28;
  const auto order = tg::shuffled_indices(n, 1000004);
  xt::xarray<float> images = xt::xarray<float>::from_shape({batch, 1, 28, 28});
  std::vector<std::size_t> labels(batch);
  const auto start = std::chrono::steady_clock::now();
  for (std::size_t b = 0; b < n; b += batch) {
    const std::size_t e = std::min(n, b + batch);
    if (e - b != images.shape()[0]) images = xt::xarray<float>::from_shape({e - b, 1, 28, 28});
    labels.resize(e - b);
    for (std::size_t i = b; i < e; ++i) {
      std::copy_n(train.images.data() + order[i] * pixels, pixels, images.data() + (i - b) * pixels);
      labels[i - b] = train.labels[order[i]];
    }
    tg::Tape tape;
    const tg::Tensor<float> loss = tg::cross_entropy(model(tg::Tensor<float>(images)), labels);
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  const double seconds = bench::seconds_since(start);
  tg::NoGrad no_grad;
  const tg::Tensor<float> logits = model(tg::Tensor<float>(test.images));
  std::size_t correct = 0;
  for (std::size_t i = 0; i < test.labels.size(); ++i) {
    std::size_t best = 0;
    for (std::size_t k = 1; k < 10; ++k)
      if (logits.value()(i, k) > logits.value()(i, best)) best = k;
    correct += best == test.labels[i];
  }
  std::cout << "tapegrad epoch_seconds " << seconds << " test_accuracy " << double(correct) / double(test.labels.size())
            << std::endl;
  return 0;
}
