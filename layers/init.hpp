// Seeded parameter initialisation (the Kaiming / Xavier uniform schemes) and shuffling, from the
// portable generators of core/random.hpp.
#ifndef TAPEGRAD_LAYERS_INIT_HPP
#define TAPEGRAD_LAYERS_INIT_HPP

#include <cstdint>
#include <vector>

#include "../core/random.hpp"

namespace tapegrad {

// 0, 1, ..., n-1 in a random order (Fisher-Yates driven by Generator(seed)): the same seed gives
// the same order on every platform.
std::vector<std::size_t> shuffled_indices(std::size_t n, std::uint64_t seed);

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
