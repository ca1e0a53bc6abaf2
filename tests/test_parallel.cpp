// tg::Parallel: work split over threads gives bitwise the results of one thread, whatever kernels
// OpenBLAS and libxsmm pick on this host.
#include "helpers.hpp"

#include <tapegrad/ops/kernels.hpp>

namespace {
// Runs f() once on this thread, then under tg::Parallel with 2 and 3 threads, and checks that every
// array it returns is bitwise the same.
template <class F>
void check_same_bits_at_any_thread_count(F f) {
  // The reference: this thread alone, with OpenBLAS on one thread as under tg::Parallel (on
  // several, OpenBLAS splits a product its own way).
  const auto serial = [&] {
    const BlasThreads one_blas_thread(1);
    return f();
  }();
  for (const int threads : {2, 3}) {
    tg::Parallel parallel(threads);
    const auto split = f();
    REQUIRE(split.size() == serial.size());
    for (std::size_t i = 0; i < serial.size(); ++i) {
      INFO("threads ", threads, ", array ", i);
      CHECK(split[i].shape() == serial[i].shape());
      CHECK(std::equal(split[i].begin(), split[i].end(), serial[i].begin(), serial[i].end()));
    }
  }
}

// c = a @ b (b transposed when tb) and the gradients of sum(c * c): the product and both gradient
// products, each split into pieces when large.
template <class T>
std::vector<xt::xarray<T>> product_and_gradients(const tg::Shape& a_shape, const tg::Shape& b_shape, bool tb) {
  const tg::Tensor<T> a(xt::xarray<T>(xt::cast<T>(random_array(a_shape, 10))), true);
  const tg::Tensor<T> b(xt::xarray<T>(xt::cast<T>(random_array(b_shape, 11))), true);
  tg::Tape tape;
  const tg::Tensor<T> c = tg::matmul(a, b, false, tb);
  tg::sum(c * c).backward();
  return {c.value(), a.grad(), b.grad()};
}

// Forward and backward of a conv + pool model; returns the output and every gradient.
template <class T>
std::vector<xt::xarray<T>> run_model(const xt::xarray<T>& images) {
  tg::ManualSeed seed(9);
  tg::Sequential<T> model(tg::Conv2d<T>(2, 4, 3, 1, 1), tg::ReLU<T>(), tg::MaxPool2d<T>(2),
                          tg::Conv2d<T>(4, 6, 3, tg::Conv2dOptions{2, 1}), tg::Tanh<T>(), tg::AvgPool2d<T>(2, 1, 1),
                          tg::Flatten<T>());
  const tg::Tensor<T> x(images, true);
  tg::Tape tape;
  const tg::Tensor<T> y = model(x);
  tg::sum(y * y).backward();
  std::vector<xt::xarray<T>> out{y.value(), x.grad()};
  for (const auto& p : model.parameters()) out.push_back(p.grad());
  return out;
}
}  // namespace

TEST_CASE("convolutions, pooling and their gradients under tg::Parallel threads give one thread's bits") {
  // 19 images: uneven splits, and three blocks of the weight gradient's per-image sums (8, 8, 3)
  const xt::xarray<double> images = random_array({19, 2, 12, 12}, 5);
  const xt::xarray<float> images_float = xt::cast<float>(images);
  check_same_bits_at_any_thread_count([&] { return run_model(images_float); });
  check_same_bits_at_any_thread_count([&] { return run_model(images); });
}

TEST_CASE("tg::Parallel restores OpenBLAS's threads, nests, and refuses a bad thread count") {
  const BlasThreads two(2);
  {
    tg::Parallel outer(2);
    CHECK(tg::num_threads() == 1);   // OpenBLAS on one thread while the pool splits the work
    {
      tg::Parallel inner(3);
      CHECK(tg::num_threads() == 1);
    }
  }
  CHECK(tg::num_threads() == 2);
  CHECK_THROWS_WITH_AS(tg::Parallel(0), "Parallel: threads must be between 1 and 1024, got 0", tg::ValueError);
}

TEST_CASE("the choice of libxsmm's kernels: never without a kernel, never where OpenBLAS would split, the shape alone under a guard") {
  // What the rule guarantees, not its tuned thresholds (a retune keeps these true).
  struct Product { std::size_t m, n, k, element_size; };
  const std::vector<Product> products{{64, 256, 784, 8}, {784, 256, 64, 4}, {64, 84, 120, 8}, {6, 784, 25, 4},
                                      {6, 25, 784, 4},   {64, 10, 256, 8},  {1024, 1024, 1024, 4}, {2, 3, 4, 8}};
  const auto prefers = [](const Product& p, bool tb = false) { return tg::detail::prefers_jit_gemm(tb, p.m, p.n, p.k, p.element_size); };
  std::vector<bool> alone;
  {
    const BlasThreads one(1);
    for (const Product& p : products) {
      alone.push_back(prefers(p));
      CHECK_FALSE(prefers(p, true));   // B transposed: libxsmm has no kernel for it
      if (!tg::detail::jit_gemm_built()) CHECK_FALSE(alone.back());
    }
  }
  // The kernels take some product the examples run (else the JIT path would go untested), where built.
  CHECK((std::count(alone.begin(), alone.end(), true) > 0) == tg::detail::jit_gemm_built());
  {
    const BlasThreads two(2);   // OpenBLAS may split a product over its threads; a kernel runs on one
    for (std::size_t i = 0; i < products.size(); ++i)
      if (prefers(products[i])) CHECK(alone[i]);
    tg::Parallel parallel(2);   // under a guard the choice depends on the shape alone
    for (std::size_t i = 0; i < products.size(); ++i) CHECK(prefers(products[i]) == alone[i]);
    tg::set_num_threads(2);   // even if another thread's guard set OpenBLAS's count meanwhile
    for (std::size_t i = 0; i < products.size(); ++i) CHECK(prefers(products[i]) == alone[i]);
  }
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
  check_same_bits_at_any_thread_count(run);
}

TEST_CASE("single large products split by rows and by columns, on libxsmm's kernels and on OpenBLAS, give one thread's bits") {
  // The pieces of a large product depend on its shape alone, so 1, 2 and 3 threads give the same
  // bits whatever kernels OpenBLAS or libxsmm use on this host (OPENBLAS_CORETYPE included).
  const int blas_threads = tg::num_threads();
  tg::set_num_threads(1);
  struct Case {
    const char* what;
    tg::Shape a, b;
    bool tb, jit;
  };
  const Case cases[] = {
      // c by rows on libxsmm (64-row pieces); a's gradient by rows on OpenBLAS (B transposed: 256-row pieces)
      {"tall: 1024 x 64 @ 64 x 100", {1024, 64}, {64, 100}, false, true},
      // c by columns on libxsmm; a's gradient (64 x 256 @ 256 x 784, B transposed) by columns on OpenBLAS;
      // b's gradient (784 x 64 @ 64 x 256) by rows on libxsmm
      {"wide: 64 x 784 @ 784 x 256", {64, 784}, {784, 256}, false, true},
      // c by rows on OpenBLAS (the first factor exceeds the kernels' cache rule)
      {"large: 600 x 1024 @ 1024 x 80", {600, 1024}, {1024, 80}, false, false},
      // c by columns on OpenBLAS (B transposed)
      {"transposed: 96 x 200 @ (700 x 200)^T", {96, 200}, {700, 200}, true, false},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    const std::size_t m = c.a[0], k = c.a[1], n = c.tb ? c.b[0] : c.b[1];
    const bool jit = c.jit && tg::detail::jit_gemm_built();
    CHECK(tg::detail::prefers_jit_gemm(c.tb, m, n, k, sizeof(float)) == jit);
    CHECK(tg::detail::prefers_jit_gemm(c.tb, m, n, k, sizeof(double)) == jit);
    check_same_bits_at_any_thread_count([&] { return product_and_gradients<float>(c.a, c.b, c.tb); });
    check_same_bits_at_any_thread_count([&] { return product_and_gradients<double>(c.a, c.b, c.tb); });
  }
  tg::set_num_threads(blas_threads);
}

TEST_CASE("the optimizers' updates, split in chunks over threads, give one thread's bits") {
  // A Linear(784, 256) layer: 200,704 weights, seven chunks of 2^15 (the last one short).
  const xt::xarray<float> images = xt::cast<float>(random_array({64, 784}, 8));
  auto train = [&](auto make_optimizer) {
    return [&, make_optimizer] {
      tg::ManualSeed seed(3);
      tg::Linear<float> layer(784, 256);
      auto opt = make_optimizer(layer.parameters());
      std::vector<xt::xarray<float>> out;
      for (int step = 0; step < 3; ++step) {
        tg::Tape tape;
        const TF y = tg::relu(layer(TF(images)));
        tg::sum(y * y).backward();
        opt.step();
        opt.zero_grad();
      }
      for (const auto& p : layer.parameters()) out.push_back(p.value());
      return out;
    };
  };
  SUBCASE("SGD with momentum") {
    check_same_bits_at_any_thread_count(train([](auto params) { return tg::SGD<float>(params, 0.01, 0.9, 1e-4); }));
  }
  SUBCASE("SGD with Nesterov momentum") {
    check_same_bits_at_any_thread_count(
        train([](auto params) { return tg::SGD<float>(params, 0.01, 0.9, 0.0, true); }));
  }
  SUBCASE("plain SGD") {
    check_same_bits_at_any_thread_count(train([](auto params) { return tg::SGD<float>(params, 0.01); }));
  }
  SUBCASE("Adam") {
    check_same_bits_at_any_thread_count(train([](auto params) { return tg::Adam<float>(params, 1e-3); }));
  }
}
