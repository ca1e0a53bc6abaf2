// Seeded parameter initialisation: a portable generator, the thread's default one, and the
// Kaiming / Xavier uniform schemes.
#ifndef TAPEGRAD_LAYERS_INIT_HPP
#define TAPEGRAD_LAYERS_INIT_HPP

#include <cstdint>
#include <random>
#include <vector>

#include "../core/tensor.hpp"

namespace tapegrad {

// mt19937_64 with a portable mapping to doubles: the same seed gives the same numbers everywhere.
class Generator {
 public:
  explicit Generator(std::uint64_t seed = 0) : engine_(seed) {}
  // Uniform in [lo, hi).
  double uniform(double lo, double hi);
  std::uint64_t next() { return engine_(); }

 private:
  std::mt19937_64 engine_;
};

// 0, 1, ..., n-1 in a random order (Fisher-Yates driven by Generator(seed)): the same seed gives
// the same order on every platform.
std::vector<std::size_t> shuffled_indices(std::size_t n, std::uint64_t seed);

// This thread's generator, which layers draw their initial parameters from. Seeded with 0 when the
// thread starts; tg::ManualSeed replaces it for a scope.
Generator& default_generator();

// While alive, the thread's default generator is Generator(seed); the previous one is restored
// after. The same seed gives the same model.
class ManualSeed {
 public:
  explicit ManualSeed(std::uint64_t seed);
  ~ManualSeed();
  ManualSeed(const ManualSeed&) = delete;
  ManualSeed& operator=(const ManualSeed&) = delete;

 private:
  Generator previous_;
};

enum class Init {
  kaiming_uniform,   // U(-b, b), b = sqrt(6 / fan_in): variance 2 / fan_in, for ReLU networks
  xavier_uniform,    // U(-b, b), b = sqrt(6 / (fan_in + fan_out))
};

// An array of `shape` drawn from `init` for a layer with the given fans.
template <class T>
xt::xarray<T> init_weight(const Shape& shape, Init init, std::size_t fan_in, std::size_t fan_out,
                          Generator& gen = default_generator());
// U(-1/sqrt(fan_in), 1/sqrt(fan_in)), as PyTorch initialises biases.
template <class T>
xt::xarray<T> init_bias(const Shape& shape, std::size_t fan_in, Generator& gen = default_generator());

}  // namespace tapegrad

#endif
