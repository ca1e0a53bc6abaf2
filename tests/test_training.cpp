// A small model (two conv layers + pooling + two linear layers) trained on a synthetic task.
#include "helpers.hpp"

#include <xtensor/xsort.hpp>
#include <xtensor/xview.hpp>

namespace {
// 8x8 images holding a bright horizontal bar (class 0), vertical bar (1) or diagonal (2), plus noise.
void make_batch(std::mt19937& rng, std::size_t n, xt::xarray<float>& images, std::vector<std::size_t>& labels) {
  std::uniform_real_distribution<float> noise(-0.3f, 0.3f);
  std::uniform_int_distribution<int> pos(1, 6), cls(0, 2);
  images = xt::xarray<float>::from_shape({n, 1, 8, 8});
  labels.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    const int c = cls(rng), at = pos(rng);
    labels[i] = std::size_t(c);
    for (int y = 0; y < 8; ++y)
      for (int x = 0; x < 8; ++x) {
        const bool on = c == 0 ? y == at : c == 1 ? x == at : x == y;
        images(i, 0, y, x) = (on ? 1.0f : 0.0f) + noise(rng);
      }
  }
}
}  // namespace

TEST_CASE("a conv-pool-linear model trains on a synthetic task") {
  tg::ManualSeed seed(11);
  tg::Sequential<float> model(tg::Conv2d<float>(1, 4, 3, 1, 1), tg::ReLU<float>(), tg::AvgPool2d<float>(2),
                              tg::Conv2d<float>(4, 8, 3, 1, 1), tg::ReLU<float>(), tg::MaxPool2d<float>(2),
                              tg::Flatten<float>(), tg::Linear<float>(32, 16), tg::ReLU<float>(),
                              tg::Linear<float>(16, 3));
  tg::SGD<float> opt(model.parameters(), 0.05, 0.9);
  std::mt19937 rng(5);
  xt::xarray<float> images;
  std::vector<std::size_t> labels;
  float first = 0, last = 0;
  for (int step = 0; step < 300; ++step) {
    make_batch(rng, 16, images, labels);
    tg::Tape tape;
    const TF loss = tg::cross_entropy(model(TF(images)), labels);
    opt.zero_grad();
    loss.backward();
    opt.step();
    if (step == 0) first = loss.item();
    last = 0.9f * last + 0.1f * loss.item();
  }
  // Held-out accuracy and loss.
  make_batch(rng, 300, images, labels);
  tg::NoGrad no_grad;
  const TF logits = model(TF(images));
  std::size_t correct = 0;
  for (std::size_t i = 0; i < labels.size(); ++i)
    correct += std::size_t(xt::argmax(xt::view(logits.value(), i))() == labels[i]);
  const double accuracy = double(correct) / double(labels.size());
  MESSAGE("first loss " << first << ", smoothed final loss " << last << ", held-out accuracy " << accuracy);
  CHECK(first > 0.9f);   // about log(3) at the start
  CHECK(tg::cross_entropy(logits, labels).item() < 0.2f);
  CHECK(accuracy > 0.95);
}
