// tg::Parallel: batched kernels split over threads give bitwise the results of one thread.
#include "helpers.hpp"

#include <tapegrad/ops/kernels.hpp>

namespace {
// Forward and backward of a conv + pool model in float; returns the output and every gradient.
std::vector<xt::xarray<float>> run_model(const xt::xarray<float>& images) {
  tg::ManualSeed seed(9);
  tg::Sequential<float> model(tg::Conv2d<float>(2, 4, 3, 1, 1), tg::ReLU<float>(), tg::MaxPool2d<float>(2),
                              tg::Conv2d<float>(4, 6, 3, tg::Conv2dOptions{2, 1}), tg::Tanh<float>(),
                              tg::AvgPool2d<float>(2, 1, 1), tg::Flatten<float>());
  const TF x(images, true);
  tg::Tape tape;
  const TF y = model(x);
  tg::sum(y * y).backward();
  std::vector<xt::xarray<float>> out{y.value(), x.grad()};
  for (const auto& p : model.parameters()) out.push_back(p.grad());
  return out;
}
}  // namespace

TEST_CASE("threads of tg::Parallel give bitwise the outputs and gradients of one thread") {
  // 19 images: uneven splits, and three blocks of the weight gradient's per-image sums (8, 8, 3)
  xt::xarray<float> images = xt::cast<float>(random_array({19, 2, 12, 12}, 5));
  const auto serial = run_model(images);
  for (const int threads : {2, 3}) {
    tg::Parallel parallel(threads);
    const auto split = run_model(images);
    REQUIRE(split.size() == serial.size());
    for (std::size_t i = 0; i < serial.size(); ++i) {
      INFO("threads ", threads, ", array ", i);
      CHECK(split[i].shape() == serial[i].shape());
      CHECK(std::equal(split[i].begin(), split[i].end(), serial[i].begin()));
    }
  }
}

TEST_CASE("tg::Parallel restores OpenBLAS's threads, nests, and refuses a bad thread count") {
  tg::set_num_threads(2);
  {
    tg::Parallel outer(2);
    CHECK(tg::num_threads() == 1);   // OpenBLAS on one thread while the pool splits the work
    {
      tg::Parallel inner(3);
      CHECK(tg::num_threads() == 1);
    }
  }
  CHECK(tg::num_threads() == 2);
  tg::set_num_threads(1);
  CHECK_THROWS_WITH_AS(tg::Parallel(0), "Parallel: threads must be between 1 and 1024, got 0", tg::ValueError);
}

TEST_CASE("libxsmm's kernels take a product only where measured faster, and only with OpenBLAS on one thread") {
  const int blas_threads = tg::num_threads();
  tg::set_num_threads(1);
  CHECK(tg::detail::prefers_jit_gemm(false, 64, 256, 784, sizeof(double)));   // the MLP step's forward
  CHECK(tg::detail::prefers_jit_gemm(false, 784, 256, 64, sizeof(float)));    // and its weight gradient
  CHECK_FALSE(tg::detail::prefers_jit_gemm(true, 64, 784, 256, sizeof(double)));       // B transposed
  CHECK_FALSE(tg::detail::prefers_jit_gemm(false, 64, 10, 256, sizeof(double)));       // 10 columns
  CHECK_FALSE(tg::detail::prefers_jit_gemm(false, 64, 84, 120, sizeof(double)));       // first factor 64 x 120
  CHECK_FALSE(tg::detail::prefers_jit_gemm(false, 1024, 1024, 1024, sizeof(float)));   // beyond the L2 cache
  tg::set_num_threads(2);   // OpenBLAS splits the product over its threads; a kernel would run on one
  CHECK_FALSE(tg::detail::prefers_jit_gemm(false, 64, 256, 784, sizeof(double)));
  {
    tg::Parallel parallel(2);   // OpenBLAS back on one thread: tapegrad's panels run the kernels
    CHECK(tg::detail::prefers_jit_gemm(false, 64, 256, 784, sizeof(double)));
  }
  tg::set_num_threads(blas_threads);
}

TEST_CASE("parallel threads and the tape: a gradient check of conv2d under tg::Parallel") {
  tg::Parallel parallel(2);
  check_gradients([](const Inputs& in) { return tg::conv2d(in[0], in[1], in[2], 1, 1); },
                  {leaf({3, 2, 5, 5}, 1), leaf({4, 2, 3, 3}, 2), leaf({4}, 3)});
}

TEST_CASE("large elementwise ops split in chunks over threads give bitwise the results of one thread") {
  // 100,003 elements: four chunks of 2^15, the last one short.
  const xt::xarray<float> a = xt::cast<float>(random_array({100003}, 6)), b = xt::cast<float>(random_array({100003}, 7));
  auto run = [&] {
    const TF x(a, true), y(b, true);
    tg::Tape tape;
    const TF z = tg::relu(x) * tg::tanh(y) + tg::exp(x) / (y * y + 1.0f);
    tg::sum(z * z).backward();
    return std::vector<xt::xarray<float>>{z.value(), x.grad(), y.grad()};
  };
  const auto serial = run();
  tg::Parallel parallel(2);
  const auto split = run();
  for (std::size_t i = 0; i < serial.size(); ++i) {
    INFO("array ", i);
    CHECK(std::equal(split[i].begin(), split[i].end(), serial[i].begin(), serial[i].end()));
  }
}

TEST_CASE("a large matrix product split by columns over threads, and the optimizer's update, match one thread") {
  // 64 x 784 @ 784 x 256 (12.8 M multiply-adds): split into panels of 64 columns. OpenBLAS
  // computes each element the same in a panel as in one whole call, so the bits match those of
  // one call on one OpenBLAS thread (its own threads split the product their own way).
  const int blas_threads = tg::num_threads();
  tg::set_num_threads(1);
  const xt::xarray<float> images = xt::cast<float>(random_array({64, 784}, 8));
  auto run = [&] {
    tg::ManualSeed seed(3);
    tg::Linear<float> layer(784, 256);
    tg::SGD<float> opt(layer.parameters(), 0.1, 0.9);
    std::vector<xt::xarray<float>> out;
    for (int step = 0; step < 2; ++step) {
      tg::Tape tape;
      const TF y = tg::relu(layer(TF(images)));
      tg::sum(y * y).backward();
      out.push_back(y.value());
      for (const auto& p : layer.parameters()) out.push_back(p.grad());
      opt.step();
      opt.zero_grad();
    }
    for (const auto& p : layer.parameters()) out.push_back(p.value());
    return out;
  };
  const auto serial = run();
  for (const int threads : {2, 3}) {
    tg::Parallel parallel(threads);
    const auto split = run();
    REQUIRE(split.size() == serial.size());
    for (std::size_t i = 0; i < serial.size(); ++i) {
      INFO("threads ", threads, ", array ", i);
      CHECK(std::equal(split[i].begin(), split[i].end(), serial[i].begin(), serial[i].end()));
    }
  }
  tg::set_num_threads(blas_threads);
}

TEST_CASE("a tall product split by rows over threads matches one thread bitwise, on libxsmm's kernels") {
  // 1024 x 64 @ 64 x 100 (6.6 M multiply-adds) is split into panels of 64 rows, and its first
  // factor (256 KB in float, 512 KB in double) is within detail::prefers_jit_gemm: every panel runs
  // libxsmm's kernels, on a block of 64 columns and one of 36. libxsmm's AVX-512 double kernels
  // round such a 36-column block differently for different row counts, so this fails unless the
  // panels run the same kernels as the whole product. a's gradient (B transposed) is split by rows
  // on OpenBLAS; b's (64 x 1024 @ 1024 x 100) runs whole on libxsmm.
  const int blas_threads = tg::num_threads();
  tg::set_num_threads(1);
  CHECK(tg::detail::prefers_jit_gemm(false, 1024, 100, 64, sizeof(double)));
  CHECK(tg::detail::prefers_jit_gemm(false, 1024, 100, 64, sizeof(float)));
  auto run = [](auto zero) {
    using T = decltype(zero);
    const tg::Tensor<T> a(xt::xarray<T>(xt::cast<T>(random_array({1024, 64}, 10))), true);
    const tg::Tensor<T> b(xt::xarray<T>(xt::cast<T>(random_array({64, 100}, 11))), true);
    tg::Tape tape;
    const tg::Tensor<T> c = tg::matmul(a, b);
    tg::sum(c * c).backward();
    return std::vector<xt::xarray<T>>{c.value(), a.grad(), b.grad()};
  };
  const auto serial_float = run(0.0f);
  const auto serial_double = run(0.0);
  for (const int threads : {2, 3}) {
    tg::Parallel parallel(threads);
    const auto split_float = run(0.0f);
    const auto split_double = run(0.0);
    for (std::size_t i = 0; i < serial_float.size(); ++i) {
      INFO("threads ", threads, ", array ", i);
      CHECK(split_float[i] == serial_float[i]);
      CHECK(split_double[i] == serial_double[i]);
    }
  }
  tg::set_num_threads(blas_threads);
}
