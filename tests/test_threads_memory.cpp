// Long runs neither leak nor drift: tape memory over 10,000 steps, and threads training their own
// models on their own tapes.
#include "helpers.hpp"

#include <thread>

namespace {

// A small conv + pool + linear classifier trained for `steps` SGD steps on seeded random data;
// returns its parameters.
std::vector<xt::xarray<float>> train(std::uint64_t seed, int steps) {
  tg::ManualSeed manual(seed);
  tg::Sequential<float> model(tg::Conv2d<float>(1, 3, 3, 1, 1), tg::ReLU<float>(), tg::MaxPool2d<float>(2),
                              tg::Flatten<float>(), tg::Linear<float>(3 * 4 * 4, 5));
  tg::SGD<float> opt(model.parameters(), 0.05, 0.9);
  std::mt19937 rng(static_cast<unsigned>(seed));
  std::uniform_real_distribution<float> u(-1, 1);
  for (int step = 0; step < steps; ++step) {
    xt::xarray<float> images = xt::xarray<float>::from_shape({8, 1, 8, 8});
    for (auto& v : images) v = u(rng);
    std::vector<std::size_t> labels(8);
    for (auto& l : labels) l = rng() % 5;
    tg::Tape tape;
    const TF loss = tg::cross_entropy(model(TF(images)), labels);
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  std::vector<xt::xarray<float>> params;
  for (const auto& p : model.parameters()) params.push_back(p.value());
  return params;
}

bool bitwise_equal(const std::vector<xt::xarray<float>>& a, const std::vector<xt::xarray<float>>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].shape() != b[i].shape() || !std::equal(a[i].begin(), a[i].end(), b[i].begin(), [](float x, float y) {
          return std::memcmp(&x, &y, sizeof x) == 0;
        }))
      return false;
  return true;
}

}  // namespace

TEST_CASE("threads training their own models give bitwise the parameters of the same runs one after another") {
  // OpenBLAS on one thread for both: with several, it splits a product by how many are free.
  const BlasThreads one_blas_thread(1);
  const std::vector<std::uint64_t> seeds = {1, 2, 3};
  std::vector<std::vector<xt::xarray<float>>> sequential;
  for (const auto s : seeds) sequential.push_back(train(s, 60));
  std::vector<std::vector<xt::xarray<float>>> parallel(seeds.size());
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < seeds.size(); ++i)
    threads.emplace_back([&, i] { parallel[i] = train(seeds[i], 60); });
  for (auto& t : threads) t.join();
  for (std::size_t i = 0; i < seeds.size(); ++i) {
    INFO("seed ", seeds[i]);
    CHECK(bitwise_equal(parallel[i], sequential[i]));
  }
  CHECK(!bitwise_equal(sequential[0], sequential[1]));   // the seeds do matter
}

TEST_CASE("10,000 small training steps end with the tape memory and tensors they started with") {
  tg::ManualSeed seed(4);
  tg::Sequential<double> model(tg::Linear<double>(4, 8), tg::Tanh<double>(), tg::Linear<double>(8, 3));
  tg::Adam<double> opt(model.parameters(), 1e-2);
  const TD x = TD(random_array({16, 4}, 1));
  const std::vector<std::size_t> labels = {0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0};
  auto step = [&] {
    tg::Tape tape;
    const TD loss = tg::cross_entropy(model(x), labels);
    opt.zero_grad();
    loss.backward();
    opt.step();
    return std::make_pair(tape.bytes(), loss.item());
  };
  const double first_loss = step().second;   // the optimizer's state exists from here on
  const tg::MemoryStats start = tg::memory_stats();
  std::size_t bytes_in_step = 0;
  double loss = 0;
  for (int i = 0; i < 10000; ++i) std::tie(bytes_in_step, loss) = step();
  const tg::MemoryStats end = tg::memory_stats();
  MESSAGE("tape bytes during a step: ", bytes_in_step, "; live tensors ", start.live_tensors, " -> ", end.live_tensors);
  CHECK(bytes_in_step > 16 * 8 * sizeof(double));   // the tape did hold saved values in each step
  CHECK(end.tape_entries == start.tape_entries);
  CHECK(end.tape_bytes == start.tape_bytes);
  CHECK(end.live_tensors == start.live_tensors);
  CHECK(loss < first_loss);
}

TEST_CASE("the live-tensor count sees tensors that are kept, and their release") {
  const TD x = leaf({3}, 2);
  const std::size_t before = tg::memory_stats().live_tensors;
  {
    std::vector<TD> kept;
    for (int i = 0; i < 50; ++i) kept.push_back(tg::exp(x));
    CHECK(tg::memory_stats().live_tensors == before + 50);
  }
  CHECK(tg::memory_stats().live_tensors == before);
}

TEST_CASE("memory_stats counts tensors and entries made on threads that exit, and handed between threads") {
  const TD x = leaf({4}, 5);
  const tg::MemoryStats before = tg::memory_stats();
  std::vector<TD> handed;   // made on workers, destroyed here
  for (int round = 0; round < 3; ++round) {
    std::vector<std::thread> workers;
    std::vector<TD> made(4);
    for (std::size_t w = 0; w < made.size(); ++w)
      workers.emplace_back([&x, &made, w] {
        tg::Tape tape;
        made[w] = tg::exp(x * static_cast<double>(w));
        CHECK(tg::memory_stats().tape_entries >= 2);
        CHECK(tg::grad(tg::sum(made[w]), {x})[0].shape() == tg::Shape{4});   // x's grad() is not written
        made[w] = made[w].detach();
      });
    for (auto& worker : workers) worker.join();
    handed.insert(handed.end(), made.begin(), made.end());
    const tg::MemoryStats now = tg::memory_stats();
    CHECK(now.live_tensors == before.live_tensors + handed.size());
    CHECK(now.tape_entries == before.tape_entries);
    CHECK(now.tape_bytes == before.tape_bytes);
  }
  // Made on this thread, destroyed on another.
  std::vector<TD> here;
  for (int i = 0; i < 10; ++i) here.push_back(tg::exp(x));
  std::thread([moved = std::move(here)]() mutable { moved.clear(); }).join();
  handed.clear();
  CHECK(tg::memory_stats().live_tensors == before.live_tensors);
}

TEST_CASE("memory_stats counts tensors a thread_local object releases after its thread's counts were folded in") {
  const std::size_t before = tg::memory_stats().live_tensors;
  std::thread([] {
    // Built before the thread's first tensor, so destroyed after the thread's counts are folded
    // into the process's at its exit: its tensors are then counted down there.
    static thread_local std::vector<TD> late;
    late.clear();
    late.push_back(tg::exp(TD(Arr{1.0, 2.0})));
    late.push_back(late.back() * 2.0);
  }).join();
  CHECK(tg::memory_stats().live_tensors == before);
}
